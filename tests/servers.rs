//! Servers of a test's own, for what cannot be done to the shared ones: a MariaDB that accepts
//! TCP only over TLS with a CA of its own, or whose `read_only` a test switches; a TLS terminator
//! (stunnel) in front of the Mongo stand-in. Each has its own port and directory, is stopped by
//! its process id when dropped, and leaves the shared servers alone.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::util::MySqlServer;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The password of the job's account on a private server: every character that needs
/// percent-encoding in a URL, so that no test passes by luck of a plain password.
pub const JOB_PASSWORD: &str = "Tl5/#?@:pw%";

/// The job's password as a URL's userinfo holds it.
pub fn job_password_encoded() -> String {
    url::form_urlencoded::byte_serialize(JOB_PASSWORD.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A scratch directory of the test's own, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "srt-{what}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/test.sh installs it)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A new EC P-256 key `<name>.key` and its signing request `<name>.csr` in `dir`.
fn request(dir: &Path, name: &str, subject: &str) {
    let p = |file: String| dir.join(file).to_string_lossy().into_owned();
    let (key, csr) = (p(format!("{name}.key")), p(format!("{name}.csr")));
    run(
        "openssl",
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
}

/// Signs `csr` (a path in `dir`) with the test CA of `dir` into `out`, a certificate with the
/// X.509v3 `extensions` given (written to a file beside it), or version 1 without any.
fn sign(dir: &Path, csr: &str, out: &str, extensions: Option<&str>) {
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (csr, out, ca, ca_key, ext) = (
        p(csr),
        p(out),
        p("ca.pem"),
        p("ca.key"),
        p(&format!("{out}.ext")),
    );
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-out",
        &out,
        "-days",
        "2",
    ];
    if let Some(extensions) = extensions {
        std::fs::write(&ext, extensions).unwrap();
        args.extend(["-extfile", &ext]);
    }
    run("openssl", &args);
}

/// A CA of the test's own (EC P-256, valid two days) and a server certificate it signed for
/// the names in `san` (e.g. `DNS:localhost`).
pub struct Certificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Another CA, which signed nothing here: "the wrong CA".
    pub other_ca: PathBuf,
    /// A client certificate and key the CA signed.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Certificates {
    /// Certificates as MySQL's own recipe makes them (`openssl x509 -req` without extensions):
    /// the server's is X.509 version 1, its name only in the subject's CN.
    pub fn make_version_1(dir: &Path) -> Certificates {
        let certs = Certificates::make(dir, "DNS:localhost");
        request(dir, "server-v1", "/CN=localhost");
        sign(dir, "server-v1.csr", "server-v1.pem", None);
        Certificates {
            cert: dir.join("server-v1.pem"),
            key: dir.join("server-v1.key"),
            ..certs
        }
    }

    pub fn make(dir: &Path, san: &str) -> Certificates {
        let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for (name, cn) in [("ca", "ses-report test CA"), ("other-ca", "another CA")] {
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            let (key, cert, subject) = (
                p(&format!("{name}.key")),
                p(&format!("{name}.pem")),
                format!("/CN={cn}"),
            );
            args.extend([
                "-keyout", &key, "-out", &cert, "-days", "2", "-subj", &subject,
            ]);
            run("openssl", &args);
        }
        request(dir, "server", "/CN=ses-report test server");
        let server_extensions = format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
        sign(dir, "server.csr", "server.pem", Some(&server_extensions));
        // A client certificate from the same CA, for accounts that REQUIRE X509.
        request(dir, "client", "/CN=ses-report job");
        sign(
            dir,
            "client.csr",
            "client.pem",
            Some("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"),
        );
        Certificates {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            other_ca: dir.join("other-ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

/// Stops a child by its process id: SIGTERM, then SIGKILL if it has not ended within 20 s.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A MariaDB of the test's own on 127.0.0.1:`port`, its data in a scratch directory. The job's
/// account `ses` (password `JOB_PASSWORD`) has every right on the tests' databases (`srt_%`) and
/// none on the server: no SUPER, no READ_ONLY ADMIN, as on a managed server.
pub struct PrivateMariaDb {
    pub port: u16,
    pub certificates: Option<Certificates>,
    socket: PathBuf,
    child: Child,
    // Last: the directory goes once the server has stopped.
    dir: Scratch,
}

impl PrivateMariaDb {
    /// With `tls`, the server has a certificate for `localhost` from a CA of its own and
    /// refuses TCP without TLS (`require_secure_transport`).
    pub fn start(tls: bool) -> PrivateMariaDb {
        PrivateMariaDb::start_with(tls, false)
    }

    /// `start`, with `version_1`: the server's certificate as `Certificates::make_version_1`.
    pub fn start_with(tls: bool, version_1: bool) -> PrivateMariaDb {
        let dir = Scratch::new("mariadb");
        let data = dir.path("data");
        let datadir = format!("--datadir={}", data.display());
        let out = Command::new("mariadb-install-db")
            .args(["--no-defaults", &datadir, "--user=root", "--skip-test-db"])
            .args(["--auth-root-authentication-method=socket"])
            .output()
            .expect("mariadb-install-db (package mariadb-server; scripts/services.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let certificates = tls.then(|| match version_1 {
            true => Certificates::make_version_1(&dir.0),
            false => Certificates::make(&dir.0, "DNS:localhost"),
        });
        let port = free_port();
        let socket = dir.path("mysqld.sock");
        let mut args = vec![
            "--no-defaults".to_string(),
            datadir,
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--socket={}", socket.display()),
            format!("--pid-file={}", dir.path("mysqld.pid").display()),
            format!("--log-error={}", dir.path("error.log").display()),
            "--user=root".into(),
            "--skip-log-bin".into(),
            "--innodb-buffer-pool-size=32M".into(),
            "--max-connections=50".into(),
        ];
        if let Some(c) = &certificates {
            args.push(format!("--ssl-ca={}", c.ca.display()));
            args.push(format!("--ssl-cert={}", c.cert.display()));
            args.push(format!("--ssl-key={}", c.key.display()));
            args.push("--require-secure-transport=ON".into());
        }
        let child = Command::new("mariadbd")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        let server = PrivateMariaDb {
            port,
            certificates,
            socket,
            child,
            dir,
        };
        server.wait_until_up();
        server.sql(&format!(
            "DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES;
             CREATE USER 'admin'@'localhost' IDENTIFIED BY 'admin';
             GRANT ALL ON *.* TO 'admin'@'localhost' WITH GRANT OPTION;
             CREATE USER 'ses'@'%' IDENTIFIED BY '{}';
             GRANT ALL PRIVILEGES ON `srt\\_%`.* TO 'ses'@'%';",
            JOB_PASSWORD.replace('\\', "\\\\").replace('\'', "\\'")
        ));
        server
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = Command::new("mariadb")
                .args(["--no-defaults", "-uroot", "-e", "SELECT 1"])
                .arg(format!("--socket={}", self.socket.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the private MariaDB did not start: {}",
                std::fs::read_to_string(self.dir.path("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs statements as root, over the server's socket.
    pub fn sql(&self, statements: &str) {
        run(
            "mariadb",
            &[
                "--no-defaults",
                "-uroot",
                &format!("--socket={}", self.socket.display()),
                "-e",
                statements,
            ],
        );
    }

    /// The path of the server's CA certificate (a TLS server only).
    pub fn ca(&self) -> String {
        let certificates = self.certificates.as_ref().expect("a TLS server");
        certificates.ca.display().to_string()
    }

    /// The server as the harness reaches it (the socket, which needs no TLS) and as the job
    /// reaches it: TCP as `ses`, with `options` (e.g. `ssl-mode=VERIFY_IDENTITY&ssl-ca=...`).
    pub fn server(&self, host: &str, options: &str) -> MySqlServer {
        let query = if options.is_empty() {
            String::new()
        } else {
            format!("?{options}")
        };
        MySqlServer {
            admin: format!(
                "mysql://admin:admin@localhost?socket={}",
                self.socket.display()
            ),
            job: format!(
                "mysql://ses:{}@{host}:{}{query}",
                job_password_encoded(),
                self.port
            ),
        }
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// stunnel in front of a plain TCP server: TLS on 127.0.0.1:`port` with the given certificate,
/// plain TCP to `target`.
pub struct TlsTerminator {
    pub port: u16,
    child: Child,
    _dir: Scratch,
}

impl TlsTerminator {
    pub fn start(target: &str, certificates: &Certificates) -> TlsTerminator {
        let dir = Scratch::new("stunnel");
        let port = free_port();
        let config = dir.path("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\nsyslog = no\noutput = {}\n[mongo]\naccept = 127.0.0.1:{port}\nconnect = {target}\ncert = {}\nkey = {}\n",
                dir.path("stunnel.log").display(),
                certificates.cert.display(),
                certificates.key.display()
            ),
        )
        .unwrap();
        let program = ["stunnel4", "stunnel"]
            .into_iter()
            .find(|p| which(p))
            .expect("stunnel (package stunnel4; scripts/test.sh installs it)");
        let child = Command::new(program)
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let terminator = TlsTerminator {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "stunnel did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        terminator
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
