//! What MySQL's error codes mean to this job (MySQL's server and client error references):
//! which are worth a retry, which say another run got there first, which name a missing right,
//! and what to tell the operator about a refused connection. (`error::mysql_plain` prints
//! them.)

use crate::error::{Error, Server};

/// The server's code of a refusal, if the error is one.
fn code(e: &mysql::Error) -> Option<u16> {
    match e {
        mysql::Error::MySqlError(server) => Some(server.code),
        _ => None,
    }
}

/// A unique key refused a row (ER_DUP_ENTRY 1062, ER_DUP_ENTRY_WITH_KEY_NAME 1586). Planned
/// batches never insert a pair twice, so during ingest this means another run (another
/// partition's worker never does: a whole-stream run, or the same window twice) committed the
/// same notification between this batch's planning and its insert.
pub fn is_duplicate_key(e: &mysql::Error) -> bool {
    matches!(code(e), Some(1062 | 1586))
}

/// InnoDB chose this transaction as a deadlock's victim and rolled it back (ER_LOCK_DEADLOCK
/// 1213). The connection and its session locks are intact: the transaction can simply run again.
pub fn is_deadlock(e: &mysql::Error) -> bool {
    code(e) == Some(1213)
}

/// Errors that mean the connection or server is gone (or briefly unable), as opposed to a
/// problem with the data of one event: shutdown in progress 1053, connection killed 1927, lock
/// wait timeout 1205, deadlock 1213, server gone away 2006 or lost 2013 (reported by some
/// proxies), too many connections 1040; what a managed server answers during a failover or a
/// restart (`is_server_condition`); and any I/O, codec or driver error.
pub fn is_retryable(e: &mysql::Error) -> bool {
    match e {
        mysql::Error::MySqlError(server) => {
            matches!(server.code, 1053 | 1927 | 1205 | 1213 | 2006 | 2013 | 1040)
                || is_server_condition(e)
        }
        mysql::Error::IoError(_) | mysql::Error::CodecError(_) | mysql::Error::DriverError(_) => {
            true
        }
        _ => false,
    }
}

/// What a server answers while it cannot take this statement now but will after a failover,
/// a restart or a conflict (docs/compatibility.md, "Failovers", cites each):
/// - MySQL and MariaDB: 1290 ER_OPTION_PREVENTS_STATEMENT (`read_only`: an Aurora writer
///   demoted by a failover, a replica, a maintenance spell), 1836 ER_READ_ONLY_MODE, 1792
///   ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, 4031 ER_CLIENT_INTERACTION_TIMEOUT (MySQL
///   8.0.24+ closed an idle connection), 1317 ER_QUERY_INTERRUPTED (`KILL QUERY`, a restart).
/// - TiDB: 8002 and 8005 and 9007 (write conflicts: "the application can safely retry"), 8028
///   (the schema changed during the transaction), 9001 PD timeout, 9002 TiKV timeout, 9003
///   TiKV busy, 9005 Raft group unavailable.
pub fn is_server_condition(e: &mysql::Error) -> bool {
    matches!(
        code(e),
        Some(
            1290 | 1836
                | 1792
                | 4031
                | 1317
                | 8002
                | 8005
                | 8028
                | 9001
                | 9002
                | 9003
                | 9005
                | 9007
        )
    )
}

/// Errors after which the connection itself is no good, even if it still answers a ping: a
/// read-only server after a failover is the old writer, and the host name now leads to the new
/// one (Aurora moves its cluster endpoint by DNS); 4031 closed the session.
pub fn needs_new_connection(e: &mysql::Error) -> bool {
    matches!(code(e), Some(1290 | 1836 | 1792 | 4031))
}

/// A refusal made up from a read-only server's state, when a batch failed with an error that
/// says nothing of it (a proxy's 1105, say): read-only is why, and it is retried as such.
pub fn read_only_refusal(cause: &mysql::Error) -> mysql::Error {
    mysql::Error::MySqlError(mysql::MySqlError {
        state: "HY000".into(),
        code: 1290,
        message: format!(
            "the server is read-only (@@read_only or @@innodb_read_only is on), which refused the batch: {}",
            crate::error::mysql_plain(cause)
        ),
    })
}

/// Whether doing the same again on a new connection can succeed (`is_retryable` of the MySQL
/// error behind `e`, through its context).
pub fn is_retryable_error(e: &Error) -> bool {
    e.mysql_source().is_some_and(is_retryable)
}

/// Whether MySQL refused this for want of a right (1044 database, 1142 table, 1227
/// operation): the user is the problem, not the server or the data.
pub fn is_access_denied(e: &Error) -> bool {
    matches!(e.mysql_source().and_then(code), Some(1044 | 1142 | 1227))
}

/// What to check when MySQL refuses a connection, by its error code (1045 access denied, 1044
/// no rights on the database, 1049 unknown database): a wrong password is no server that is down.
pub fn connect_hint(e: &mysql::Error) -> String {
    let var = Server::MySql.variable();
    match code(e) {
        Some(1045) => format!("check the user name and password in {var} (percent-encode special characters)"),
        Some(1044) => format!("the user has no rights on that database: GRANT them (README: Database rights), or check the database in {var}"),
        Some(1049) => format!("the database does not exist: run `ses-report migrate` as a user allowed to create it, or check its name in {var}"),
        _ => format!("is the server up and reachable from here? check the host and port in {var}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16) -> mysql::Error {
        mysql::Error::MySqlError(mysql::MySqlError {
            state: "HY000".into(),
            message: "m".into(),
            code,
        })
    }

    #[test]
    fn lost_connections_and_deadlocks_are_retryable_data_errors_are_not() {
        assert!(is_retryable_error(&Error::mysql("x", server(1927))));
        assert!(is_retryable_error(
            &Error::mysql("x", server(1213)).context("recomputing rollups")
        ));
        assert!(!is_retryable_error(&Error::mysql("x", server(1062))));
        assert!(!is_retryable_error(&Error::mysql("x", server(1644))));
        assert!(!is_retryable_error(&Error::usage("x")));
        assert!(is_deadlock(&server(1213)) && !is_deadlock(&server(1205)));
        assert!(is_duplicate_key(&server(1586)));
    }

    #[test]
    fn failovers_and_conflicts_are_retried_and_read_only_asks_for_a_new_connection() {
        for code in [
            1290, 1836, 1792, 4031, 1317, 8002, 8005, 8028, 9001, 9002, 9003, 9005, 9007,
        ] {
            assert!(is_retryable(&server(code)), "{code}");
            assert!(is_server_condition(&server(code)), "{code}");
        }
        assert!(needs_new_connection(&server(1290)) && needs_new_connection(&server(4031)));
        assert!(!needs_new_connection(&server(1317)) && !needs_new_connection(&server(1213)));
        let made = read_only_refusal(&server(1105));
        assert!(is_retryable(&made) && needs_new_connection(&made));
        // Data errors stay data errors: a trigger's SIGNAL, a bad value, a too long one.
        for code in [1644, 1366, 1406, 1105] {
            assert!(!is_retryable(&server(code)), "{code}");
        }
    }

    #[test]
    fn missing_rights_and_refused_connections_say_what_to_fix() {
        assert!(is_access_denied(
            &Error::mysql("x", server(1142)).context("migrating")
        ));
        assert!(!is_access_denied(&Error::mysql("x", server(1045))));
        assert!(connect_hint(&server(1045)).contains("password"));
        assert!(connect_hint(&server(1049)).contains("migrate"));
    }
}
