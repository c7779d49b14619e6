//! One module per command.

mod athena;
mod decrypt;
mod doctor;
mod hold;
mod index;
mod keys;
mod ls;
mod pull;
mod shell;
mod verify;

use crate::cli::{Cli, Command};
use crate::exit::Outcome;

/// Runs the parsed command line on a Tokio runtime.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match &cli.command {
        Command::Completions { shell } => return shell::completions(*shell),
        Command::Man => return shell::man(),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Ls(args) => ls::run(&cli.global, *args).await,
            Command::Pull(args) => pull::run(&cli.global, *args).await,
            Command::Verify(args) => verify::run(&cli.global, args).await,
            Command::Hold(args) => hold::run(&cli.global, *args).await,
            Command::Decrypt(args) => decrypt::run(&cli.global, *args).await,
            Command::Keys(command) => keys::run(&cli.global, command),
            Command::Doctor(args) => doctor::run(&cli.global, *args).await,
            Command::AthenaDdl(args) => athena::run(args).await,
            Command::Index(args) => index::run(&cli.global, *args).await,
            Command::Catalog(command) => index::catalog(&cli.global, command),
            Command::Completions { .. } | Command::Man => Ok(Outcome::Success),
        }
    })
}
