//! The command line, parsed and nothing more: `config` turns it into a `Config`.

use argh::FromArgs;

/// Turn Amazon SES email events stored in MongoDB into MySQL deliverability reports.
#[derive(FromArgs, Debug)]
#[argh(
    description = "turn Amazon SES email events stored in MongoDB into MySQL deliverability reports",
    note = "Connection settings come from the environment only: SES_REPORT_MYSQL_URL \
(default mysql://root@127.0.0.1:3306/ses_report), SES_REPORT_MONGO_URL (default \
mongodb://127.0.0.1:27017), SES_REPORT_MONGO_DB (default ses), SES_REPORT_MONGO_COLLECTION \
(default sesevents), SES_REPORT_TZ (default UTC), SES_REPORT_CONNECT_TIMEOUT_SECS (default 5), \
SES_REPORT_IO_TIMEOUT_SECS (default 60). Logs go to stderr (RUST_LOG, default info).",
    error_code(0, "done, including nothing to do"),
    error_code(
        1,
        "fatal: configuration, connection or schema problem (the message says what to fix)"
    ),
    error_code(2, "usage error"),
    error_code(
        3,
        "finished, but some records failed (see the aws_report_failures table)"
    ),
    error_code(4, "another ingest holds the lock on this database; nothing done")
)]
pub struct Cli {
    #[argh(subcommand)]
    pub command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Migrate(MigrateArgs),
    Ingest(IngestArgs),
}

/// Create the MySQL database if missing, then create or upgrade ses-report's tables.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "migrate")]
pub struct MigrateArgs {}

/// Read SES notifications for a window and apply them to the report tables.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "ingest",
    note = "Without --date or --from, catches up: from where the last completed run's window \
ended minus --lookback-hours (or the start of yesterday) to the start of today, never more than \
--max-days back."
)]
pub struct IngestArgs {
    /// one calendar day (YYYY-MM-DD) in the time zone
    #[argh(option)]
    pub date: Option<String>,

    /// window start, inclusive: a date (its midnight in the time zone) or an RFC 3339 instant
    #[argh(option)]
    pub from: Option<String>,

    /// window end, exclusive (default: the start of today)
    #[argh(option)]
    pub to: Option<String>,

    /// IANA time zone for day boundaries (default: SES_REPORT_TZ, else UTC)
    #[argh(option)]
    pub tz: Option<String>,

    /// catch-up only: hours to re-read before the last run's end (default 24)
    #[argh(option, default = "24")]
    pub lookback_hours: u32,

    /// catch-up only: never reach more than this many days back (default 7)
    #[argh(option, default = "7")]
    pub max_days: u32,

    /// read newline-delimited JSON (SNS envelopes or bare SES records; .gz allowed; - for stdin) instead of MongoDB
    #[argh(option)]
    pub file: Option<String>,

    /// read, parse, classify and resolve everything, but write nothing
    #[argh(switch)]
    pub dry_run: bool,

    /// notifications applied per transaction (default 1000)
    #[argh(option, default = "1000")]
    pub batch_size: usize,
}
