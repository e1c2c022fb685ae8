//! The `fnbridge` binary: `fnbridge serve` runs the platform; every other subcommand is a
//! client of its HTTP API (or, for `pattern test`, runs locally).
//!
//! # Layout
//! - `cli`: the command-line grammar (clap derive), one enum per command group.
//! - `serve`: configuration, wiring of store, runtime, dispatcher and API, and shutdown.
//! - `client`: the HTTP client: endpoint and token resolution, FC error decoding.
//! - `commands`: what each client subcommand sends and prints.
//! - `oss`: the object-store commands (`bucket`, `cp`, `ls`, `rm`), an S3 SigV4 client.
//! - `output`: tables for people, JSON for scripts; a closed pipe ends the process quietly.
//!
//! Only this crate reads the environment; the libraries take values.

mod cli;
mod client;
mod commands;
mod oss;
mod output;
mod serve;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let code = match args.command {
        cli::Command::Serve(s) => match serve::run(*s) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("fnbridge: {e:#}");
                1
            }
        },
        cli::Command::Pattern(p) => commands::pattern(p),
        other => match commands::run(other) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("fnbridge: {e:#}");
                // 2 for usage and client errors, like most CLIs; 1 stays "a check said no".
                2
            }
        },
    };
    output::flush();
    std::process::exit(code);
}
