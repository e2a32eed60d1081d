//! Managed databases (issue 21): TLS to MySQL and to MongoDB, and failovers waited out. Each
//! test that needs a server of its own starts it (`crate::servers`) and stops it by its process
//! id; the shared servers are left alone.

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use crate::faults::{day, slow_once, spawn, wait_output, wait_until_slept};
use crate::servers::{
    job_password_encoded, Certificates, PrivateMariaDb, Scratch, TlsTerminator, JOB_PASSWORD,
};
use crate::util::{mongo_server_url, with_database, MySqlServer, Run, TestEnv};

/// `env` run with another MySQL URL (this test's database on `server_url`).
fn run_with_url(env: &TestEnv, server_url: &str, args: &[&str]) -> Run {
    let mut cmd = env.command(args);
    cmd.env("SES_REPORT_MYSQL_URL", with_database(server_url, &env.name))
        .env("SES_REPORT_CONNECT_TIMEOUT_SECS", "5");
    env.run_command(cmd, args, None)
}

/// No output shows the job's password, raw or encoded, or any 4 characters of it.
fn assert_no_password(run: &Run) {
    let out = format!("{}{}", run.stdout(), run.stderr());
    let encoded = job_password_encoded();
    for secret in [JOB_PASSWORD, encoded.as_str()] {
        for piece in secret.as_bytes().windows(4) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(!out.contains(piece), "{piece:?} of the password in: {run}");
        }
    }
}

/// `migrate` with `server_url` is refused: exit 1, each of `says` in its message, no password.
fn refused(env: &TestEnv, server_url: &str, says: &[&str]) -> Run {
    let run = run_with_url(env, server_url, &["migrate"]);
    run.expect_code(1);
    for phrase in says {
        assert!(run.stderr().contains(phrase), "{phrase:?} not said: {run}");
    }
    assert_no_password(&run);
    run
}

#[test]
fn a_tls_only_mariadb_takes_verified_tls_and_every_refusal_says_what_to_set() {
    let server = PrivateMariaDb::start(true);
    let certs = server.certificates.as_ref().unwrap();
    let (ca, other) = (
        certs.ca.display().to_string(),
        certs.other_ca.display().to_string(),
    );
    let verified = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}");
    let env = TestEnv::unmigrated_on("tls_only", server.server("localhost", &verified));
    let job = |host: &str, options: &str| server.server(host, options).job;

    // Plain TCP: the server's refusal, and the option to set.
    let started = Instant::now();
    let plain = refused(
        &env,
        &job("127.0.0.1", "ssl-mode=DISABLED"),
        &["accepts TLS connections only", "ssl-mode=VERIFY_IDENTITY"],
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{plain}");

    // A CA that signed nothing of the server's: name ssl-ca.
    refused(
        &env,
        &job(
            "localhost",
            &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={other}"),
        ),
        &["set ssl-ca=PATH"],
    );

    // The certificate names localhost, not 127.0.0.1: VERIFY_IDENTITY refuses, VERIFY_CA takes it.
    refused(
        &env,
        &job("127.0.0.1", &verified),
        &["does not name the host", "ssl-mode=VERIFY_CA"],
    );
    let ca_only = run_with_url(
        &env,
        &job("127.0.0.1", &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}")),
        &["migrate"],
    );
    ca_only.expect_code(0);

    // The default, PREFERRED, takes TLS when the server offers it, and moves to the server's
    // socket on a loopback address (as before); REQUIRED stays on TCP, encrypted without a
    // check. doctor says which.
    for (options, says) in [
        ("", "is local (ssl-mode=PREFERRED, not encrypted)"),
        (
            "ssl-mode=REQUIRED",
            "is local and uses TLS (TLSv1.3) with ssl-mode=REQUIRED",
        ),
    ] {
        run_with_url(&env, &job("127.0.0.1", options), &["migrate"]).expect_code(0);
        let doctor = run_with_url(&env, &job("127.0.0.1", options), &["doctor"]);
        assert!(doctor.stdout().contains(says), "{doctor}");
    }
    // An account that requires a client certificate: refused without one, naming ssl-cert;
    // taken with the one the CA signed.
    server.sql(
        "CREATE USER 'sescert'@'%' IDENTIFIED BY 'c3rt-pw' REQUIRE X509;
         GRANT ALL PRIVILEGES ON `srt\\_%`.* TO 'sescert'@'%';",
    );
    let as_cert_user = |options: &str| {
        job("localhost", options).replacen(
            &format!("ses:{}@", job_password_encoded()),
            "sescert:c3rt-pw@",
            1,
        )
    };
    refused(
        &env,
        &as_cert_user(&verified),
        &["set ssl-cert=PATH and ssl-key=PATH"],
    );
    let (cert, key) = (certs.client_cert.display(), certs.client_key.display());
    let with_cert = as_cert_user(&format!("{verified}&ssl-cert={cert}&ssl-key={key}"));
    run_with_url(&env, &with_cert, &["migrate"]).expect_code(0);

    // A missing CA file is a configuration error before any connection.
    refused(
        &env,
        &job("localhost", "ssl-ca=/nonexistent/ca.pem"),
        &["ssl-ca=/nonexistent/ca.pem is not a readable file"],
    );
}

#[test]
fn a_version_1_certificate_encrypts_but_cannot_be_verified_and_the_message_says_so() {
    // MySQL's documented openssl recipe and MariaDB 11.4's own certificates are X.509 v1, which
    // rustls refuses to verify (sqlx#3091): REQUIRED and the default connect, VERIFY_CA explains.
    let server = PrivateMariaDb::start_with(true, true);
    let ca = server.ca();
    let env = TestEnv::unmigrated_on("tls_v1", server.server("localhost", "ssl-mode=REQUIRED"));
    env.run(&["migrate"]).expect_code(0);
    let doctor = env.run(&["doctor"]);
    assert!(
        doctor
            .stdout()
            .contains("uses TLS (TLSv1.3) with ssl-mode=REQUIRED"),
        "{doctor}"
    );
    refused(
        &env,
        &server
            .server("localhost", &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"))
            .job,
        &["X.509 version 1", "ssl-mode=REQUIRED"],
    );
}

#[test]
fn the_demo_day_over_verified_tls_gives_the_rows_of_a_plain_connection() {
    let server = PrivateMariaDb::start(true);
    let ca = server.ca();
    let env = TestEnv::demo_on(
        "tls_demo",
        server.server(
            "localhost",
            &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
        ),
    );
    let run = env.ingest(&["--date", "2026-11-27"]);
    let plain = TestEnv::demo("tls_demo_plain");
    let plain_run = plain.ingest(&["--date", "2026-11-27"]);
    assert_eq!(run.code(), plain_run.code(), "{run}\n{plain_run}");
    assert!(env.count("aws_report_details") > 50, "{run}");
    assert_eq!(env.snapshot(), plain.snapshot());
    assert_eq!(
        env.count("aws_report_failures"),
        plain.count("aws_report_failures")
    );
    assert_no_password(&run);
    // doctor says the connection is encrypted and checked.
    let doctor = env.run(&["doctor"]);
    assert!(
        doctor
            .stdout()
            .contains("ok    the MySQL connection to localhost uses TLS (TLSv1.3")
            && doctor.stdout().contains(
                "with ssl-mode=VERIFY_IDENTITY: the server's certificate and host name are checked"
            ),
        "{doctor}"
    );
}

#[test]
fn a_read_only_spell_in_the_middle_of_a_run_is_waited_out_with_no_failures() {
    let server = PrivateMariaDb::start(true);
    let ca = server.ca();
    let mysql = server.server(
        "localhost",
        &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
    );
    let clean = TestEnv::new_on("ro_clean", mysql.clone());
    clean.insert(&day(40));
    clean.ingest(&["--date", "2026-11-27"]).expect_code(0);

    let mut env = TestEnv::new_on("ro_spell", mysql);
    env.vars.push(("SES_REPORT_RETRIES".into(), "6".into()));
    env.insert(&day(40));
    slow_once(&env, "m-015", 1);
    let child = spawn(
        &env,
        &["ingest", "--date", "2026-11-27", "--batch-size", "5"],
    );
    wait_until_slept(&env, "m-015");
    // The job's account has no READ_ONLY ADMIN: its writes are refused (1290) until it ends.
    server.sql("SET GLOBAL read_only = 1");
    std::thread::sleep(Duration::from_secs(4));
    server.sql("SET GLOBAL read_only = 0");
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("error 1290") && stderr.contains("read-only"),
        "{stderr}"
    );
    assert!(stderr.contains("reconnected"), "{stderr}");
    assert_eq!(env.count("aws_report_failures"), 0, "{stderr}");
    assert_eq!(env.snapshot(), clean.snapshot());
}

#[test]
fn a_killed_query_is_retried() {
    let clean = crate::faults::clean_run("kill_query_clean", 30);
    let env = TestEnv::new("kill_query");
    env.insert(&day(30));
    // The test holds the details table; the ingest's first statement on it waits, is killed
    // (1317), and is run again once the table is free.
    let mut holder = env.conn();
    holder
        .query_drop("LOCK TABLES aws_report_details WRITE")
        .unwrap();
    let child = spawn(&env, &["ingest", "--date", "2026-11-27"]);
    let mut admin = env.conn();
    let deadline = Instant::now() + Duration::from_secs(20);
    let id: u64 = loop {
        let waiting: Option<u64> = admin
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND STATE LIKE 'Waiting for table metadata lock' AND ID <> CONNECTION_ID()",
                (&env.name,),
            )
            .unwrap();
        if let Some(id) = waiting {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the ingest never waited for the table"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    admin.query_drop(format!("KILL QUERY {id}")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    holder.query_drop("UNLOCK TABLES").unwrap();
    let (code, stdout, stderr) = wait_output(child);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("error 1317") && stderr.contains("retry 1/"),
        "{stderr}"
    );
    assert_eq!(env.count("aws_report_failures"), 0);
    assert_eq!(env.snapshot(), clean.snapshot());
}

#[test]
fn mongo_over_tls_through_a_terminator_with_its_own_ca() {
    let dir = Scratch::new("mongo-tls");
    let certs = Certificates::make(&dir.0, "DNS:localhost");
    let target = mongo_server_url()
        .trim_start_matches("mongodb://")
        .trim_end_matches('/')
        .to_string();
    let terminator = TlsTerminator::start(&target, &certs);
    let clean = TestEnv::demo("mongo_tls_clean");
    let clean_run = clean.ingest(&["--date", "2026-11-27"]);
    let env = TestEnv::demo_on("mongo_tls", MySqlServer::shared());
    let url = |options: &str| format!("mongodb://localhost:{}/?{options}", terminator.port);
    let with_mongo = |mongo: String, args: &[&str]| {
        env.run_with_vars(
            args,
            &[
                ("SES_REPORT_MONGO_URL", Some(&mongo)),
                ("SES_REPORT_CONNECT_TIMEOUT_SECS", Some("5")),
            ],
        )
    };
    let ca = certs.ca.display().to_string();
    let other = certs.other_ca.display().to_string();
    // A CA that did not sign the terminator's certificate: refused, saying where to look.
    let wrong = with_mongo(
        url(&format!("tls=true&tlsCAFile={other}")),
        &["ingest", "--date", "2026-11-27"],
    );
    wrong.expect_code(1);
    assert!(
        wrong
            .stderr()
            .contains("not signed by a CA this job trusts: set tlsCAFile=PATH"),
        "{wrong}"
    );
    // Plain TCP to a TLS port: no answer it can read.
    with_mongo(url("tls=false"), &["ingest", "--date", "2026-11-27"]).expect_code(1);
    let run = with_mongo(
        url(&format!("tls=true&tlsCAFile={ca}")),
        &["ingest", "--date", "2026-11-27"],
    );
    assert_eq!(run.code(), clean_run.code(), "{run}");
    assert_eq!(env.snapshot(), clean.snapshot());
}
