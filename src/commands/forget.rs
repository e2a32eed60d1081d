//! `ses-report forget`: erases addresses on request (docs/privacy.md). Each address in a
//! transaction of its own; the output names each by its keyed-hash prefix, never in plain.

use crate::config::ForgetConfig;
use crate::domain::erasure;
use crate::error::{Exit, Result};
use crate::store::{erasure as store, Session};

pub fn run(config: &ForgetConfig) -> Result<Exit> {
    let mut session = Session::open(&config.env)?;
    let mut addresses = config.addresses.clone();
    if let Some(user_id) = config.user_id {
        let linked = session.retrying("reading the user's addresses", |conn| {
            store::addresses_of_user(conn, user_id)
        })?;
        println!(
            "user {user_id}: {} address(es) in the summary rows",
            linked.len()
        );
        for address in linked {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
    }
    let verb = if config.dry_run {
        "would change"
    } else {
        "changed"
    };
    let mut total = store::Changed::default();
    for address in &addresses {
        let hash = erasure::address_hash(&config.key, address);
        let changed = session.retrying("erasing an address", |conn| {
            store::forget(conn, &config.key, address, config.env.now, config.dry_run)
        })?;
        println!(
            "address {}…: {verb} summaries={} details={} suppressions={} failures={} runs={}",
            &hash[..12],
            changed.summaries,
            changed.details,
            changed.suppressions,
            changed.failures,
            changed.runs
        );
        total.summaries += changed.summaries;
        total.details += changed.details;
        total.suppressions += changed.suppressions;
        total.failures += changed.failures;
        total.runs += changed.runs;
    }
    println!(
        "{} address(es): {verb} {} row(s){}",
        addresses.len(),
        total.total(),
        if config.dry_run {
            " (dry run: nothing written)"
        } else {
            "; their later events are kept out by every ingest run with this key"
        }
    );
    Ok(Exit::Done)
}
