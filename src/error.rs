//! The program's two kinds of failure and its exit codes.
//!
//! A `Fatal` stops the run (bad configuration, a server that is down, an unmigrated schema): it
//! carries one message that says what to fix. Per-record problems are not errors here: they are
//! `ses::RecordError`s, counted and kept, and the run goes on. `Exit` is the documented mapping
//! to process exit codes.

use std::fmt;

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
    /// Stopped by SIGTERM or SIGINT after the batch in flight (128 + SIGINT, as shells report).
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error that ends the run, with the context that led to it.
#[derive(Debug)]
pub struct Fatal {
    message: String,
    exit: Exit,
}

impl Fatal {
    pub fn new(message: impl Into<String>) -> Fatal {
        Fatal {
            message: message.into(),
            exit: Exit::Fatal,
        }
    }

    pub fn usage(message: impl Into<String>) -> Fatal {
        Fatal {
            message: message.into(),
            exit: Exit::Usage,
        }
    }

    pub fn interrupted(message: impl Into<String>) -> Fatal {
        Fatal {
            message: message.into(),
            exit: Exit::Interrupted,
        }
    }

    pub fn locked(message: impl Into<String>) -> Fatal {
        Fatal {
            message: message.into(),
            exit: Exit::Locked,
        }
    }

    pub fn exit(&self) -> Exit {
        self.exit
    }

    /// Prefixes what was being done when the error happened.
    pub fn context(self, what: impl fmt::Display) -> Fatal {
        Fatal {
            message: format!("{what}: {}", self.message),
            exit: self.exit,
        }
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
