//! The command line's contract: every exit code, migrate, the lock, fast failure on dead
//! servers, and no password in any output.

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use crate::notifications::*;
use crate::util::TestEnv;

/// `--version` and `-V` print the version; `-h` is `--help`, for the program and each command.
#[test]
fn version_and_short_help_answer_as_every_tool_does() {
    let env = TestEnv::unmigrated("version");
    for flag in ["--version", "-V"] {
        let run = env.run(&[flag]);
        run.expect_code(0);
        assert_eq!(
            run.stdout(),
            format!("ses-report {}\n", env!("CARGO_PKG_VERSION")),
            "{run}"
        );
    }
    let short = env.run(&["-h"]);
    short.expect_code(0);
    assert_eq!(short.stdout(), env.run(&["--help"]).stdout());
    assert!(short.stdout().contains("--version"), "{short}");
    let stats = env.run(&["stats", "-h"]);
    stats.expect_code(0);
    assert!(stats.stdout().contains("--allow-empty"), "{stats}");
    // Every setting the configuration reads is named in --help.
    let source = include_str!("../src/config.rs");
    let mut settings: Vec<&str> = source
        .split('"')
        .filter(|s| {
            s.starts_with("SES_REPORT_") && s.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .collect();
    settings.sort_unstable();
    settings.dedup();
    assert!(settings.len() >= 15, "{settings:?}");
    let help = short.stdout();
    for setting in settings {
        assert!(help.contains(setting), "{setting} is not in --help");
    }
}

#[test]
fn help_documents_the_exit_codes_and_exits_0() {
    let env = TestEnv::unmigrated("help");
    let run = env.run(&["--help"]);
    run.expect_code(0);
    let codes = run
        .stdout()
        .split("Error codes:")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    for code in ["0", "1", "2", "3", "4", "5", "6", "7", "130"] {
        assert!(
            codes.contains(&format!("\n  {code} ")),
            "exit code {code} undocumented\n{run}"
        );
    }
    env.run(&["ingest", "--help"]).expect_code(0);
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new("usage");
    for args in [
        vec!["ingest", "--bogus"],
        vec!["frobnicate"],
        vec!["ingest", "--to", "2026-11-27"],
        vec!["ingest", "--date", "27/11/2026"],
        vec!["ingest", "--date", "2026-11-27", "--from", "2026-11-26"],
        vec!["ingest", "--tz", "Mars/Olympus", "--date", "2026-11-27"],
    ] {
        let run = env.run(&args);
        run.expect_code(2);
        assert!(!run.stderr().is_empty(), "no message\n{run}");
    }
}

/// Every command checks its options before it connects: a usage error is exit 2 at once, even
/// with both servers unreachable (a black-holed port would otherwise cost the connect timeout).
#[test]
fn each_commands_bad_option_exits_2_with_both_servers_down() {
    let env = TestEnv::unmigrated("usage_offline");
    let cases: [&[&str]; 15] = [
        &["ingest", "--batch-size", "0"],
        &["ingest", "--from", "2026-11-27", "--to", "2026-11-01"],
        &["retry", "--batch-size", "0"],
        &["rollup"],
        &["rollup", "--date", "yesterday"],
        &["stats", "--format", "xml"],
        &["stats", "--by", "planet"],
        &["stats", "--check", "--fail-on", "panic"],
        &["stats", "--tz", "Mars/Olympus"],
        &["suppressions", "--format", "xml"],
        &["suppressions", "--since", "last week"],
        &["report", "--html", "r.html", "--to", "2026-11-27"],
        &["failures", "--format", "xml"],
        &["prune", "--older-than", "0"],
        &["doctor", "--date", "yesterday"],
    ];
    for args in cases {
        let mut cmd = env.command(args);
        cmd.env("SES_REPORT_MYSQL_URL", "mysql://root@127.0.0.1:1/offline")
            .env("SES_REPORT_MONGO_URL", "mongodb://127.0.0.1:1");
        let started = Instant::now();
        let run = env.run_command(cmd, args, None);
        run.expect_code(2);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{args:?} took {:?}: it waited for a server\n{run}",
            started.elapsed()
        );
        assert!(!run.stderr().is_empty(), "{args:?}: no message\n{run}");
    }
}

#[test]
fn migrate_is_idempotent_and_leaves_auth_users_alone() {
    let env = TestEnv::unmigrated("migrate");
    let first = env.run(&["migrate"]);
    first.expect_code(0);
    assert!(
        first.stdout().contains("applied schema versions"),
        "{first}"
    );
    env.execute("CREATE TABLE auth_users (id BIGINT PRIMARY KEY, common_email VARCHAR(255)); INSERT INTO auth_users VALUES (1, 'a@b.c')");
    let second = env.run(&["migrate"]);
    second.expect_code(0);
    assert!(second.stdout().contains("up to date"), "{second}");
    assert_eq!(env.count("auth_users"), 1);
    let schema_files = std::fs::read_dir(crate::util::repo_path("sql"))
        .unwrap()
        .count();
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM ses_report_migrations"),
        schema_files.to_string()
    );
}

#[test]
fn an_unmigrated_database_fails_saying_what_to_run() {
    let env = TestEnv::unmigrated("unmigrated");
    let mut admin =
        mysql::Conn::new(mysql::Opts::from_url(&crate::util::mysql_server_url()).unwrap()).unwrap();
    admin
        .query_drop(format!("CREATE DATABASE `{}`", env.name))
        .unwrap();
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(1);
    assert!(run.stderr().contains("run `ses-report migrate`"), "{run}");
}

#[test]
fn dead_servers_fail_fast_with_what_to_check() {
    let mut env = TestEnv::new("dead_servers");
    env.vars
        .push(("SES_REPORT_CONNECT_TIMEOUT_SECS".into(), "2".into()));
    let mut dead_mysql = env.command(&["ingest", "--date", "2026-11-27"]);
    dead_mysql.env("SES_REPORT_MYSQL_URL", "mysql://root@127.0.0.1:1/x");
    let started = Instant::now();
    let run = env.run_command(dead_mysql, &["ingest"], None);
    run.expect_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        run.stderr().contains("cannot connect to MySQL")
            && run.stderr().contains("SES_REPORT_MYSQL_URL"),
        "{run}"
    );

    let mut dead_mongo = env.command(&["ingest", "--date", "2026-11-27"]);
    dead_mongo.env("SES_REPORT_MONGO_URL", "mongodb://127.0.0.1:1");
    let started = Instant::now();
    let run = env.run_command(dead_mongo, &["ingest"], None);
    run.expect_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        run.stderr().contains("MongoDB") && run.stderr().contains("SES_REPORT_MONGO_URL"),
        "{run}"
    );
    // One plain line with the cause, never the driver's structures.
    assert!(
        run.stderr().contains("no server answered (")
            && !run.stderr().contains("Topology")
            && !run.stderr().contains("labels:"),
        "{run}"
    );

    // A wrong password is no server that is down; an unknown database says to migrate.
    let mut denied = env.command(&["stats"]);
    denied.env(
        "SES_REPORT_MYSQL_URL",
        format!("mysql://root:wrong-pw-1@127.0.0.1:3306/{}", env.name),
    );
    let run = env.run_command(denied, &["stats"], None);
    run.expect_code(1);
    assert!(
        run.stderr().contains("Access denied")
            && run
                .stderr()
                .contains("check the user name and password in SES_REPORT_MYSQL_URL")
            && !run.stderr().contains("is the server up")
            && !run.stderr().contains("MySqlError {"),
        "{run}"
    );
    let mut unknown = env.command(&["stats"]);
    unknown.env(
        "SES_REPORT_MYSQL_URL",
        "mysql://root@127.0.0.1:3306/srt_no_such_database",
    );
    let run = env.run_command(unknown, &["stats"], None);
    run.expect_code(1);
    assert!(
        run.stderr()
            .contains("the database does not exist: run `ses-report migrate`"),
        "{run}"
    );

    let mut bad_setting = env.command(&["ingest"]);
    bad_setting.env("SES_REPORT_IO_TIMEOUT_SECS", "soon");
    let run = env.run_command(bad_setting, &["ingest"], None);
    run.expect_code(1);
    assert!(run.stderr().contains("SES_REPORT_IO_TIMEOUT_SECS"), "{run}");
}

#[test]
fn a_second_ingest_on_the_same_database_exits_4() {
    let env = TestEnv::new("lock");
    env.insert(&[send(
        "n-1",
        &mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]),
    )]);
    let mut holder = env.conn();
    let lock = format!("ses-report.ingest.{}", env.name);
    let got: Option<i64> = holder
        .exec_first("SELECT GET_LOCK(?, 0)", (&lock,))
        .unwrap();
    assert_eq!(got, Some(1));
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(4);
    assert!(run.stderr().contains("another ingest is running"), "{run}");
    // The message names the session holding the lock, for an operator to tell it from a dead one.
    let holder_id: u64 = holder
        .query_first("SELECT CONNECTION_ID()")
        .unwrap()
        .unwrap();
    assert!(
        run.stderr()
            .contains(&format!("held by connection {holder_id} (")),
        "{run}"
    );
    assert_eq!(env.count("aws_report_runs"), 0);
    drop(holder);
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
}

#[test]
fn passwords_never_reach_the_output() {
    let env = TestEnv::new("secrets");
    let secret = "Tr0ub4dor-s3cret";
    for (var, url) in [
        (
            "SES_REPORT_MYSQL_URL",
            format!("mysql://root:{secret}@127.0.0.1:3306/{}", env.name),
        ),
        (
            "SES_REPORT_MYSQL_URL",
            format!("mysql://nobody:{secret}@127.0.0.1:1/x"),
        ),
        (
            "SES_REPORT_MYSQL_URL",
            format!("postgres://nobody:{secret}@127.0.0.1/x"),
        ),
        (
            "SES_REPORT_MONGO_URL",
            format!("mongodb://nobody:{secret}@127.0.0.1:1/?connectTimeoutMS=500"),
        ),
    ] {
        let mut cmd = env.command(&["ingest", "--date", "2026-11-27"]);
        cmd.env(var, &url)
            .env("SES_REPORT_CONNECT_TIMEOUT_SECS", "2")
            .env("RUST_LOG", "trace");
        let run = env.run_command(cmd, &["ingest"], None);
        run.expect_code(1);
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(!all.contains(secret), "password leaked for {var}\n{run}");
        assert!(all.contains("***") || all.contains("denied"), "{run}");
    }
}

/// A password made of URL-special characters (`/ # ? @ :` and more), as generated secrets are:
/// percent-encoded it connects and every command works; written raw (an unparseable URL), every
/// command fails naming the setting and saying to percent-encode. No output of any command, on
/// success or failure, shows any four characters of it, raw or encoded, for the MySQL, the Mongo
/// and the ping URL alike.
#[test]
fn passwords_of_url_special_characters_connect_encoded_and_never_show() {
    let env = TestEnv::new("special_secret");
    let password = "Zx/#?@:Qv9%kB";
    let encoded = "Zx%2F%23%3F%40%3AQv9%25kB";
    let user = format!("srt_special_{}", std::process::id());
    let mut admin = env.conn();
    // No quote or backslash in the password: it can stand in the statement as it is.
    admin
        .query_drop(format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"
        ))
        .unwrap();
    admin
        .query_drop(format!("GRANT ALL ON `{}`.* TO '{user}'@'%'", env.name))
        .unwrap();
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    env.insert(&[send("n-1", &m)]);
    let leaks = |text: &str| -> Vec<String> {
        let mut found = Vec::new();
        for form in [password, encoded] {
            let chars: Vec<char> = form.chars().collect();
            for window in chars.windows(4) {
                let piece: String = window.iter().collect();
                if text.contains(&piece) {
                    found.push(piece);
                }
            }
        }
        found
    };
    let url = |written: &str| {
        format!(
            "mysql://{user}:{written}@127.0.0.1:3306/{}?prefer_socket=false",
            env.name
        )
    };
    let commands: [&[&str]; 9] = [
        &["migrate"],
        &["ingest", "--date", "2026-11-27"],
        &["rollup", "--date", "2026-11-27"],
        &["stats", "--date", "2026-11-27", "--format", "csv"],
        &["suppressions"],
        &["failures"],
        &["doctor", "--date", "2026-11-27"],
        &["prune", "--older-than", "30", "--dry-run"],
        &["retry"],
    ];
    for (written, works) in [(encoded, true), (password, false)] {
        for args in commands {
            let mut cmd = env.command(args);
            cmd.env("SES_REPORT_MYSQL_URL", url(written))
                .env("RUST_LOG", "trace");
            let run = env.run_command(cmd, args, None);
            let all = format!("{}{}", run.stdout(), run.stderr());
            assert_eq!(leaks(&all), Vec::<String>::new(), "{run}");
            if works {
                assert!(matches!(run.code(), 0 | 7), "{run}");
            } else {
                run.expect_code(1);
                assert!(
                    all.contains("SES_REPORT_MYSQL_URL") && all.contains("percent-encode"),
                    "{run}"
                );
            }
        }
    }
    // The Mongo URL (the stand-in has no authentication: the driver's refusal is the failure)
    // and a ping URL given without its scheme.
    for (var, value) in [
        (
            "SES_REPORT_MONGO_URL",
            format!("mongodb://app:{password}@127.0.0.1:1/?connectTimeoutMS=500"),
        ),
        (
            "SES_REPORT_MONGO_URL",
            format!("mongodb://app:{encoded}@127.0.0.1:1/?connectTimeoutMS=500"),
        ),
        ("SES_REPORT_PING_URL", format!("hc-ping.com/{password}")),
    ] {
        let args = ["ingest", "--date", "2026-11-27"];
        let mut cmd = env.command(&args);
        cmd.env(var, &value)
            .env("SES_REPORT_CONNECT_TIMEOUT_SECS", "2")
            .env("RUST_LOG", "trace");
        let run = env.run_command(cmd, &args, None);
        assert!(matches!(run.code(), 1 | 2), "{run}");
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert_eq!(leaks(&all), Vec::<String>::new(), "{var}: {run}");
        assert!(all.contains(var), "{run}");
    }
    admin.query_drop(format!("DROP USER '{user}'@'%'")).unwrap();
}

/// A mistyped collection or database is no green run that reads nothing: the run fails (exit 1)
/// naming the collection, what the database has, and the settings to check; an empty setting is a
/// configuration error, never the default; `doctor` says the same.
#[test]
fn a_missing_collection_or_an_empty_setting_fails_naming_it() {
    let env = TestEnv::new("missing_collection");
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    env.insert(&[send("n-1", &m)]);
    let args = ["ingest", "--date", "2026-11-27"];
    let mut cmd = env.command(&args);
    cmd.env("SES_REPORT_MONGO_COLLECTION", "seseventz");
    let run = env.run_command(cmd, &args, None);
    run.expect_code(1);
    assert!(
        run.stderr().contains(&format!(
            "the collection {}.seseventz does not exist ({} has sesevents): check SES_REPORT_MONGO_DB and SES_REPORT_MONGO_COLLECTION",
            env.name, env.name
        )),
        "{run}"
    );
    assert_eq!(env.count("aws_reports"), 0);

    let mut cmd = env.command(&["doctor", "--date", "2026-11-27"]);
    cmd.env("SES_REPORT_MONGO_COLLECTION", "seseventz");
    let doctor = env.run_command(cmd, &["doctor"], None);
    doctor.expect_code(7);
    assert!(
        doctor
            .stdout()
            .contains("FIX   SES_REPORT_MONGO_COLLECTION: the collection"),
        "{doctor}"
    );

    for var in [
        "SES_REPORT_MONGO_DB",
        "SES_REPORT_MONGO_COLLECTION",
        "SES_REPORT_TZ",
    ] {
        let mut cmd = env.command(&args);
        cmd.env(var, " ");
        let run = env.run_command(cmd, &args, None);
        run.expect_code(1);
        assert!(
            run.stderr().contains(&format!(
                "{var}: is set but empty: give it a value, or unset it"
            )),
            "{run}"
        );
    }
    env.run(&args).expect_code(0);
}

/// The rights each command needs, as README "Database rights" grants them: `migrate` as an
/// admin; `ingest`, `retry`, `rollup`, `prune` and the reading commands as a user with SELECT,
/// INSERT, UPDATE, DELETE on the report database and nothing else (no CREATE, ALTER or DROP),
/// who then cannot change the schema.
#[test]
fn ingest_and_the_reading_commands_run_as_a_least_privilege_user() {
    let mut env = TestEnv::new("least_privilege");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    let user = format!("srt_app_{}", std::process::id());
    env.execute(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'app-secret-9';\n\
         GRANT SELECT, INSERT, UPDATE, DELETE ON `{}`.* TO '{user}'@'%'",
        env.name
    ));
    let url = format!(
        "mysql://{user}:app-secret-9@127.0.0.1:3306/{}?prefer_socket=false",
        env.name
    );
    let m = mail("m-1", "2026-11-27T10:00:00.000Z", &["a@x.org"]);
    let mut broken = send("n-broken", &m);
    broken["Message"] = serde_json::json!("{not json");
    env.insert(&[
        send("n-1", &m),
        delivery("n-2", &m, "2026-11-27T10:00:01.000Z", &["a@x.org"]),
        bounce(
            "n-3",
            &m,
            "2026-11-27T10:00:02.000Z",
            "Permanent",
            "fb-1",
            &["a@x.org"],
        ),
        broken,
    ]);
    let commands: [(&[&str], i32); 9] = [
        (&["ingest", "--date", "2026-11-27"], 3),
        (&["retry"], 3),
        (&["rollup", "--date", "2026-11-27"], 0),
        (&["stats", "--date", "2026-11-27", "--format", "csv"], 0),
        (&["suppressions"], 0),
        (&["failures"], 0),
        (
            &["report", "--html", "/dev/null", "--date", "2026-11-27"],
            0,
        ),
        (&["prune", "--older-than", "30"], 0),
        // 7: the collection has no index on Timestamp; the rest is fine.
        (&["doctor", "--date", "2026-11-27"], 7),
    ];
    for (args, code) in commands {
        let mut cmd = env.command(args);
        cmd.env("SES_REPORT_MYSQL_URL", &url);
        let run = env.run_command(cmd, args, None);
        assert_eq!(run.code(), code, "{run}");
    }
    assert_eq!(
        env.scalar("SELECT COUNT(*) FROM aws_reports WHERE bounce_type = 'Permanent'"),
        "1"
    );
    // The application user cannot change the schema: migrate says it needs the admin.
    let mut cmd = env.command(&["migrate"]);
    cmd.env("SES_REPORT_MYSQL_URL", &url);
    let run = env.run_command(cmd, &["migrate"], None);
    run.expect_code(1);
    assert!(
        run.stderr()
            .contains("run it as a user with CREATE, ALTER, INDEX, DROP"),
        "{run}"
    );
    env.execute(&format!("DROP USER '{user}'@'%'"));
}

/// Small mistakes get a pointer: a mistyped option names the nearest real one; a `--from` after
/// the window's end names the `--to` default it was compared with; the error that ends a command
/// reaches stderr whatever RUST_LOG filters.
#[test]
fn mistakes_are_answered_with_what_was_meant() {
    let env = TestEnv::unmigrated("mistakes");
    let run = env.run(&["ingest", "--form", "2026-11-01"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("Unrecognized argument: --form Did you mean --from?"),
        "{run}"
    );
    let run = env.run(&["stats", "--chek"]);
    run.expect_code(2);
    assert!(run.stderr().contains("Did you mean --check?"), "{run}");

    let mut future = env.command(&["ingest", "--from", "2026-12-01"]);
    future.env("SES_REPORT_NOW", "2026-11-28T07:00:00Z");
    let run = env.run_command(future, &["ingest"], None);
    run.expect_code(2);
    assert!(
        run.stderr().contains("the window's end, --to's default (the start of today in UTC: 2026-11-28T00:00:00Z) is before --from (2026-12-01T00:00:00Z)"),
        "{run}"
    );

    for filter in ["off", "nonsense"] {
        let mut cmd = env.command(&["stats"]);
        cmd.env("RUST_LOG", filter);
        let run = env.run_command(cmd, &["stats"], None);
        run.expect_code(1);
        assert!(
            run.stderr().contains("ERROR ") && run.stderr().contains("run `ses-report migrate`"),
            "{filter}: {run}"
        );
    }
}
