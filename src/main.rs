//! The `pipe` binary: parse arguments, run the command, turn the result into an
//! exit code (see `exit_codes`).

use clap::Parser;
use pipe::{cli::Cli, commands, exit_codes, logging};

fn main() {
    let cli = Cli::parse();
    let is_exec = matches!(cli.command, pipe::cli::Command::Exec { .. });
    if !is_exec {
        logging::init(cli.verbose, cli.quiet, cli.log_format);
    }
    let code = match std::panic::catch_unwind(|| commands::dispatch(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(failure)) => {
            eprint!("{}", failure.render());
            failure.exit_code()
        }
        Err(_) => exit_codes::INTERNAL,
    };
    std::process::exit(code);
}
