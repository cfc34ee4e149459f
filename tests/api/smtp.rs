//! A real SMTP server for the email tests: `tests/mail/smtp_server.py`
//! (aiosmtpd, from the venv `scripts/lib.sh ensure_pytools` makes) on a free
//! loopback port, STARTTLS required with a certificate made by `openssl` at
//! test time, every message written to a file the test polls.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpServer {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

/// A parsed message as received: envelope recipients, headers, both parts.
#[derive(Debug, Clone)]
pub struct Received {
    pub rcpt_to: Vec<String>,
    pub subject: String,
    pub raw: String,
    pub text: String,
    pub html: String,
}

impl Received {
    /// The first drop link (`…/d/TOKEN`) in the plain-text part.
    pub fn link(&self) -> Option<String> {
        let at = self.text.find("/d/")?;
        let start = self.text[..at].rfind("http")?;
        let end = self.text[at..]
            .find(char::is_whitespace)
            .map_or(self.text.len(), |e| at + e);
        Some(self.text[start..end].to_owned())
    }
}

/// The venv's python (`ensure_pytools`), else this clone's target/pytools.
fn python() -> PathBuf {
    match std::env::var_os("KEYDROP_PYTOOLS") {
        Some(v) => Path::new(&v).join("bin/python"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pytools/bin/python"),
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl SmtpServer {
    /// A directory with a test CA (`ca.pem`) and a server certificate for 127.0.0.1.
    pub fn new_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keydrop-smtp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("out")).unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &dir,
            &[
                &["req", "-x509"],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=keydrop test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[
                &["req"],
                &ec[..],
                &[
                    "-keyout",
                    "key.pem",
                    "-out",
                    "leaf.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ],
        );
        dir
    }

    /// Starts a server on a free port, refusing `refuse` recipients.
    pub fn start(refuse: &[&str]) -> Self {
        Self::start_in(Self::new_dir(), free_port(), refuse)
    }

    /// Starts a server in `dir` (from [`SmtpServer::new_dir`]) on `port`.
    pub fn start_in(dir: PathBuf, port: u16, refuse: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail/smtp_server.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .args(["--port", &port.to_string()])
            .arg("--cert")
            .arg(dir.join("cert.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"))
            .arg("--out")
            .arg(dir.join("out"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for r in refuse {
            cmd.args(["--refuse", r]);
        }
        let mut child = cmd
            .spawn()
            .expect("python with aiosmtpd (source scripts/lib.sh && ensure_pytools)");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP server did not start (is aiosmtpd installed? source scripts/lib.sh && ensure_pytools)"
        );
        Self {
            port,
            dir,
            child: Some(child),
        }
    }

    /// The variables pointing Keydrop at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        env_for(&self.dir, self.port)
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.join("out"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| parse(&std::fs::read(f).unwrap()))
            .collect()
    }

    /// Waits until at least `n` messages arrived (30 s deadline).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let all = self.messages();
            if all.len() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} emails arrived",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The variables for a server in `dir` on `port` (which may not run yet).
pub fn env_for(dir: &Path, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("KEYDROP_SMTP_URL", format!("smtp://127.0.0.1:{port}")),
        (
            "KEYDROP_SMTP_CA_FILE",
            dir.join("ca.pem").display().to_string(),
        ),
        ("KEYDROP_MAIL_FROM", "Acme Data <keys@acme.example>".into()),
    ]
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }
}

fn parse(bytes: &[u8]) -> Received {
    let msg = mail_parser::MessageParser::default()
        .parse(bytes)
        .expect("a parsable message");
    let raw = String::from_utf8_lossy(bytes).into_owned();
    Received {
        rcpt_to: raw
            .lines()
            .filter_map(|l| l.strip_prefix("X-Rcpt-To: ").map(str::to_owned))
            .collect(),
        subject: msg.subject().unwrap_or_default().to_owned(),
        text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: msg.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        raw,
    }
}
