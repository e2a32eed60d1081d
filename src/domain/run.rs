//! A run's outcome as the domain sees it: the counts every run reports, and the statuses a run
//! can end in. `store::runs` records them; `ingest` decides them.

/// The counts every run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub scanned: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Records kept out because every recipient they name was erased (`forget`).
    pub erased: u64,
    pub users_resolved: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Ok,
    Partial,
    Failed,
    /// Stopped by a signal after the batch in flight.
    Interrupted,
    /// Found `running` by a later run that holds the lock: killed, or its machine lost.
    Abandoned,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Abandoned => "abandoned",
        }
    }
}

impl Counts {
    /// How a run that got to its end without a fatal error ended.
    pub fn status(&self) -> RunStatus {
        if self.failed > 0 {
            RunStatus::Partial
        } else {
            RunStatus::Ok
        }
    }
}
