//! The domain: what SES events mean and how they are counted, with no I/O. Everything here is
//! pure and unit-tested with plain values; the other rooms (`source`, `store`, `ingest`,
//! `reports`) call into it and never the other way round.
//!
//! - `event_kind`: the ten event types and the one table that describes them.
//! - `ses`: the SNS envelope and the SES record inside it, in both dialects, as `SesEvent`s.
//! - `accounting`: which (notification, recipient) pairs are new, how summary rows merge.
//! - `engagement`: which opens and clicks are people and which are machines.
//! - `erasure`: keyed hashes, pseudonyms and scrubbing of erased addresses.
//! - `provider`: the mailbox provider behind a recipient.
//! - `tags`: `mail.tags`, with the configuration set and sending IP.
//! - `users`: the rule that links a recipient to a user account.
//! - `run`: the counts and statuses of a run.
//! - `suppression`: the suppression rules: signals, the ledger's entries, the decisions.
//! - `figures`, `verdict`: rollup counters and groupings; SES's rates and verdicts over them,
//!   and the block rate's.
//! - `bounce`: why a bounce or delay happened, from the receiving server's reply.
//! - `timing`: send to delivery, first attempts, delays by type.
//! - `text`: addresses as the job compares them, bounded strings.
//! - `partition`: which notifications one of N parallel workers applies.
//! - `window`, `zone`, `timestamps`: which instants a run reads, day boundaries in a zone, and
//!   instants as SES, SNS and MySQL spell them.

pub mod accounting;
pub mod bounce;
pub mod engagement;
pub mod erasure;
pub mod event_kind;
pub mod figures;
pub mod partition;
pub mod provider;
pub mod retention;
pub mod run;
pub mod ses;
pub mod suppression;
pub mod tags;
pub mod text;
pub mod timestamps;
pub mod timing;
pub mod users;
pub mod verdict;
pub mod window;
pub mod zone;
