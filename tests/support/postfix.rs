//! A real MTA as a test peer: a private Postfix instance (Debian's
//! `postfix`, 3.7 on our machines) whose smtpd listens on a free
//! 127.0.0.1 port and delivers `@example.test` to Maildirs in a temp dir.
//! The Python test server is ours; this is someone else's SMTP server with
//! its own idea of PIPELINING, replies and queueing, for the client to meet.
//!
//! ```ignore
//! let mta = Postfix::start(&["a@example.test".into()]);
//! // ... point the CLI at 127.0.0.1:mta.port ...
//! let mail = mta.wait_for_delivery(20); // polls the Maildirs, 30 s deadline
//! ```
//!
//! Each instance has its own `config_directory`, `queue_directory` and
//! `data_directory` (`postfix -c DIR start-fg` as a child process); the
//! system instance is never configured nor started, and nothing is relayed
//! (`default_transport = error:…`, `reject_unauth_destination`). Dropping
//! the [`Postfix`] kills the instance's process group, also when a test
//! panics; instances left by a test binary that was killed are reaped by
//! the next start. Needs root (Postfix drops to its `postfix` user itself)
//! and `scripts/setup-test-deps` (postfix, sasl2-bin).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mail_parser::{Message, MessageParser};
use rustix::process::{Pid, Signal};

use super::smtp::{python, server_script};

/// The only domain the instance accepts mail for.
pub const DOMAIN: &str = "example.test";
/// How long delivery of what smtpd accepted may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the instance may take to answer its first banner.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts with a fresh port when the one picked was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;
/// Prefix of every instance's temp dir (also how stale ones are found).
const DIR_PREFIX: &str = "newsletter-postfix-";
/// Master daemon programs, from `postconf -d daemon_directory`.
const POSTFIX: &str = "/usr/sbin/postfix";

#[derive(Debug, Clone, Default)]
pub struct PostfixOptions {
    /// The `@example.test` addresses that have a mailbox: RCPT to any
    /// other gets Postfix's `550 5.1.1 … User unknown in virtual mailbox
    /// table`.
    pub mailboxes: Vec<String>,
    /// Offer STARTTLS (`smtpd_tls_security_level = may`) with a leaf for
    /// localhost/127.0.0.1 signed by a throwaway CA ([`Postfix::ca_pem`]).
    pub starttls: bool,
    /// Leave PIPELINING out of the EHLO reply
    /// (`smtpd_discard_ehlo_keywords`), as a server without it does.
    pub no_pipelining: bool,
    /// Offer AUTH PLAIN/LOGIN (Cyrus SASL, a sasldb with this one user in
    /// realm example.test), only after STARTTLS, and require it for every
    /// recipient as a submission relay does; needs `starttls`.
    pub auth: Option<(String, String)>,
}

/// One message as the virtual delivery agent left it in a Maildir `new/`.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The mailbox's address (its Maildir is named after it).
    pub rcpt: String,
    pub path: PathBuf,
    /// The file as delivered: Postfix's Return-Path, Delivered-To and
    /// Received headers, then the message as the client sent it.
    pub raw: Vec<u8>,
}

impl Delivered {
    pub fn parsed(&self) -> Message<'_> {
        MessageParser::default()
            .parse(&self.raw)
            .unwrap_or_else(|| panic!("{}: not a parsable message", self.path.display()))
    }

    /// The value of the first header called `name` (unfolded), if any.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.raw).replace("\r\n", "\n");
        let head = text.split("\n\n").next().unwrap_or("");
        let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
        let prefix = format!("{}:", name.to_ascii_lowercase());
        unfolded
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }
}

pub struct Postfix {
    pub port: u16,
    /// The instance's temp dir: `etc/`, `queue/`, `data/`, `mail/`, `maillog`.
    pub dir: PathBuf,
    pub config_dir: PathBuf,
    pub queue_dir: PathBuf,
    /// `virtual_mailbox_base`: one Maildir per address under it.
    pub mail_dir: PathBuf,
    pub maillog: PathBuf,
    /// The CA to trust when `starttls` was asked for.
    pub ca_pem: Option<PathBuf>,
    pub myhostname: String,
    /// The `postfix start-fg` child (the shell that waits for `master`).
    child: Option<Child>,
    /// `master`'s pid, which is also its process group (it calls setsid).
    master: Option<i32>,
    // Last: removed after the instance is gone.
    _tmp: tempfile::TempDir,
}

static INSTANCES: AtomicUsize = AtomicUsize::new(0);

impl Postfix {
    /// Plain SMTP, a mailbox for each of `mailboxes`.
    pub fn start(mailboxes: &[String]) -> Postfix {
        Self::start_with(PostfixOptions {
            mailboxes: mailboxes.to_vec(),
            ..Default::default()
        })
    }

    pub fn start_with(opts: PostfixOptions) -> Postfix {
        preflight();
        reap_stale_instances();
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match Self::try_start(&opts) {
                Ok(pf) => return pf,
                // Another process took the port between our probe and
                // master's bind: try another one.
                Err(e) if e.contains("Address already in use") => last_error = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last_error}\n(gave up after {PORT_ATTEMPTS} ports)");
    }

    fn try_start(opts: &PostfixOptions) -> Result<Postfix, String> {
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let tmp = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .expect("create tempdir for a Postfix instance");
        let dir = tmp.path().to_path_buf();
        // The postfix user walks into queue/ and data/, nobody into mail/.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("owner.pid"), std::process::id().to_string()).unwrap();
        let config_dir = dir.join("etc");
        let queue_dir = dir.join("queue");
        let data_dir = dir.join("data");
        let mail_dir = dir.join("mail");
        let maillog = dir.join("maillog");
        for d in [&config_dir, &queue_dir, &data_dir, &mail_dir] {
            fs::create_dir(d).unwrap();
        }
        let postfix_user = passwd_ids("postfix");
        let (vuid, vgid) = passwd_ids("nobody");
        chown(&data_dir, Some(postfix_user.0), None).unwrap();
        chown(&mail_dir, Some(vuid), Some(vgid)).unwrap();

        let port = free_port();
        let myhostname = format!("pf{}-{n}.newsletter.test", std::process::id());
        let d = dir.display();
        let mut main_cf = format!(
            "# A private test instance (tests/support/postfix.rs).
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {myhostname}
mydomain = newsletter.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.1/32
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
disable_dns_lookups = yes
smtp_dns_support_level = disabled
default_transport = error:no remote delivery
relay_transport = error:no remote delivery
local_transport = error:no local delivery
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination
smtpd_error_sleep_time = 0
# Bytes sent ahead after a command that ends an RFC 2920 group (EHLO,
# STARTTLS, AUTH, DATA before its 354, ...) are logged as 'improper command
# pipelining' and DATA is refused, as on many real servers.
smtpd_data_restrictions = reject_unauth_pipelining
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_base = {d}/mail
virtual_uid_maps = static:{vuid}
virtual_gid_maps = static:{vgid}
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
",
        );
        // One Maildir per address, named after it. (virtual(8) allows no
        // regexp substitution, so the addresses are listed.)
        let mut map = String::new();
        for a in &opts.mailboxes {
            let a = a.to_lowercase();
            assert!(
                a.ends_with(&format!("@{DOMAIN}")) && !a.contains('/') && !a.contains(' '),
                "mailbox {a:?}: only plain @{DOMAIN} addresses"
            );
            map.push_str(&format!("{a} {a}/\n"));
        }
        fs::write(config_dir.join("vmailbox"), map).unwrap();
        main_cf.push_str(&format!(
            "virtual_mailbox_maps = texthash:{}/vmailbox\n",
            config_dir.display()
        ));

        if opts.no_pipelining {
            main_cf.push_str("smtpd_discard_ehlo_keywords = pipelining\n");
        }

        let mut ca_pem = None;
        if opts.starttls {
            let certs = dir.join("certs");
            let py = python();
            let out = Command::new(&py)
                .arg(server_script())
                .arg("--make-cert")
                .arg(&certs)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {py} --make-cert: {e}"));
            assert!(
                out.status.success(),
                "smtp_server.py --make-cert failed: {}\nrun scripts/setup-test-deps",
                String::from_utf8_lossy(&out.stderr)
            );
            main_cf.push_str(&format!(
                "smtpd_tls_security_level = may
smtpd_tls_cert_file = {c}/cert.pem
smtpd_tls_key_file = {c}/key.pem
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
",
                c = certs.display()
            ));
            ca_pem = Some(certs.join("ca.pem"));
        }
        if let Some((user, pass)) = &opts.auth {
            assert!(opts.starttls, "AUTH is only offered after STARTTLS");
            // Debian's Postfix reads $config_directory/sasl/smtpd.conf (and
            // ignores cyrus_sasl_config_path, set anyway for other builds).
            let sasl = config_dir.join("sasl");
            fs::create_dir(&sasl).unwrap();
            let db = sasl.join("sasldb2");
            fs::write(
                sasl.join("smtpd.conf"),
                format!(
                    "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {}\n",
                    db.display()
                ),
            )
            .unwrap();
            let mut child = Command::new("saslpasswd2")
                .args(["-f"])
                .arg(&db)
                .args(["-c", "-p", "-u", DOMAIN, user])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run saslpasswd2 ({e}): run scripts/setup-test-deps")
                });
            child
                .stdin
                .take()
                .unwrap()
                .write_all(pass.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "saslpasswd2 failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // smtpd reads it as the postfix user.
            chown(&db, Some(postfix_user.0), None).unwrap();
            main_cf.push_str(&format!(
                "smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {}
smtpd_sasl_local_domain = {DOMAIN}
smtpd_sasl_security_options = noanonymous
smtpd_tls_auth_only = yes
smtpd_sasl_authenticated_header = yes
",
                sasl.display()
            ));
            main_cf = main_cf.replace(
                "smtpd_recipient_restrictions = reject_unauth_destination\n",
                "smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n",
            );
        }
        fs::write(config_dir.join("main.cf"), main_cf).unwrap();
        fs::write(config_dir.join("master.cf"), master_cf(port)).unwrap();

        // `postfix check` creates the queue directories with the right
        // owners and says what is wrong in Postfix's own words.
        let check = Command::new(POSTFIX)
            .arg("-c")
            .arg(&config_dir)
            .arg("check")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {POSTFIX} ({e}): run scripts/setup-test-deps"));
        let check_text = format!(
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        if !check.status.success() {
            return Err(format!(
                "`postfix -c {} check` failed ({}):\n{check_text}\nmaillog:\n{}",
                config_dir.display(),
                check.status,
                tail(&maillog, 40)
            ));
        }

        let out = fs::File::create(dir.join("postfix.out")).unwrap();
        let child = Command::new(POSTFIX)
            .arg("-c")
            .arg(&config_dir)
            .arg("start-fg")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {POSTFIX} start-fg: {e}"));
        let mut pf = Postfix {
            port,
            config_dir,
            queue_dir,
            mail_dir,
            maillog,
            ca_pem,
            myhostname,
            child: Some(child),
            master: None,
            dir,
            _tmp: tmp,
        };
        pf.wait_ready(&check_text)?;
        Ok(pf)
    }

    /// Until `master` has written its pid and smtpd answers with our
    /// hostname in its banner (not some other server that took the port).
    fn wait_ready(&mut self, check_text: &str) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::new();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(self.startup_failure(&format!("exited with {status}"), check_text));
            }
            if self.master.is_none() {
                self.master = fs::read_to_string(self.queue_dir.join("pid/master.pid"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
            }
            if self.master.is_some() {
                match banner(self.port) {
                    Ok(line) if line.starts_with(&format!("220 {} ", self.myhostname)) => {
                        return Ok(());
                    }
                    Ok(line) => last = format!("port {} answered {line:?}", self.port),
                    Err(e) => last = format!("port {}: {e}", self.port),
                }
            }
            if Instant::now() >= deadline {
                let why = format!("not ready within {READY_TIMEOUT:?} ({last})");
                self.kill();
                return Err(self.startup_failure(&why, check_text));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn startup_failure(&self, what: &str, check_text: &str) -> String {
        let check = Command::new(POSTFIX)
            .arg("-c")
            .arg(&self.config_dir)
            .arg("check")
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default();
        format!(
            "private Postfix instance ({}) {what}\n--- postfix start-fg output:\n{}\n--- postfix check (before start):\n{check_text}\n--- postfix check (now):\n{check}\n--- maillog (last 40 lines):\n{}\n(needs root and scripts/setup-test-deps)",
            self.config_dir.display(),
            fs::read_to_string(self.dir.join("postfix.out")).unwrap_or_default(),
            tail(&self.maillog, 40)
        )
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every message delivered so far, sorted by mailbox then file name.
    pub fn delivered(&self) -> Vec<Delivered> {
        let mut all = Vec::new();
        let Ok(boxes) = fs::read_dir(&self.mail_dir) else {
            return all;
        };
        for b in boxes {
            let b = b.unwrap();
            let rcpt = b.file_name().to_string_lossy().into_owned();
            let Ok(files) = fs::read_dir(b.path().join("new")) else {
                continue;
            };
            for f in files {
                let path = f.unwrap().path();
                let raw = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                all.push(Delivered {
                    rcpt: rcpt.clone(),
                    path,
                    raw,
                });
            }
        }
        all.sort_by(|a, b| (&a.rcpt, &a.path).cmp(&(&b.rcpt, &b.path)));
        all
    }

    fn delivered_count(&self) -> usize {
        let Ok(boxes) = fs::read_dir(&self.mail_dir) else {
            return 0;
        };
        boxes
            .filter_map(|b| fs::read_dir(b.ok()?.path().join("new")).ok())
            .map(|files| files.count())
            .sum()
    }

    /// Queue files still waiting or in delivery (`incoming`, `active`,
    /// `deferred`, `hold`, `maildrop`), in that order: qmgr moves a file
    /// forward, so one moved while we look is still seen.
    pub fn queued(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for q in ["incoming", "active", "deferred", "hold", "maildrop"] {
            walk_files(&self.queue_dir.join(q), &mut files);
        }
        files
    }

    /// Waits until at least `n` messages are in the Maildirs and the queue
    /// is empty (so nothing more is on its way), twice in a row; panics
    /// after [`DELIVERY_TIMEOUT`] with what is there, the queue and the log.
    pub fn wait_for_delivery(&self, n: usize) -> Vec<Delivered> {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        let mut settled = 0;
        loop {
            let count = self.delivered_count();
            let queued = self.queued();
            if count >= n && queued.is_empty() {
                settled += 1;
                if settled == 2 {
                    return self.delivered();
                }
            } else {
                settled = 0;
            }
            if Instant::now() >= deadline {
                panic!(
                    "Postfix: expected {n} delivered messages within {DELIVERY_TIMEOUT:?}, \
                     {count} in the Maildirs under {}, {} still queued: {queued:#?}\n\
                     --- maillog (last 40 lines):\n{}",
                    self.mail_dir.display(),
                    queued.len(),
                    tail(&self.maillog, 40)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The whole maillog so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// The maillog once it has at least `n` lines containing `needle`
    /// (Postfix logs through postlogd, a moment after the fact); panics
    /// after [`DELIVERY_TIMEOUT`].
    pub fn wait_for_log(&self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            let log = self.log();
            let found = log.lines().filter(|l| l.contains(needle)).count();
            if found >= n {
                return log;
            }
            if Instant::now() >= deadline {
                panic!(
                    "Postfix: expected {n} maillog lines with {needle:?} within \
                     {DELIVERY_TIMEOUT:?}, found {found}; maillog (last 40 lines):\n{}",
                    tail(&self.maillog, 40)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every smtpd session has ended (as many "disconnect
    /// from" lines as "connect from"), then asserts that Postfix logged no
    /// "improper command pipelining" (bytes sent after EHLO, STARTTLS,
    /// AUTH, DATA before its 354, or another command that ends a group).
    #[track_caller]
    pub fn assert_no_improper_pipelining(&self) {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        let log = loop {
            let log = self.log();
            let smtpd: Vec<&str> = log.lines().filter(|l| l.contains("/smtpd[")).collect();
            let opened = smtpd
                .iter()
                .filter(|l| l.contains(": connect from "))
                .count();
            let closed = smtpd
                .iter()
                .filter(|l| l.contains(": disconnect from "))
                .count();
            if opened == closed {
                break log;
            }
            assert!(
                Instant::now() < deadline,
                "Postfix: {opened} smtpd sessions, {closed} ended after {DELIVERY_TIMEOUT:?}; \
                 maillog (last 40 lines):\n{}",
                tail(&self.maillog, 40)
            );
            thread::sleep(Duration::from_millis(20));
        };
        let improper: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("improper command pipelining"))
            .collect();
        assert!(
            improper.is_empty(),
            "Postfix saw bytes sent ahead where RFC 2920 forbids it:\n{}",
            improper.join("\n")
        );
    }

    /// Its last `n` lines, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.maillog, n)
    }

    /// Kills the instance's processes (master's process group) and reaps
    /// the start-fg child. Nothing graceful is needed: a test only reads
    /// what was delivered, and the temp dir goes right after.
    fn kill(&mut self) {
        if let Some(pid) = self.master.take().and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        }
        if let Some(mut child) = self.child.take() {
            // The shell, in a group of its own (process_group(0)).
            if let Some(pid) = Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How many messages each mailbox got.
pub fn per_mailbox(delivered: &[Delivered]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for d in delivered {
        *counts.entry(d.rcpt.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// Asserts every address got exactly one message and nobody else got any.
#[track_caller]
pub fn assert_delivered_once(delivered: &[Delivered], addresses: &[String]) {
    let counts = per_mailbox(delivered);
    let extra: Vec<&String> = counts
        .keys()
        .filter(|k| !addresses.iter().any(|a| a.eq_ignore_ascii_case(k)))
        .collect();
    assert!(
        extra.is_empty(),
        "delivered to unexpected mailboxes: {extra:?}"
    );
    let wrong: Vec<(&String, usize)> = addresses
        .iter()
        .map(|a| (a, counts.get(&a.to_lowercase()).copied().unwrap_or(0)))
        .filter(|(_, n)| *n != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "mailboxes without exactly one message (address, count): {wrong:?}"
    );
}

/// Root, and Postfix with its users, or a message saying what to do.
fn preflight() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the Postfix test peer needs root (Postfix's master runs as root and \
         drops to the postfix user); CI runs as root"
    );
    assert!(
        Path::new(POSTFIX).exists(),
        "{POSTFIX} not found: run scripts/setup-test-deps"
    );
}

/// uid and gid of a user from /etc/passwd.
fn passwd_ids(user: &str) -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == user)
        .map(|f| (f[2].parse().unwrap(), f[3].parse().unwrap()))
        .unwrap_or_else(|| {
            panic!("no user `{user}` in /etc/passwd: run scripts/setup-test-deps (postfix)")
        })
}

/// A port nobody listens on now. master binds it a moment later; if
/// someone else got it meanwhile, start-up fails and [`Postfix::start_with`]
/// tries another.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The services a virtual-delivery-only instance needs, none chrooted.
fn master_cf(port: u16) -> String {
    format!(
        "# service type private unpriv chroot wakeup maxproc command
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"
    )
}

/// The first line the server sends.
fn banner(port: u16) -> std::io::Result<String> {
    let stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let _ = (&stream).write_all(b"QUIT\r\n");
    Ok(line.trim_end().to_string())
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => walk_files(&e.path(), out),
            Ok(_) => out.push(e.path()),
            Err(_) => {}
        }
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether `pid` is a process that has not exited (a zombie has).
fn alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last parenthesis.
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    !(state.starts_with('Z') || state.starts_with('X'))
}

/// Instances whose test binary died without dropping them (kill -9, a
/// timeout): their owner pid is gone. Kill their master if it is still
/// there (its cwd is that instance's queue directory) and remove the dir.
fn reap_stale_instances() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = e.path();
        let Some(owner) = fs::read_to_string(dir.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            continue;
        };
        if alive(owner) {
            continue;
        }
        let queue = dir.join("queue");
        if let Some(master) = fs::read_to_string(queue.join("pid/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let cwd = fs::read_link(format!("/proc/{master}/cwd")).ok();
            if cwd.as_deref() == Some(queue.as_path())
                && let Some(pid) = Pid::from_raw(master)
            {
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
