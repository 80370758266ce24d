//! The `corecache` binary: flags and config file in, a running server out.
//! Start-up errors are one line on stderr with exit code 2.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use engine::config::cli::Cli;
use engine::config::{self, VERSION};
use engine::server::{self, StartError};

fn main() -> ExitCode {
    abort_on_panic();
    fix_mmap_threshold();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return flag_error(e),
    };
    if cli.version {
        println!("corecache {VERSION}");
        return ExitCode::SUCCESS;
    }
    let print_config = cli.print_config;
    let (config, warnings) = match cli.build() {
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
    let set_log_level = init_logging(config.server.verbosity);
    for w in warnings {
        tracing::warn!("{w}");
    }
    let reload = server::Reload {
        file: cli.config.clone(),
        rebuild: Box::new(move || cli.build().map(|(c, _)| c)),
        set_log_level,
    };
    match server::run(config, reload) {
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

/// Allocations of 128 KiB and more (the buffers a large value grows on a
/// connection) each get their own mapping, so freeing one returns it to the
/// system. glibc's default raises that threshold to the size of the last such
/// block freed, after which large buffers come from the shard threads' heaps
/// and stay resident there once given back (20-34 MB after 64 connections each
/// moved a 1 MB value, tests/abuse.rs). A realloc of such a block is an
/// `mremap`, without a copy.
fn fix_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; called before any
    // thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
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
/// RUST_LOG, when set, wins. Returns how SIGHUP sets the level for a new
/// verbosity (through tracing's reload layer; refused while RUST_LOG decides).
fn init_logging(verbosity: u8) -> Box<dyn Fn(u8) -> Result<(), String>> {
    use tracing_subscriber::EnvFilter;
    let from_env = EnvFilter::try_from_default_env().ok();
    let by_env = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(config::log_level(verbosity)));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter_reloading();
    let handle = builder.reload_handle();
    builder.init();
    Box::new(move |verbosity| {
        if by_env {
            return Err("RUST_LOG is set and decides the log level".into());
        }
        handle
            .reload(EnvFilter::new(config::log_level(verbosity)))
            .map_err(|e| e.to_string())
    })
}
