//! ses-report: turns Amazon SES email events stored in MongoDB into MySQL deliverability and
//! engagement reports.
//!
//! The rooms (ARCHITECTURE.md draws the data's way through them): `cli` parses and `config`
//! checks, before anything connects; `domain` is pure (SES records, event kinds, accounting,
//! users, windows, zones); `source` reads notifications (Mongo, files, kept failures); `store` is
//! the only room that speaks SQL; `ingest` runs a window through them; `reports` renders;
//! `commands` has one file per command. `main` only maps `run` to an exit code. Nothing here is public API but `main_with_args` and what the fuzz target drives.

mod cli;
mod commands;
mod config;
mod domain;
mod error;
mod ingest;
mod ops;
mod redact;
mod reports;
mod source;
mod store;

/// The entry points the fuzz target drives: reading stored notifications, as `ingest` does.
pub mod fuzzing {
    pub use crate::domain::ses::{interpret, parsers_disagree};
    pub use crate::source::file::FileSource;
    pub use crate::source::RecordSource;
}

use std::io::Write;

use argh::FromArgs;

use crate::cli::Cli;
use crate::config::{Config, Environment};
use crate::domain::timestamps;
use crate::error::{Exit, Result};
use time::OffsetDateTime;

/// Parses the command line, runs the subcommand and returns the exit code.
pub fn main_with_args(args: &[String]) -> Exit {
    init_logging();
    let program = args.first().map(String::as_str).unwrap_or("ses-report");
    let program = std::path::Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("ses-report");
    let mut rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    // What every command-line tool answers, which argh does not: the version, and `-h`.
    if let [only] = rest.as_slice() {
        if matches!(*only, "--version" | "-V") {
            println!("{program} {}", env!("CARGO_PKG_VERSION"));
            return Exit::Done;
        }
    }
    for arg in rest.iter_mut() {
        if *arg == "-h" {
            *arg = "--help";
        }
    }
    let cli = match Cli::from_args(&[program], &rest) {
        Ok(cli) => cli,
        Err(early) => {
            return match early.status {
                Ok(()) => {
                    println!("{}", early.output);
                    Exit::Done
                }
                Err(()) => {
                    let hint = did_you_mean(program, &rest, &early.output)
                        .map(|o| format!(" Did you mean {o}?"))
                        .unwrap_or_default();
                    eprintln!(
                        "{}{hint}\nRun {program} --help for usage.",
                        early.output.trim_end()
                    );
                    Exit::Usage
                }
            }
        }
    };
    match run(&cli) {
        Ok(exit) => exit,
        Err(error) => {
            // The error that ends the command always reaches stderr, even under a RUST_LOG that
            // filters it out (`off`, or a module name that matches nothing).
            if log::log_enabled!(log::Level::Error) {
                log::error!("{error}");
            } else {
                eprintln!(
                    "{} ERROR {}",
                    timestamps::display(
                        OffsetDateTime::now_utc()
                            .replace_nanosecond(0)
                            .unwrap_or_else(|_| OffsetDateTime::now_utc())
                    ),
                    redact::scrub(&error.to_string())
                );
            }
            let exit = error.exit();
            // Under cron (`--quiet`) stdout is what reaches a person: a run that failed says why
            // there too. A lock held by the previous run, or a stop asked for, needs nobody.
            if quiet(&cli) && matches!(exit, Exit::Fatal | Exit::Usage) {
                println!(
                    "ses-report failed (exit {}): {}",
                    exit.code(),
                    redact::scrub(&error.to_string())
                );
            }
            exit
        }
    }
}

/// For `Unrecognized argument: --form`, the command's option nearest to it (`--from`), read
/// from the command's own help so the list can never drift from the options.
fn did_you_mean(program: &str, rest: &[&str], output: &str) -> Option<String> {
    let wrong = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Unrecognized argument: "))?
        .trim();
    if !wrong.starts_with("--") {
        return None;
    }
    let mut help_args: Vec<&str> = rest
        .iter()
        .copied()
        .take_while(|a| !a.starts_with('-'))
        .take(1)
        .collect();
    help_args.push("--help");
    let help = match Cli::from_args(&[program], &help_args) {
        Err(early) => early.output,
        Ok(_) => return None,
    };
    let options: std::collections::BTreeSet<&str> = help
        .split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == ',')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    options
        .into_iter()
        .map(|o| (edit_distance(o, wrong), o))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, o)| o.to_string())
}

/// Levenshtein distance, for `did_you_mean`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// Whether the command was asked to be quiet (`ingest --quiet`, `retry --quiet`).
fn quiet(cli: &Cli) -> bool {
    match &cli.command {
        cli::Command::Ingest(args) => args.quiet,
        cli::Command::Retry(args) => args.quiet,
        _ => false,
    }
}

/// Checks the whole configuration, then runs the command.
fn run(cli: &Cli) -> Result<Exit> {
    commands::run(&Config::new(cli, Environment::from_process()?)?)
}

/// Logs go to stderr, `info` unless `RUST_LOG` says otherwise, every line scrubbed of secrets.
fn init_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let now = time::OffsetDateTime::now_utc();
            writeln!(
                buf,
                "{} {:<5} {}",
                timestamps::display(now.replace_nanosecond(0).unwrap_or(now)),
                record.level(),
                redact::scrub(&record.args().to_string())
            )
        })
        .target(env_logger::Target::Stderr)
        .try_init();
}
