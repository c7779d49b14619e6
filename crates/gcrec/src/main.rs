//! `gcrec`: get Genesys Cloud recordings out of an S3 bulk export.
//!
//! This file only wires the pieces together: `cli` parses, `commands` run, `exit` maps
//! the outcome to a documented exit code.

mod aws;
mod catalog;
mod cli;
mod commands;
mod exit;
mod filters;
mod inventory;
mod keyring;
mod output;
mod passphrase;
mod progress;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::parse();
    output::init_logging(&cli.global);
    exit::finish(commands::run(cli))
}
