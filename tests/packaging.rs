//! How ops teams install and schedule it: the systemd units (checked by `systemd-analyze
//! verify`) and the Debian package (built by scripts/package.sh, unpacked, and run).

use crate::util::{repo_path, TestEnv};

/// `systemd-analyze verify` passes the units and has nothing to say about them.
fn verify_units(units: &[std::path::PathBuf]) {
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
        .output()
        .expect("systemd-analyze (Debian's systemd package) is needed for this test");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}

#[test]
fn the_systemd_units_verify_and_are_hardened() {
    let env = TestEnv::unmigrated("units");
    let dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&dir).unwrap();
    let service = std::fs::read_to_string(repo_path("packaging/ses-report.service")).unwrap();
    let timer = std::fs::read_to_string(repo_path("packaging/ses-report.timer")).unwrap();
    for key in [
        "Type=oneshot",
        "EnvironmentFile=/etc/ses-report.env",
        "ExecStart=/usr/bin/ses-report ingest",
        "SuccessExitStatus=3",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(service.contains(key), "the service lacks {key:?}");
    }
    for key in ["OnCalendar=", "Persistent=true", "RandomizedDelaySec="] {
        assert!(timer.contains(key), "the timer lacks {key:?}");
    }
    // verify checks that ExecStart's program exists: point it at the binary under test.
    std::fs::write(
        dir.join("ses-report.service"),
        service.replace("/usr/bin/ses-report", env!("CARGO_BIN_EXE_ses-report")),
    )
    .unwrap();
    std::fs::write(dir.join("ses-report.timer"), &timer).unwrap();
    verify_units(&[dir.join("ses-report.service"), dir.join("ses-report.timer")]);
    // Every day at 02:15: the calendar expression parses and means that.
    let calendar = timer
        .lines()
        .find_map(|l| l.strip_prefix("OnCalendar="))
        .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["calendar", calendar])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("Normalized form: *-*-* 02:15:00"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The partition worker template: the same hardening, `--partition %i/${SES_REPORT_PARTITIONS}`,
/// and instances that systemd verifies (a template itself cannot be verified, an instance can).
#[test]
fn the_partition_worker_template_verifies_with_the_same_hardening() {
    let env = TestEnv::unmigrated("unit_template");
    let dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&dir).unwrap();
    let service = std::fs::read_to_string(repo_path("packaging/ses-report.service")).unwrap();
    let template =
        std::fs::read_to_string(repo_path("packaging/ses-report-partition@.service")).unwrap();
    let timer =
        std::fs::read_to_string(repo_path("packaging/ses-report-partition@.timer")).unwrap();
    assert!(template.contains(
        "ExecStart=/usr/bin/ses-report ingest --partition %i/${SES_REPORT_PARTITIONS}\n"
    ));
    // Everything from [Service] on is the plain service's but for ExecStart.
    let from_service = |text: &str| -> Vec<String> {
        text.split("[Service]")
            .nth(1)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("ExecStart="))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(from_service(&template), from_service(&service));
    std::fs::write(
        dir.join("ses-report-partition@.service"),
        template.replace("/usr/bin/ses-report", env!("CARGO_BIN_EXE_ses-report")),
    )
    .unwrap();
    std::fs::write(dir.join("ses-report-partition@.timer"), &timer).unwrap();
    std::fs::write(dir.join("ses-report.env"), "SES_REPORT_PARTITIONS=2\n").unwrap();
    verify_units(&[
        dir.join("ses-report-partition@1.service"),
        dir.join("ses-report-partition@2.timer"),
    ]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_debian_package_installs_a_binary_that_runs_and_migrates() {
    let env = TestEnv::unmigrated("package");
    let out = std::process::Command::new("bash")
        .arg(repo_path("scripts/package.sh"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/package.sh: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = repo_path(stdout.lines().last().unwrap().trim());
    let dir = std::env::temp_dir().join(&env.name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    for file in [
        "usr/bin/ses-report",
        "lib/systemd/system/ses-report.service",
        "lib/systemd/system/ses-report.timer",
        "lib/systemd/system/ses-report-partition@.service",
        "lib/systemd/system/ses-report-partition@.timer",
        "usr/share/doc/ses-report/README.md",
        "usr/share/doc/ses-report/docs/operations.md",
    ] {
        assert!(dir.join(file).exists(), "the package lacks /{file}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("etc/ses-report.env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "/etc/ses-report.env holds passwords");
    // A conffile: an upgrade keeps the operator's settings.
    let control = dir.join("DEBIAN");
    let status = std::process::Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(&control)
        .status()
        .unwrap();
    assert!(status.success());
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap_or_default();
    assert!(
        conffiles.lines().any(|l| l == "/etc/ses-report.env"),
        "{conffiles:?}"
    );

    // The packaged binary: --help, then migrate against this test's database.
    let binary = dir.join("usr/bin/ses-report");
    let help = std::process::Command::new(&binary)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        help.status.success() && String::from_utf8_lossy(&help.stdout).contains("ingest"),
        "{help:?}"
    );
    let migrate = env.command(&["migrate"]);
    let migrate = std::process::Command::new(&binary)
        .arg("migrate")
        .envs(migrate.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    assert!(
        migrate.status.success()
            && String::from_utf8_lossy(&migrate.stdout).contains("now at version"),
        "{migrate:?}"
    );
    assert!(env.count("ses_report_migrations") >= 5);
    let _ = std::fs::remove_dir_all(dir);
}
