//! `ses-fixtures`: makes and loads SES notification data for the demo, the benchmark and
//! manual testing. Not part of the job: cron never runs it.
//!
//! Mongo settings come from the same variables as `ses-report` (SES_REPORT_MONGO_URL,
//! SES_REPORT_MONGO_DB, SES_REPORT_MONGO_COLLECTION).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;

use argh::FromArgs;
use mongodb::bson::Document;
use ses_report::config::Environment;
use ses_report::fixtures::{self, Plan};
use ses_report::source::{mongo_client, MongoSource, RecordSource};
use ses_report::window;

/// make and load SES notification fixtures
#[derive(FromArgs)]
struct Args {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    Generate(Generate),
    Load(Load),
    Scan(Scan),
}

/// write a deterministic, realistic day of notifications as NDJSON (Mongo extended JSON)
#[derive(FromArgs)]
#[argh(subcommand, name = "generate")]
struct Generate {
    /// about how many notifications (default 300)
    #[argh(option, default = "300")]
    notifications: usize,
    /// the UTC day they fall on (default 2026-11-27)
    #[argh(option, default = "String::from(\"2026-11-27\")")]
    date: String,
    /// random seed (default 1)
    #[argh(option, default = "1")]
    seed: u64,
    /// how many user accounts (default 40)
    #[argh(option, default = "40")]
    users: usize,
    /// percent of envelopes whose Timestamp is an ISO string, not a date (default 20)
    #[argh(option, default = "20.0")]
    string_timestamps: f64,
    /// how many malformed records to add (default 0)
    #[argh(option, default = "0")]
    malformed: usize,
    /// where to write the notifications
    #[argh(option)]
    out: String,
    /// where to write auth_users as SQL (optional)
    #[argh(option)]
    users_sql: Option<String>,
}

/// insert an NDJSON file of notifications into the Mongo collection
#[derive(FromArgs)]
#[argh(subcommand, name = "load")]
struct Load {
    /// the NDJSON file (Mongo extended JSON)
    #[argh(option)]
    file: String,
    /// empty the collection first
    #[argh(switch)]
    drop: bool,
}

/// read one window of the Mongo collection through ses-report's own cursor, writing nothing
/// (the benchmark's floor for the Mongo path)
#[derive(FromArgs)]
#[argh(subcommand, name = "scan")]
struct Scan {
    /// window start (a date or an RFC 3339 instant)
    #[argh(option)]
    from: String,
    /// window end, exclusive
    #[argh(option)]
    to: String,
    /// cursor batch size (default 1000, as ingest)
    #[argh(option, default = "1000")]
    batch_size: u32,
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    let result = match args.command {
        Command::Generate(g) => generate(g),
        Command::Load(l) => load(l),
        Command::Scan(s) => scan(s),
    };
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ses-fixtures: {}", ses_report::redact::scrub(&e));
            ExitCode::FAILURE
        }
    }
}

fn generate(g: Generate) -> Result<String, String> {
    let plan = Plan {
        notifications: g.notifications,
        day: window::parse_date(&g.date)?,
        seed: g.seed,
        users: g.users,
        string_timestamps_percent: g.string_timestamps,
        malformed: g.malformed,
    };
    let mut out = BufWriter::new(File::create(&g.out).map_err(|e| format!("{}: {e}", g.out))?);
    let lines = fixtures::generate(&plan, &mut out).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    if let Some(path) = &g.users_sql {
        let mut sql = BufWriter::new(File::create(path).map_err(|e| format!("{path}: {e}"))?);
        fixtures::write_auth_users_sql(g.users, &mut sql).map_err(|e| e.to_string())?;
        sql.flush().map_err(|e| e.to_string())?;
    }
    Ok(format!("wrote {lines} notifications to {}", g.out))
}

fn load(l: Load) -> Result<String, String> {
    let env = Environment::from_process().map_err(|e| e.to_string())?;
    let client = mongo_client(&env).map_err(|e| e.to_string())?;
    let collection = client
        .database(&env.mongo_db)
        .collection::<Document>(&env.mongo_collection);
    if l.drop {
        collection.drop().run().map_err(|e| e.to_string())?;
    }
    let reader = BufReader::new(File::open(&l.file).map_err(|e| format!("{}: {e}", l.file))?);
    let mut batch = Vec::with_capacity(1000);
    let mut loaded = 0usize;
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        batch.push(
            fixtures::bson_document(&line)
                .map_err(|e| format!("{} line {}: {e}", l.file, n + 1))?,
        );
        if batch.len() == 1000 {
            loaded += batch.len();
            collection
                .insert_many(std::mem::take(&mut batch))
                .run()
                .map_err(|e| e.to_string())?;
        }
    }
    if !batch.is_empty() {
        loaded += batch.len();
        collection
            .insert_many(batch)
            .run()
            .map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "loaded {loaded} notifications into {}.{}",
        env.mongo_db, env.mongo_collection
    ))
}

fn scan(s: Scan) -> Result<String, String> {
    let env = Environment::from_process().map_err(|e| e.to_string())?;
    let window = window::Window {
        from: window::parse_bound(&s.from, &env.zone)?,
        to: window::parse_bound(&s.to, &env.zone)?,
    };
    let started = std::time::Instant::now();
    let mut count = 0u64;
    let mut with_id = 0u64;
    let mut source = MongoSource::open(&env, &window, s.batch_size).map_err(|e| e.to_string())?;
    while let Some(record) = source.next_record() {
        let record = record.map_err(|e| e.into_fatal().to_string())?;
        count += 1;
        with_id += u64::from(record.notification_id().is_some());
    }
    Ok(format!(
        "scanned={count} with_message_id={with_id} seconds={:.2}",
        started.elapsed().as_secs_f64()
    ))
}
