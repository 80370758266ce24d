//! corecache-loadgen's entry point: parse the command line, run, report.

use std::process::ExitCode;

use clap::Parser;

use loadgen::cli::{Cli, Command};
use loadgen::{compare, null_server, plot};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corecache-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => {
            let name = args.name.clone().unwrap_or_else(|| {
                let t: Vec<String> = args.targets.iter().map(|a| a.to_string()).collect();
                t.join(",")
            });
            let mut cfg = args.load.config(name, args.targets.clone());
            if args.cluster.is_some() {
                cfg.cluster = Some(args.load.ring_kind().map_err(anyhow::Error::msg)?);
            }
            let out = loadgen::client::run(&cfg)?;
            print!("{}", out.result.table());
            if let Some(path) = &args.json {
                std::fs::write(path, serde_json::to_vec_pretty(&out.result)?)?;
            }
            if let Some(path) = &args.hdr_log {
                out.log.write_to(path)?;
            }
            Ok(())
        }
        Command::Compare(args) => {
            let base = args.load.config(String::new(), vec![args.targets[0].addr]);
            let result = compare::compare(&base, &args.targets, args.rounds)?;
            print!("{}", result.table());
            if let Some(path) = &args.json {
                std::fs::write(path, serde_json::to_vec_pretty(&result)?)?;
            }
            Ok(())
        }
        Command::Plot(args) => {
            let series = plot::load(&args.files, &args.op)?;
            plot::render_svg(&series, &args.title, &args.output)?;
            if let Some(png) = &args.png {
                plot::render_png(&series, &args.title, png)?;
            }
            Ok(())
        }
        Command::NullServer(args) => {
            let cfg = null_server::NullConfig {
                listen: args.listen,
                cores: args.cores.0,
                pin: !args.no_pin,
                value_size: args.value_size,
                stall_every: args.stall_every,
                stall_for: args.stall_for,
            };
            let addr = null_server::start(&cfg)?;
            // Tests and scripts read this line to learn the port.
            println!("listening on {addr}");
            use std::io::Write;
            std::io::stdout().flush()?;
            loop {
                std::thread::park();
            }
        }
    }
}
