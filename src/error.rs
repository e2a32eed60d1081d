//! The errors that end a command, and the exit codes they map to.
//!
//! An `Error` stops the command: its variant says how it is handled (usage errors exit 2, a
//! held lock 4, a stop signal 130, the rest 1; MySQL errors know whether retrying can help), and
//! its message says what to fix, naming the variable, the server or the file. Per-record problems
//! are not errors here: they are `domain::ses::RecordError`s, counted and kept, and the run goes
//! on. `Exit` is the documented mapping to process exit codes.

use std::fmt;

use crate::redact;

/// Process exit codes, as documented in `--help` and the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done, including nothing to do.
    Done = 0,
    /// Fatal: configuration, connection, schema not migrated.
    Fatal = 1,
    /// The command line could not be understood.
    Usage = 2,
    /// Finished, but some records failed; each is in `aws_report_failures`.
    RecordsFailed = 3,
    /// Another ingest holds the lock on this database; nothing was done.
    Locked = 4,
    /// `stats --check`: a group with enough volume is critical.
    Critical = 5,
    /// `stats --check --fail-on warning`: a group is at warning level, none critical.
    Warning = 6,
    /// `doctor`: it found something to fix (listed on stdout).
    NeedsCare = 7,
    /// Stopped by SIGTERM or SIGINT after the batch in flight (128 + SIGINT, as shells report).
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Which server a connection error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    MySql,
    Mongo,
}

impl Server {
    pub fn variable(self) -> &'static str {
        match self {
            Server::MySql => "SES_REPORT_MYSQL_URL",
            Server::Mongo => "SES_REPORT_MONGO_URL",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Server::MySql => "MySQL",
            Server::Mongo => "MongoDB",
        }
    }
}

/// An error that ends the command.
#[derive(Debug)]
pub enum Error {
    /// The command line is wrong (exit 2); the message names the option.
    Usage(String),
    /// A setting from the environment is wrong.
    Config {
        variable: &'static str,
        problem: String,
    },
    /// A server cannot be reached or used. `target` is its redacted URL, `detail` the cause on
    /// one line, `hint` what to check (`Unreachable::hint_for_mysql` and the like say which).
    Unreachable {
        server: Server,
        target: String,
        detail: String,
        hint: String,
    },
    /// MySQL failed while doing something. Kept whole so that callers can tell a lost
    /// connection, deadlock or lock wait timeout (retryable) from a problem with the data.
    MySql { doing: String, source: mysql::Error },
    /// Reading the Mongo source failed for good (after its retries).
    Mongo { detail: String },
    /// The database's schema is older than this binary's.
    Schema {
        database: String,
        found: u32,
        needed: u32,
    },
    /// Stored figures cannot answer as asked until an operator runs `fix` (exit 1).
    NeedsAction { problem: String, fix: String },
    /// A run lost its connection mid-way and could not take its lock again (exit 1, not 4:
    /// batches were applied).
    LockLost { database: String, waited: u64 },
    /// Another ingest holds the lock on the database (exit 4).
    Locked {
        database: String,
        lock: String,
        /// Who holds it, as the server sees it (connection id, idle time, host).
        holder: Option<String>,
    },
    /// The run reached `SES_REPORT_DEADLINE_SECS` and stopped after the batch in flight.
    Deadline { seconds: u64 },
    /// SIGTERM or SIGINT asked the run to stop (exit 130).
    Interrupted { signal: &'static str },
    /// A local file or system call failed.
    Io {
        doing: String,
        source: std::io::Error,
    },
    /// What was being done when `source` happened (the exit code is the source's).
    Context { doing: String, source: Box<Error> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }

    pub fn config(variable: &'static str, problem: impl Into<String>) -> Error {
        Error::Config {
            variable,
            problem: problem.into(),
        }
    }

    pub fn mysql(doing: impl Into<String>, source: mysql::Error) -> Error {
        Error::MySql {
            doing: doing.into(),
            source,
        }
    }

    pub fn io(doing: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            doing: doing.into(),
            source,
        }
    }

    /// Prefixes what was being done when the error happened.
    pub fn context(self, doing: impl Into<String>) -> Error {
        Error::Context {
            doing: doing.into(),
            source: Box::new(self),
        }
    }

    /// The MySQL error behind this one, through its context, if any (`store::codes` reads
    /// its code).
    pub fn mysql_source(&self) -> Option<&mysql::Error> {
        match self {
            Error::MySql { source, .. } => Some(source),
            Error::Context { source, .. } => source.mysql_source(),
            _ => None,
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) => Exit::Usage,
            Error::Locked { .. } => Exit::Locked,
            Error::Interrupted { .. } => Exit::Interrupted,
            Error::Context { source, .. } => source.exit(),
            _ => Exit::Fatal,
        }
    }
}

/// A MySQL error as one plain line: the server's code and message, not the driver's structure
/// (`MySqlError { ERROR 1045 (28000): ... }`).
pub fn mysql_plain(e: &mysql::Error) -> String {
    match e {
        mysql::Error::MySqlError(e) => format!("error {} ({}): {}", e.code, e.state, e.message),
        mysql::Error::IoError(e) => e.to_string(),
        mysql::Error::DriverError(e) => e.to_string(),
        mysql::Error::CodecError(e) => e.to_string(),
        other => other.to_string(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => f.write_str(message),
            Error::Config { variable, problem } => write!(f, "{variable}: {problem}"),
            Error::Unreachable {
                server,
                target,
                detail,
                hint,
            } => write!(
                f,
                "cannot connect to {} at {target}: {}: {hint}",
                server.name(),
                redact::scrub(detail),
            ),
            Error::MySql { doing, source } => write!(
                f,
                "MySQL failed while {doing}: {}",
                redact::scrub(&mysql_plain(source))
            ),
            Error::Mongo { detail } => f.write_str(&redact::scrub(detail)),
            Error::Schema {
                database,
                found,
                needed,
            } => write!(
                f,
                "database {database} is at schema version {found}, this ses-report needs {needed}: run `ses-report migrate` first"
            ),
            Error::NeedsAction { problem, fix } => write!(f, "{problem}: run `{fix}`"),
            Error::LockLost { database, waited } => write!(
                f,
                "lost the MySQL connection mid-run and could not take the ingest lock on {database} again within {waited} s \
                 (the server may still hold the old session, or another ingest took the lock meanwhile): \
                 the batches applied so far are kept and their days stay marked; run the same window again"
            ),
            Error::Locked {
                database,
                lock,
                holder,
            } => {
                write!(
                    f,
                    "another ingest is running on database {database} (it holds the MySQL lock {lock}); nothing done"
                )?;
                match holder {
                    Some(holder) => write!(
                        f,
                        ". The lock is held by {holder}: if no ingest is running (its machine or network was lost), end that session with KILL"
                    ),
                    None => Ok(()),
                }
            }
            Error::Deadline { seconds } => write!(
                f,
                "stopped at the deadline of {seconds} s (SES_REPORT_DEADLINE_SECS) after the batch in flight; a rerun of the same window finishes it"
            ),
            Error::Interrupted { signal } => write!(
                f,
                "stopped by {signal} after the batch in flight; a rerun of the same window finishes it"
            ),
            Error::Io { doing, source } => write!(f, "{doing}: {source}"),
            Error::Context { doing, source } => write!(f, "{doing}: {source}"),
        }
    }
}

/// The whole chain is in `Display` (printed once, at the edge), so no `source()` is reported:
/// a chain printer would otherwise repeat each cause.
impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_variant_through_context() {
        assert_eq!(Error::usage("x").exit(), Exit::Usage);
        let locked = Error::Locked {
            database: "d".into(),
            lock: "l".into(),
            holder: None,
        };
        assert_eq!(locked.context("taking the lock").exit(), Exit::Locked);
        assert_eq!(
            Error::Interrupted { signal: "SIGTERM" }.exit(),
            Exit::Interrupted
        );
        assert_eq!(Error::config("SES_REPORT_TZ", "x").exit(), Exit::Fatal);
    }

    #[test]
    fn messages_name_the_variable_and_hide_passwords() {
        redact::register_url("mysql://u:sekret-pw@h/d");
        let e = Error::Unreachable {
            server: Server::MySql,
            target: redact::url("mysql://u:sekret-pw@h/d"),
            detail: "refused for sekret-pw".into(),
            hint: format!("check the host in {}", Server::MySql.variable()),
        };
        let text = e.to_string();
        assert!(text.contains("SES_REPORT_MYSQL_URL"), "{text}");
        assert!(!text.contains("sekret-pw"), "{text}");
    }
}
