//! `ses-report migrate`: creates or upgrades the report tables.

use crate::config::Environment;
use crate::error::{Exit, Result};
use crate::store::{codes, migrations};

pub fn run(env: &Environment) -> Result<Exit> {
    let applied = migrations::migrate(env).map_err(|e| {
        if codes::is_access_denied(&e) {
            e.context("migrate creates and alters the report tables: run it as a user with CREATE, ALTER, INDEX, DROP and the data rights on the database (README: Database rights); ingest and the reading commands need only SELECT, INSERT, UPDATE, DELETE")
        } else {
            e
        }
    })?;
    let version = migrations::schema_version();
    if applied.is_empty() {
        println!("schema is up to date (version {version})");
    } else {
        println!("applied schema versions {applied:?}; now at version {version}");
    }
    Ok(Exit::Done)
}
