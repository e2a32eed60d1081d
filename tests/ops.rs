//! Operations: the node_exporter textfile (validated by Prometheus's own `promtool`) and the
//! healthchecks-style ping (against a local HTTP server the test runs).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::notifications::*;
use crate::util::TestEnv;

/// `promtool check metrics` on a file: Prometheus's parser and its naming lint.
fn promtool_accepts(path: &std::path::Path) {
    let promtool = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .map(|_| "promtool")
        .expect("promtool is needed for this test: scripts/test.sh installs it (apt-get install prometheus)");
    let out = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap()
    );
}

/// The value of a sample line starting with `series` (name and labels, as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn a_day(env: &TestEnv) {
    let at = "2026-11-27T10:00:00.000Z";
    let m = mail("m-1", at, &["a@gmail.com", "b@x.org"]);
    env.insert(&[
        send("n-1", &m),
        delivery(
            "n-2",
            &m,
            "2026-11-27T10:00:02.000Z",
            &["a@gmail.com", "b@x.org"],
        ),
    ]);
}

#[test]
fn ingest_and_stats_write_one_valid_textfile_and_a_failed_run_keeps_the_last_success() {
    let mut env = TestEnv::new("metrics");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    a_day(&env);
    let dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ses_report.prom");
    let file = path.to_str().unwrap();
    let run = env.ingest(&["--date", "2026-11-27", "--metrics-file", file]);
    run.expect_code(0);
    let text = std::fs::read_to_string(&path).unwrap();
    promtool_accepts(&path);
    assert_eq!(
        sample(&text, "ses_report_notifications{outcome=\"scanned\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "ses_report_notifications{outcome=\"applied\"}"),
        Some(2.0)
    );
    assert_eq!(sample(&text, "ses_report_last_exit_code"), Some(0.0));
    assert_eq!(
        sample(
            &text,
            &format!(
                "ses_report_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "ses_report_unresolved_failures"), Some(0.0));
    let success = sample(&text, "ses_report_last_success_timestamp_seconds").unwrap();
    let started = sample(&text, "ses_report_last_run_timestamp_seconds").unwrap();
    assert!(success >= started, "{text}");

    // stats adds its families to the same file (the environment variable this time).
    env.vars
        .push(("SES_REPORT_METRICS_FILE".into(), file.to_string()));
    env.run(&[
        "stats",
        "--date",
        "2026-11-27",
        "--by",
        "provider",
        "--min-volume",
        "1",
    ])
    .expect_code(0);
    let text = std::fs::read_to_string(&path).unwrap();
    promtool_accepts(&path);
    assert_eq!(
        sample(
            &text,
            "ses_report_delivery_rate{mailbox_provider=\"google\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "ses_report_verdict{mailbox_provider=\"other\",verdict=\"healthy\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "ses_report_notifications{outcome=\"applied\"}"),
        Some(2.0)
    );

    // A run that cannot reach MySQL: exit 1 recorded, the last success carried over.
    env.vars.retain(|(k, _)| k != "SES_REPORT_MYSQL_URL");
    env.vars.push((
        "SES_REPORT_MYSQL_URL".into(),
        "mysql://root:hunter2@127.0.0.1:9/none?prefer_socket=false".into(),
    ));
    env.run(&["ingest", "--date", "2026-11-27"]).expect_code(1);
    let text = std::fs::read_to_string(&path).unwrap();
    promtool_accepts(&path);
    assert_eq!(sample(&text, "ses_report_last_exit_code"), Some(1.0));
    assert_eq!(
        sample(&text, "ses_report_last_success_timestamp_seconds"),
        Some(success)
    );
    assert_eq!(sample(&text, "ses_report_unresolved_failures"), Some(0.0));
    assert!(!text.contains("hunter2"));
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary file left beside it"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Partition workers sharing one SES_REPORT_METRICS_FILE each write a file of their own beside
/// it, every sample labelled with the partition: valid text, no worker overwriting another, and a
/// failed worker keeps its own last success.
#[test]
fn partition_workers_write_labelled_metrics_files_of_their_own() {
    let mut env = TestEnv::new("metrics_parts");
    a_day(&env);
    let dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&dir).unwrap();
    let shared = dir.join("ses_report.prom");
    env.vars.push((
        "SES_REPORT_METRICS_FILE".into(),
        shared.to_str().unwrap().to_string(),
    ));
    let mut scanned = 0.0;
    for k in ["1", "2"] {
        env.ingest(&["--date", "2026-11-27", "--partition", &format!("{k}/2")])
            .expect_code(0);
        let path = dir.join(format!("ses_report.{k}of2.prom"));
        let text = std::fs::read_to_string(&path).unwrap();
        promtool_accepts(&path);
        let label = format!("partition=\"{k}/2\"");
        assert_eq!(
            sample(&text, &format!("ses_report_last_exit_code{{{label}}}")),
            Some(0.0),
            "{text}"
        );
        scanned += sample(
            &text,
            &format!("ses_report_notifications{{{label},outcome=\"scanned\"}}"),
        )
        .unwrap();
        // A figure of the whole database: reported by partition 1 only, so a sum counts it once.
        assert_eq!(
            sample(&text, &format!("ses_report_unresolved_failures{{{label}}}")),
            (k == "1").then_some(0.0),
            "{text}"
        );
    }
    assert!(!shared.exists(), "a worker wrote the shared file");
    assert_eq!(scanned, 2.0, "each notification counted by one worker");
    let path = dir.join("ses_report.2of2.prom");
    let text = std::fs::read_to_string(&path).unwrap();
    let success = sample(
        &text,
        "ses_report_last_success_timestamp_seconds{partition=\"2/2\"}",
    )
    .unwrap();
    env.vars.retain(|(k, _)| k != "SES_REPORT_MYSQL_URL");
    env.vars.push((
        "SES_REPORT_MYSQL_URL".into(),
        "mysql://root@127.0.0.1:9/none?prefer_socket=false".into(),
    ));
    env.ingest(&["--date", "2026-11-27", "--partition", "2/2"])
        .expect_code(1);
    let text = std::fs::read_to_string(&path).unwrap();
    promtool_accepts(&path);
    assert_eq!(
        sample(&text, "ses_report_last_exit_code{partition=\"2/2\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "ses_report_last_success_timestamp_seconds{partition=\"2/2\"}"
        ),
        Some(success)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A local HTTP server that answers 200 to every request and records the paths.
fn ping_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let paths = Arc::new(Mutex::new(Vec::new()));
    let seen = paths.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut header = String::new();
            while reader
                .read_line(&mut header)
                .map(|n| n > 2)
                .unwrap_or(false)
            {
                header.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            seen.lock().unwrap().push(path);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    });
    (port, paths)
}

#[test]
fn runs_ping_start_then_success_or_their_exit_code_and_a_dead_endpoint_never_fails_them() {
    let mut env = TestEnv::new("ping");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    a_day(&env);
    let (port, paths) = ping_server();
    let token = "5f0e2c1a-ping-token";
    env.vars.push((
        "SES_REPORT_PING_URL".into(),
        format!("http://127.0.0.1:{port}/{token}"),
    ));
    env.ingest(&["--date", "2026-11-27"]).expect_code(0);
    assert_eq!(
        *paths.lock().unwrap(),
        vec![format!("/{token}/start"), format!("/{token}")]
    );
    // A dry run is not the job's run: no ping.
    env.ingest(&["--date", "2026-11-27", "--dry-run"])
        .expect_code(0);
    assert_eq!(paths.lock().unwrap().len(), 2);

    // A record that fails: exit 3, reported as /3.
    paths.lock().unwrap().clear();
    let mut bad = send(
        "n-bad",
        &mail("m-bad", "2026-11-27T11:00:00.000Z", &["c@x.org"]),
    );
    bad["Message"] = serde_json::json!("not json at all");
    env.insert(&[bad]);
    env.ingest(&["--date", "2026-11-27"]).expect_code(3);
    assert_eq!(
        *paths.lock().unwrap(),
        vec![format!("/{token}/start"), format!("/{token}/3")]
    );
    // With a query string (healthchecks.io's `?create=1`), the event goes before it: a failure
    // must never read as the success path.
    paths.lock().unwrap().clear();
    env.vars.retain(|(k, _)| k != "SES_REPORT_PING_URL");
    env.vars.push((
        "SES_REPORT_PING_URL".into(),
        format!("http://127.0.0.1:{port}/{token}?create=1"),
    ));
    env.ingest(&["--date", "2026-11-27"]).expect_code(3);
    assert_eq!(
        *paths.lock().unwrap(),
        vec![
            format!("/{token}/start?create=1"),
            format!("/{token}/3?create=1")
        ]
    );

    // Nothing listening: the run is unaffected, and the log never shows the token.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A token with characters a client percent-encodes shows in neither form.
    let token = "5f0e-tökén-ping";
    env.vars.retain(|(k, _)| k != "SES_REPORT_PING_URL");
    env.vars.push((
        "SES_REPORT_PING_URL".into(),
        format!("http://127.0.0.1:{closed}/{token}"),
    ));
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(3);
    assert!(run.stderr().contains("ping http://127.0.0.1"), "{run}");
    for shown in [token, "5f0e-t%C3%B6k", "5f0e-t"] {
        assert!(
            !run.stderr().contains(shown) && !run.stdout().contains(shown),
            "{shown}: {run}"
        );
    }
}

/// Runs ses-report under a pseudo-terminal (util-linux `script`), as a person at a shell would.
fn at_a_terminal(env: &TestEnv, args: &[&str]) -> String {
    let reference = env.command(args);
    let line = std::iter::once(env!("CARGO_BIN_EXE_ses-report"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .envs(reference.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs a command under a pseudo-terminal");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn at_a_terminal_ingest_and_rollup_show_a_progress_bar_and_cron_keeps_log_lines() {
    let mut env = TestEnv::new("progress");
    env.vars
        .push(("SES_REPORT_NOW".into(), "2026-11-28T07:00:00Z".into()));
    a_day(&env);
    let shown = at_a_terminal(&env, &["ingest", "--date", "2026-11-27"]);
    // The Mongo window's count is the bar's length: an ETA can be given.
    assert!(
        shown.contains("2/2 scanned") && shown.contains("ETA") && shown.contains("2 applied"),
        "{shown}"
    );
    // Rates as whole numbers per second, never indicatif's `4,079.1453/s`.
    let rate = shown
        .split_whitespace()
        .find(|w| w.ends_with("/s"))
        .unwrap_or_default()
        .to_string();
    assert!(
        !rate.is_empty()
            && rate
                .trim_end_matches("/s")
                .chars()
                .all(|c| c.is_ascii_digit()),
        "{rate:?} in {shown}"
    );
    let shown = at_a_terminal(&env, &["rollup", "--date", "2026-11-27"]);
    assert!(shown.contains("1/1 days"), "{shown}");
    // Not a terminal (cron): no bar.
    let run = env.ingest(&["--date", "2026-11-27"]);
    run.expect_code(0);
    assert!(
        !run.stderr().contains("ETA") && !run.stderr().contains("/s ETA"),
        "{run}"
    );
}

/// Cron mails whatever a job prints. With `--quiet` a run that went well prints nothing on
/// stdout and its outcome goes to the log; records that failed make one stdout line, and in the
/// log the first new ones are named, the rest summed up, and known ones are not said again on a
/// rerun; a run that fails says why on stdout.
#[test]
fn quiet_runs_speak_only_when_a_person_is_needed() {
    let env = TestEnv::new("cron_manners");
    a_day(&env);
    let run = env.ingest(&["--date", "2026-11-27", "--quiet"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "", "{run}");
    assert!(run.stderr().contains("INFO  ended (ok): window="), "{run}");

    let bad: Vec<serde_json::Value> = (0..30)
        .map(|i| {
            let mut n = send(
                &format!("n-bad-{i}"),
                &mail(
                    &format!("m-bad-{i}"),
                    "2026-11-27T12:00:00.000Z",
                    &["c@x.org"],
                ),
            );
            n["Message"] = serde_json::json!("{not json");
            n
        })
        .collect();
    env.insert(&bad);
    for rerun in [false, true] {
        let run = env.ingest(&["--date", "2026-11-27", "--quiet"]);
        run.expect_code(3);
        let stdout = run.stdout();
        assert_eq!(stdout.lines().count(), 1, "{run}");
        assert!(
            stdout.starts_with(
                "ses-report: 30 record(s) could not be applied: `ses-report failures` lists them"
            ),
            "{run}"
        );
        let named = run.stderr().matches("ERROR notification n-bad-").count();
        assert_eq!(named, if rerun { 0 } else { 10 }, "{run}");
        assert!(
            run.stderr().contains(if rerun {
                "30 record(s) could not be applied (0 new this run; 30 already kept)"
            } else {
                "30 record(s) could not be applied (30 new this run, 20 of them not logged one by one; 0 already kept)"
            }),
            "{run}"
        );
    }

    let args = ["ingest", "--date", "2026-11-27", "--quiet"];
    let mut cmd = env.command(&args);
    cmd.env(
        "SES_REPORT_MYSQL_URL",
        "mysql://root@127.0.0.1:1/x?prefer_socket=false",
    )
    .env("SES_REPORT_CONNECT_TIMEOUT_SECS", "2");
    let run = env.run_command(cmd, &args, None);
    run.expect_code(1);
    assert!(
        run.stdout().starts_with("ses-report failed (exit 1): ")
            && run.stdout().lines().count() == 1,
        "{run}"
    );
}
