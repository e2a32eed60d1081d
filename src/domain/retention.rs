//! How long each kind of data is kept: `prune`'s cutoffs (docs/privacy.md, "Retention").

use time::OffsetDateTime;

/// What `prune` deletes, by kind of data: each kind's cutoff (docs/privacy.md, "Retention").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Detail rows of events before this, and finished runs started before it.
    pub details: OffsetDateTime,
    /// Resolved or dismissed failures last failed before this.
    pub failures: OffsetDateTime,
    /// Summary rows whose details are all gone and whose last event is before this (`None`:
    /// summaries are kept).
    pub summaries: Option<OffsetDateTime>,
}
