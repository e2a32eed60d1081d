//! The command line, parsed and nothing more: `config` turns it into a checked `Config`.
//! (argh has no flattening, so the day options are repeated in each reading command.)

use argh::FromArgs;

use crate::domain::suppression;

/// Turn Amazon SES email events stored in MongoDB into MySQL deliverability reports.
#[derive(FromArgs, Debug)]
#[argh(
    description = "turn Amazon SES email events stored in MongoDB into MySQL deliverability reports",
    note = "Connection settings come from the environment only: SES_REPORT_MYSQL_URL \
(default mysql://root@127.0.0.1:3306/ses_report), SES_REPORT_MONGO_URL (default \
mongodb://127.0.0.1:27017), SES_REPORT_MONGO_DB (default ses), SES_REPORT_MONGO_COLLECTION \
(default sesevents), SES_REPORT_TZ (default UTC), SES_REPORT_CONNECT_TIMEOUT_SECS (default 5), \
SES_REPORT_IO_TIMEOUT_SECS (default 60), SES_REPORT_RETRIES (default 3: how often a lost \
connection, lock wait timeout or deadlock is retried), SES_REPORT_NOW (pins \"now\" for catch-up \
and default periods; an RFC 3339 instant), SES_REPORT_DEADLINE_SECS (default 21600: an ingest \
stops after that long, even if a server stopped answering), SES_REPORT_USERS_TABLE, \
SES_REPORT_USERS_ID_COLUMN, SES_REPORT_USERS_EMAIL_COLUMN (default auth_users, id, common_email: \
the user accounts recipients are linked to; db.table for another schema), SES_REPORT_REPORT_TYPE_NAMES \
(1=welcome,2=newsletter: report types by name in the HTML report), SES_REPORT_METRICS_FILE (a \
node_exporter textfile to write), SES_REPORT_PING_URL (a healthchecks-style URL pinged at start \
and end), SES_REPORT_ERASURE_KEY (the secret of erased addresses' keyed hashes: forget, and every \
ingest once an address was erased), SES_REPORT_STORE_SUBJECTS (default true; false keeps subjects \
out). Logs go to stderr (RUST_LOG, default info). `ses-report --version` (or -V) prints the \
version; -h is --help.",
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
    error_code(4, "another ingest holds the lock on this database; nothing done"),
    error_code(5, "stats --check: a group with enough volume is critical"),
    error_code(
        6,
        "stats --check --fail-on warning: a group is at warning level (none critical)"
    ),
    error_code(7, "doctor: it found something to fix (listed on stdout)"),
    error_code(
        130,
        "stopped by SIGTERM or SIGINT after the batch in flight (run recorded interrupted)"
    )
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
    Rollup(RollupArgs),
    Stats(StatsArgs),
    Suppressions(SuppressionsArgs),
    Report(ReportArgs),
    Retry(RetryArgs),
    Failures(FailuresArgs),
    Prune(PruneArgs),
    Doctor(DoctorArgs),
    Forget(ForgetArgs),
}

/// Erase addresses on request: pseudonymize their rows (nothing counted changes), keep them
/// suppressed by a keyed hash, and keep their later events out.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "forget",
    note = "Needs SES_REPORT_ERASURE_KEY (at least 16 bytes; keep it: every later ingest needs the \
same key to keep erased addresses out). Prints each address's keyed-hash prefix and the rows \
changed per table, never the address. docs/privacy.md says what is kept and what to delete in \
MongoDB."
)]
pub struct ForgetArgs {
    /// the addresses to erase
    #[argh(positional)]
    pub addresses: Vec<String>,
    /// a file of addresses, one a line (- for stdin; blank lines and # comments ignored)
    #[argh(option)]
    pub file: Option<String>,
    /// also every address the summary rows link to this user account
    #[argh(option)]
    pub user_id: Option<u64>,
    /// say what would change, change nothing
    #[argh(switch)]
    pub dry_run: bool,
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
    /// write a node_exporter textfile of the run's metrics here (default SES_REPORT_METRICS_FILE)
    #[argh(option)]
    pub metrics_file: Option<String>,
    /// apply only partition K of N (K/N): the mails whose messageId hashes there; run N workers, one per K, to share a day
    #[argh(option)]
    pub partition: Option<String>,
    /// cron: nothing on stdout when all is well (the summary goes to the log); one line on stdout only when records failed or the run failed
    #[argh(switch)]
    pub quiet: bool,
}

/// Rebuild the daily rollups of a range of days from the detail rows.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "rollup")]
pub struct RollupArgs {
    /// one calendar day (YYYY-MM-DD) in the time zone
    #[argh(option)]
    pub date: Option<String>,
    /// first day (a date, or an instant: its day)
    #[argh(option)]
    pub from: Option<String>,
    /// end, exclusive (default: the start of today)
    #[argh(option)]
    pub to: Option<String>,
    /// IANA time zone of the days (default: SES_REPORT_TZ, else UTC)
    #[argh(option)]
    pub tz: Option<String>,
}

/// Deliverability statistics from the daily rollups, with verdicts against SES's thresholds.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "stats",
    note = "Rates: bounce = permanent bounces / sent, complaint = complaints / delivered, delivery = \
delivered / sent, open and click = unique opens and clicks / delivered. They are computed from SES \
events and approximate AWS's own figures. Verdicts: bounce >= 5% or complaint >= 0.1% is a warning; \
bounce >= 10% or complaint >= 0.5% is critical. The block rate (bounces of class reputation or policy / \
volume) warns at --block-warning and is critical at --block-critical. --check prints nothing and exits 0 \
when healthy."
)]
pub struct StatsArgs {
    /// one calendar day (YYYY-MM-DD); default: the last 7 full days
    #[argh(option)]
    pub date: Option<String>,
    /// first day (a date, or an instant: its day)
    #[argh(option)]
    pub from: Option<String>,
    /// end, exclusive (default: the start of today)
    #[argh(option)]
    pub to: Option<String>,
    /// IANA time zone of the days (default: SES_REPORT_TZ, else UTC)
    #[argh(option)]
    pub tz: Option<String>,
    /// group by day, report-type, source, domain, provider, configuration-set, sending-ip or
    /// tag:NAME (repeat for several)
    #[argh(option)]
    pub by: Vec<String>,
    /// table, csv or json (default: table on a terminal, csv otherwise; with --check, one line per offending group)
    #[argh(option)]
    pub format: Option<String>,
    /// groups with fewer sends get no verdict (default 100)
    #[argh(option, default = "100")]
    pub min_volume: u64,
    /// block rate (reputation + policy bounces / volume) that makes a group's verdict a warning, in percent (default 2)
    #[argh(option)]
    pub block_warning: Option<String>,
    /// block rate that makes a group's verdict critical, in percent (default 5)
    #[argh(option)]
    pub block_critical: Option<String>,
    /// cron alert: print only offending groups and exit 5 (critical) or 6 (warning)
    #[argh(switch)]
    pub check: bool,
    /// with --check: critical (default) or warning
    #[argh(option, default = "String::from(\"critical\")")]
    pub fail_on: String,
    /// with --check: a period without any event is expected (otherwise, when earlier days had
    /// events, it alerts "no data": the ingest may not have run)
    #[argh(switch)]
    pub allow_empty: bool,
    /// write a node_exporter textfile of the run's metrics here (default SES_REPORT_METRICS_FILE)
    #[argh(option)]
    pub metrics_file: Option<String>,
}

/// The addresses to stop mailing, with reason and evidence.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "suppressions")]
pub struct SuppressionsArgs {
    /// csv (default) or json
    #[argh(option, default = "String::from(\"csv\")")]
    pub format: String,
    /// only evidence from this date or instant on
    #[argh(option)]
    pub since: Option<String>,
    /// also list the addresses SES already suppresses (bounces and complaints SES did not attempt: OnAccountSuppressionList), as reason ses-suppressed
    #[argh(switch)]
    pub include_ses_suppressed: bool,
    /// transient bounces that suppress an address (default 3)
    #[argh(option, default = "suppression::SOFT_LIMIT")]
    pub soft_limit: u32,
    /// a soft-bounce suppression expires this many days after the last soft bounce unless
    /// renewed (default 30; the bounces counted for --soft-limit are those of this window)
    #[argh(option, default = "suppression::SOFT_EXPIRE_DAYS")]
    pub soft_expire_days: u32,
    /// sunset: suppress addresses with no human open or click in this many days despite
    /// --sunset-min-deliveries deliveries in them
    #[argh(option)]
    pub sunset_days: Option<u32>,
    /// the deliveries the sunset rule needs (default 3, as MailPoet)
    #[argh(option, default = "suppression::SUNSET_MIN_DELIVERIES")]
    pub sunset_min_deliveries: u32,
    /// whether this one address is suppressed, erased or neither (with the reasons), as the
    /// sending app asks before mailing it
    #[argh(option)]
    pub check: Option<String>,
    /// compare with SES's account-level list: the JSON `aws sesv2 list-suppressed-destinations`
    /// prints (pages concatenated are fine); prints the differences
    #[argh(option)]
    pub reconcile: Option<String>,
}

/// Write a self-contained HTML deliverability report.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "report")]
pub struct ReportArgs {
    /// the HTML file to write
    #[argh(option)]
    pub html: String,
    /// one calendar day (YYYY-MM-DD); default: the last 7 full days
    #[argh(option)]
    pub date: Option<String>,
    /// first day (a date, or an instant: its day)
    #[argh(option)]
    pub from: Option<String>,
    /// end, exclusive (default: the start of today)
    #[argh(option)]
    pub to: Option<String>,
    /// IANA time zone of the days (default: SES_REPORT_TZ, else UTC)
    #[argh(option)]
    pub tz: Option<String>,
    /// groups with fewer sends get no verdict (default 100)
    #[argh(option, default = "100")]
    pub min_volume: u64,
    /// block rate (reputation + policy bounces / volume) that makes a group's verdict a warning, in percent (default 2)
    #[argh(option)]
    pub block_warning: Option<String>,
    /// block rate that makes a group's verdict critical, in percent (default 5)
    #[argh(option)]
    pub block_critical: Option<String>,
}

/// Re-apply every unresolved failures row from its stored document (after a fix or a schema change).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "retry")]
pub struct RetryArgs {
    /// read and resolve everything, but write nothing
    #[argh(switch)]
    pub dry_run: bool,
    /// records per transaction (default 1000)
    #[argh(option, default = "1000")]
    pub batch_size: usize,
    /// write a node_exporter textfile of the run's metrics here (default SES_REPORT_METRICS_FILE)
    #[argh(option)]
    pub metrics_file: Option<String>,
    /// retry only the failures of partition K of N (K/N), as `ingest --partition` splits them
    #[argh(option)]
    pub partition: Option<String>,
    /// cron: nothing on stdout when all is well (the summary goes to the log); one line on stdout only when records failed or the run failed
    #[argh(switch)]
    pub quiet: bool,
}

/// List the records that could not be applied.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "failures")]
pub struct FailuresArgs {
    /// csv (default), json or table
    #[argh(option, default = "String::from(\"csv\")")]
    pub format: String,
    /// include resolved and dismissed ones
    #[argh(switch)]
    pub all: bool,
    /// list the dismissed ones, with who-knows-why (their reason)
    #[argh(switch)]
    pub dismissed: bool,
    /// include each stored document
    #[argh(switch)]
    pub documents: bool,
    /// dismiss the failure with this id (as listed; repeat for several): retry and the metrics leave it alone, the row is kept
    #[argh(option)]
    pub dismiss: Vec<String>,
    /// with --dismiss: why (kept with each row)
    #[argh(option)]
    pub reason: Option<String>,
}

/// Delete old details, resolved failures and finished runs in small batches; summaries and
/// rollups stay.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "prune")]
pub struct PruneArgs {
    /// delete details (and finished runs) older than this many days
    #[argh(option)]
    pub older_than: u32,
    /// delete resolved or dismissed failures older than this many days (default: --older-than)
    #[argh(option)]
    pub failures_older_than: Option<u32>,
    /// also delete summary rows whose details are gone and whose last event is older than this
    /// many days (at least --older-than; default: summaries are kept)
    #[argh(option)]
    pub summaries_older_than: Option<u32>,
    /// only count what would be deleted
    #[argh(switch)]
    pub dry_run: bool,
    /// rows per delete statement (default 5000)
    #[argh(option, default = "5000")]
    pub batch: u64,
}

/// Check what no ingest shows: documents no window can select, the Timestamp index, the schema,
/// and drift between stored rollups and a recomputation from the rows.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "doctor",
    note = "Reads the whole notifications collection (only each document's _id and Timestamp) \
and recomputes the rollups of the period inside a transaction it rolls back: nothing is \
changed. Exits 0 when all is well, 7 when something needs fixing."
)]
pub struct DoctorArgs {
    /// one calendar day (YYYY-MM-DD) whose rollups to check; default: the last 7 full days
    #[argh(option)]
    pub date: Option<String>,
    /// first day (a date, or an instant: its day)
    #[argh(option)]
    pub from: Option<String>,
    /// end, exclusive (default: the start of today)
    #[argh(option)]
    pub to: Option<String>,
    /// IANA time zone of the days (default: SES_REPORT_TZ, else UTC)
    #[argh(option)]
    pub tz: Option<String>,
    /// how many document ids to name per problem (default 5)
    #[argh(option, default = "5")]
    pub examples: usize,
}
