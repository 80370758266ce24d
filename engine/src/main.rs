//! The `corecache` binary: flags and config file in, a running server out.
//! Start-up errors are one line on stderr with exit code 2.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use engine::config::VERSION;
use engine::config::cli::Cli;
use engine::server::{self, StartError};

fn main() -> ExitCode {
    abort_on_panic();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return flag_error(e),
    };
    if cli.version {
        println!("corecache {VERSION}");
        return ExitCode::SUCCESS;
    }
    let print_config = cli.print_config;
    let (config, warnings) = match cli.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corecache: {e}");
            return ExitCode::from(2);
        }
    };
    if print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    init_logging(config.server.verbosity);
    for w in warnings {
        tracing::warn!("{w}");
    }
    match server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ StartError::Runtime(_)) => {
            eprintln!("corecache: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("corecache: {e}");
            ExitCode::from(2)
        }
    }
}

/// A panic on a shard thread is a bug that leaves that shard's keys unserved
/// and its peers waiting for it: stop the whole process (as release builds'
/// panic = "abort" does) rather than limp on, in every build.
fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        std::process::abort();
    }));
}

/// A flag the parser refuses: one line naming it, like every other start-up
/// error (clap's own report adds a usage screen); --help prints as usual.
fn flag_error(e: clap::Error) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("corecache: {first} (see corecache --help)");
    ExitCode::from(2)
}

/// Start-up and shutdown are logged at info; -vv adds debug, -vvv trace.
/// RUST_LOG, when set, wins.
fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
