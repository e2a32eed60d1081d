//! The user accounts table (`auth_users (id, common_email)` unless `SES_REPORT_USERS_*` say
//! otherwise), read only: who a recipient address belongs to, cached for the run. The rule that
//! picks between a `user_id` header and the address lives in `domain::users`.

use std::collections::HashMap;

use mysql::prelude::Queryable;
use mysql::{Conn, Value};

use super::select_in;
use crate::config::UsersTable;
use crate::domain::ses::SesEvent;
use crate::domain::users::{self, UserLink};

/// How `auth_users` can be searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UserLookup {
    /// No `auth_users` table: only `user_id` headers link users.
    NoTable,
    /// `common_email` has a case-insensitive collation: `IN (...)` uses the index.
    CaseInsensitive,
    /// A case-sensitive collation: compare lower-cased (no index, but correct).
    CaseSensitive,
}

/// The most addresses the user cache holds: past that it starts afresh, so a day with millions
/// of distinct recipients cannot grow memory without bound (a refetch costs one query per batch).
const MAX_CACHED_ADDRESSES: usize = 20_000;

/// `auth_users` by email, cached for the run; misses are cached too.
pub struct UserDirectory {
    lookup: UserLookup,
    cache: HashMap<String, Option<u64>>,
    /// `SELECT id, email FROM table WHERE {column} IN ({keys})`, names filled in.
    select: String,
}

impl UserDirectory {
    pub fn open(conn: &mut Conn, users: &UsersTable) -> Result<UserDirectory, mysql::Error> {
        let collation: Option<Option<String>> = conn.exec_first(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = ?",
            (users.schema.as_deref(), &users.table, &users.email_column),
        )?;
        let lookup = match collation {
            None => {
                log::warn!(
                    "no table {} with a column {} (SES_REPORT_USERS_TABLE, SES_REPORT_USERS_EMAIL_COLUMN): users are linked by user_id headers only",
                    users.sql_name(),
                    users.email_column
                );
                UserLookup::NoTable
            }
            Some(Some(c)) if c.ends_with("_ci") => UserLookup::CaseInsensitive,
            Some(_) => UserLookup::CaseSensitive,
        };
        let column = match lookup {
            UserLookup::CaseSensitive => format!("LOWER(`{}`)", users.email_column),
            _ => format!("`{}`", users.email_column),
        };
        Ok(UserDirectory {
            lookup,
            cache: HashMap::new(),
            select: format!(
                "SELECT `{}`, `{}` FROM {} WHERE {column} IN ({{keys}})",
                users.id_column,
                users.email_column,
                users.sql_name()
            ),
        })
    }

    /// Looks up, in as few queries as possible, every address not yet in the cache.
    pub fn prefetch<'a>(
        &mut self,
        conn: &mut Conn,
        addresses: impl Iterator<Item = &'a str>,
    ) -> Result<(), mysql::Error> {
        let mut wanted: Vec<&str> = addresses.collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|a| !self.cache.contains_key(*a))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if self.cache.len() + missing.len() > MAX_CACHED_ADDRESSES {
            // Start afresh, keeping nothing: every address of this batch is fetched again.
            log::debug!(
                "user cache full ({} addresses): starting afresh",
                self.cache.len()
            );
            self.cache.clear();
            self.cache.shrink_to(MAX_CACHED_ADDRESSES);
            missing = wanted;
        }
        if self.lookup == UserLookup::NoTable {
            for a in missing {
                self.cache.insert(a.to_string(), None);
            }
            return Ok(());
        }
        let rows: Vec<(Value, Option<String>)> =
            select_in(conn, &self.select, missing.iter().copied())?;
        let mut found: HashMap<String, Vec<u64>> = HashMap::new();
        for (id, email) in rows {
            let Some(email) = email else { continue };
            match mysql::from_value_opt::<u64>(id.clone()) {
                Ok(id) => found
                    .entry(crate::domain::text::normalize_address(&email))
                    .or_default()
                    .push(id),
                Err(_) => log::warn!(
                    "user row for {email} has an id that is not a whole number: {id:?}; ignored"
                ),
            }
        }
        for address in missing {
            let ids = found.remove(address).unwrap_or_default();
            let chosen = ids.iter().copied().min();
            if ids.len() > 1 {
                log::warn!(
                    "{} user rows have the address {address} (ids {ids:?}): using the smallest, {}",
                    ids.len(),
                    chosen.unwrap_or(0)
                );
            }
            self.cache.insert(address.to_string(), chosen);
        }
        Ok(())
    }

    /// The user for an address already prefetched.
    pub fn by_email(&self, address: &str) -> Option<u64> {
        self.cache.get(address).copied().flatten()
    }

    /// The user a recipient of `event` resolves to (the rule: `domain::users::link`).
    pub fn link(&self, event: &SesEvent, recipient: &str) -> UserLink {
        users::link(event, recipient, |address| self.by_email(address))
    }
}
