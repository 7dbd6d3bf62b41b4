//! The `pipe` binary: parse arguments, run the command, turn the result into an
//! exit code (see `exit_codes`).

use clap::Parser;
use pipe::{cli::Cli, commands, exit_codes, logging};

/// Stages run in this binary (`pipe exec`). Training allocates and frees large
/// buffers every step; with glibc's allocator they go back to the kernel and come back
/// as fresh pages (`perf` of a student step: ~8 % in the kernel clearing pages, ~13 %
/// more in memset/memmove). mimalloc keeps them: teacher step −11 %, student step
/// −15 % in `stages/benches/train_step.rs` (alternated A/B).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
