//! `gcrec completions SHELL` and `gcrec man`: generated from the clap definition, so
//! they always match the command line.

use std::io::Write;

use anyhow::Result;

use crate::exit::Outcome;

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<Outcome> {
    let mut command = crate::cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut command, "gcrec", &mut out);
    out.flush()?;
    Ok(Outcome::Success)
}

/// Prints the manual page, with a section per command, on stdout.
pub fn man() -> Result<Outcome> {
    let command = crate::cli::command();
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    // Then each command's synopsis and options, under its own heading.
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("gcrec {}", sub.get_name());
        writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
        let sub = sub.clone().bin_name(name);
        let page = clap_mangen::Man::new(sub);
        page.render_description_section(&mut out)?;
        page.render_synopsis_section(&mut out)?;
        page.render_options_section(&mut out)?;
    }
    out.flush()?;
    Ok(Outcome::Success)
}
