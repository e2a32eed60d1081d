//! ses-report: turns Amazon SES email events stored in MongoDB into MySQL deliverability and
//! engagement reports.
//!
//! `main` only maps `run` to an exit code. Pure logic (parsing, accounting, windows, timestamps)
//! lives in modules without I/O; `store` and `source` are the thin layers over MySQL and MongoDB.

pub mod accounting;
pub mod cli;
pub mod config;
pub mod error;
pub mod fixtures;
pub mod html;
pub mod ingest;
pub mod maintenance;
pub mod redact;
pub mod reports;
pub mod rollup;
pub mod ses;
pub mod source;
pub mod stats;
pub mod store;
pub mod suppression;
pub mod timestamps;
pub mod window;

use std::io::Write;

use argh::FromArgs;

use crate::cli::{Cli, Command};
use crate::config::{Environment, IngestConfig};
use crate::error::{Exit, Fatal};

/// Parses the command line, runs the subcommand and returns the exit code.
pub fn main_with_args(args: &[String]) -> Exit {
    init_logging();
    let program = args.first().map(String::as_str).unwrap_or("ses-report");
    let program = std::path::Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("ses-report");
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let cli = match Cli::from_args(&[program], &rest) {
        Ok(cli) => cli,
        Err(early) => {
            return match early.status {
                Ok(()) => {
                    println!("{}", early.output);
                    Exit::Done
                }
                Err(()) => {
                    eprintln!("{}\nRun {program} --help for usage.", early.output);
                    Exit::Usage
                }
            }
        }
    };
    match run(&cli) {
        Ok(exit) => exit,
        Err(fatal) => {
            log::error!("{}", fatal);
            fatal.exit()
        }
    }
}

pub fn run(cli: &Cli) -> Result<Exit, Fatal> {
    let env = Environment::from_process()?;
    match &cli.command {
        Command::Migrate(_) => {
            let applied = store::migrate(&env)?;
            if applied.is_empty() {
                println!("schema is up to date (version {})", store::schema_version());
            } else {
                println!(
                    "applied schema versions {applied:?}; now at version {}",
                    store::schema_version()
                );
            }
            Ok(Exit::Done)
        }
        Command::Ingest(args) => ingest::run(&IngestConfig::new(args, env)?),
        Command::Rollup(args) => reports::run_rollup(args, &env),
        Command::Stats(args) => reports::run_stats(args, &env),
        Command::Suppressions(args) => reports::run_suppressions(args, &env),
        Command::Report(args) => reports::run_report(args, &env),
        Command::Retry(args) => {
            ingest::run(&IngestConfig::retry(env, args.dry_run, args.batch_size)?)
        }
        Command::Failures(args) => maintenance::run_failures(args, &env),
        Command::Prune(args) => maintenance::run_prune(args, &env),
    }
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
