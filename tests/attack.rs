//! Load and attack tests of the two HTTP servers, against the real
//! processes, on 127.0.0.1 only, bounded in count and time (about 15 s a
//! case): slowloris connections that trickle a partial request, a burst of
//! parallel GETs, and in the thick of it the requests that must not be lost
//! (one-click POSTs; a GET of the preview page). Run with `--nocapture` to
//! see the figures.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use newsletter::token::Signer;
use support::project::{Project, SECRET};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const LIST_ID: &str = "supporters.renecassin.example.org";
/// Slow connections held open during the attack.
const SLOW: usize = 200;
/// Ordinary GETs sent at once.
const PARALLEL: usize = 1000;
/// One-click POSTs sent during the burst.
const POSTS: usize = 50;
/// The requirement for a request that must get through, on a machine the
/// test has to itself (see [`must_answer_within`]).
const MUST_ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// How long the slow clients keep trickling: past the servers' 10 s for a
/// request, so that they are seen closed by the server.
const SLOW_FOR: Duration = Duration::from_secs(13);
/// A byte every this often from each slow client.
const TRICKLE: Duration = Duration::from_secs(3);
/// Peak memory allowed for a server under the attack.
const MAX_RSS_KB: u64 = 100 * 1024;

/// The cases run one at a time: each needs the machine to itself.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A server process; its stderr is collected as it comes.
struct Server {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `newsletter ARGS` and reads the port from its first line.
    fn start(project: &Project, args: &[&str]) -> Server {
        Server::spawn(project.command(args))
    }

    fn spawn(mut command: std::process::Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("first line: {line:?}"));
        Server {
            child,
            port,
            stderr,
        }
    }

    /// CPU time used so far (user and system).
    fn cpu(&self) -> Duration {
        cpu_of(&self.child.id().to_string())
    }

    /// A figure from /proc/PID/status, in kB.
    fn status_kb(&self, field: &str) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// stderr once `done` holds for it (the access log is written by a
    /// thread of its own, a moment after the answer), or after 5 s.
    fn stderr_when(&self, done: impl Fn(&str) -> bool) -> String {
        let waited = std::time::Instant::now();
        loop {
            let stderr = self.stderr();
            if done(&stderr) || waited.elapsed() > Duration::from_secs(5) {
                return stderr;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[track_caller]
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the server exited ({status}); stderr:\n{}", self.stderr());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time used by a process so far (`self` for this one).
fn cpu_of(pid: &str) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// One exchange: the status (0 when the connection failed or gave no
/// answer before `limit`) and how long it took.
async fn exchange(port: u16, request: Vec<u8>, limit: Duration) -> (u16, Duration, Vec<u8>) {
    let started = Instant::now();
    let result = tokio::time::timeout(limit, async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(&request).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        std::io::Result::Ok(answer)
    })
    .await;
    let answer = match result {
        Ok(Ok(answer)) => answer,
        _ => Vec::new(),
    };
    let status = std::str::from_utf8(&answer[..answer.len().min(32)])
        .ok()
        .and_then(|head| head.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, started.elapsed(), answer)
}

/// What the slow clients saw.
#[derive(Default)]
struct Slow {
    /// Connected and sent their partial request.
    connected: AtomicUsize,
    /// Saw the server close the connection.
    closed: AtomicUsize,
    /// Could not connect at all.
    failed: AtomicUsize,
}

/// A slowloris client: a partial request, then a byte every [`TRICKLE`]
/// until `until`, or until the server closes the connection.
async fn slow_client(port: u16, partial: Vec<u8>, until: Instant, slow: Arc<Slow>) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        slow.failed.fetch_add(1, Ordering::SeqCst);
        return;
    };
    if stream.write_all(&partial).await.is_err() {
        slow.failed.fetch_add(1, Ordering::SeqCst);
        return;
    }
    slow.connected.fetch_add(1, Ordering::SeqCst);
    let mut sink = [0u8; 1024];
    loop {
        let now = Instant::now();
        if now >= until {
            return;
        }
        let next = (now + TRICKLE).min(until);
        // Reading tells whether the server has closed (or answered 408).
        match tokio::time::timeout_at(next, stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                slow.closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Ok(Ok(_)) => {}
            Err(_) => {
                if stream.write_all(b"a").await.is_err() {
                    slow.closed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

/// The burst's length and the CPU time it took, for the figures.
struct Figures {
    took: Duration,
    server: Duration,
    client: Duration,
}

impl Figures {
    fn since(
        server: &Server,
        server_cpu: Duration,
        own_cpu: Duration,
        started: Instant,
    ) -> Figures {
        Figures {
            took: started.elapsed(),
            server: server.cpu().saturating_sub(server_cpu),
            client: cpu_of("self").saturating_sub(own_cpu),
        }
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the burst took {:?}, CPU time {:?} in the server and {:?} in this test's clients; load average {}",
            self.took,
            self.server,
            self.client,
            fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split(' ')
                .next()
                .unwrap_or("?")
        )
    }
}

/// [`MUST_ANSWER_WITHIN`] on a machine the test has to itself. On one shared
/// with other work (a 1-minute load average above its cores, as when several
/// suites run at once), each core is shared that many ways, so the bound
/// grows by that factor, up to half of [`SLOW_FOR`]: a request that waited
/// for the slow clients would still fail.
fn must_answer_within() -> Duration {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let load = fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    MUST_ANSWER_WITHIN
        .mul_f64((load / cores).max(1.0))
        .min(SLOW_FOR / 2)
}

/// This test's runtime; first lets this process open the sockets it needs
/// (a default limit of 1024 files is fewer than one case's clients).
fn runtime() -> tokio::runtime::Runtime {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.map_or(8192, |max| max.min(8192));
    if limit.current.is_some_and(|current| current < wanted) {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            },
        );
    }
    let files = getrlimit(Resource::Nofile).current;
    assert!(
        files.is_none_or(|n| n >= 4096),
        "this test opens about 1300 sockets, and the server as many, but the limit on open files is {files:?}: raise the hard limit (`ulimit -Hn 8192` as root)"
    );
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Starts the slow clients and waits until they have all connected.
async fn start_slow(port: u16, partial: &[u8]) -> (Arc<Slow>, tokio::task::JoinSet<()>) {
    let slow = Arc::new(Slow::default());
    let until = Instant::now() + SLOW_FOR;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..SLOW {
        tasks.spawn(slow_client(
            port,
            partial.to_vec(),
            until,
            Arc::clone(&slow),
        ));
    }
    let waited = Instant::now();
    while slow.connected.load(Ordering::SeqCst) + slow.failed.load(Ordering::SeqCst) < SLOW
        && waited.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (slow, tasks)
}

/// Counts of the statuses of a set of answers.
fn tally(statuses: &[u16]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for status in statuses {
        *counts.entry(*status).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(status, n)| match status {
            0 => format!("no answer: {n}"),
            _ => format!("{status}: {n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits for the slow clients to finish and checks the server closed them
/// all: each had 10 s for its request, however it trickled.
async fn expect_slow_closed(slow: &Slow, mut tasks: tokio::task::JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
    let (connected, closed) = (
        slow.connected.load(Ordering::SeqCst),
        slow.closed.load(Ordering::SeqCst),
    );
    eprintln!(
        "slow clients: {connected} held open, {closed} closed by the server within {} s",
        SLOW_FOR.as_secs()
    );
    assert_eq!(connected, SLOW, "not every slow client could connect");
    assert_eq!(
        closed, SLOW,
        "the server kept slow clients past its deadline"
    );
}

#[test]
fn one_click_posts_get_through_slowloris_and_a_burst_of_gets() {
    let _alone = one_at_a_time();
    let project = Project::example();
    let mut server = Server::start(&project, &["unsubscribe", "serve", "--bind", "127.0.0.1:0"]);
    let port = server.port;
    let signer = Signer::new(LIST_ID, SECRET.as_bytes());
    let get = |address: &str| {
        format!(
            "GET /unsubscribe/{} HTTP/1.1\r\nHost: news.renecassin.example.org\r\nAccept: text/html\r\n\r\n",
            signer.token(address)
        )
        .into_bytes()
    };
    let post = |address: &str| {
        let body = "List-Unsubscribe=One-Click";
        format!(
            "POST /unsubscribe/{} HTTP/1.1\r\nHost: news.renecassin.example.org\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            signer.token(address),
            body.len()
        )
        .into_bytes()
    };
    let addresses: Vec<String> = (0..POSTS)
        .map(|i| format!("attack-{i}@example.org"))
        .collect();
    let runtime = runtime();

    let (first, _, _) = runtime.block_on(exchange(
        port,
        get("zoe.brightman@example.com"),
        Duration::from_secs(10),
    ));
    assert_eq!(first, 200, "{}", server.stderr());
    let rss_before = server.status_kb("VmRSS");

    let (server_cpu, own_cpu, burst_started) = (server.cpu(), cpu_of("self"), Instant::now());
    let (slow, slow_tasks, gets, posts) = runtime.block_on(async {
        let (slow, slow_tasks) = start_slow(port, b"GET /unsubscribe/".to_vec().as_slice()).await;
        // The burst, with a POST after every 20th GET.
        let mut gets = tokio::task::JoinSet::new();
        let mut posts = tokio::task::JoinSet::new();
        for i in 0..PARALLEL {
            gets.spawn(exchange(
                port,
                get("ruth.abrahams@example.org"),
                Duration::from_secs(20),
            ));
            if i % (PARALLEL / POSTS) == 0 {
                let address = addresses[i / (PARALLEL / POSTS)].clone();
                posts.spawn(exchange(port, post(&address), Duration::from_secs(20)));
            }
        }
        let gets: Vec<(u16, Duration)> = gets
            .join_all()
            .await
            .into_iter()
            .map(|(s, t, _)| (s, t))
            .collect();
        let posts: Vec<(u16, Duration)> = posts
            .join_all()
            .await
            .into_iter()
            .map(|(s, t, _)| (s, t))
            .collect();
        (slow, slow_tasks, gets, posts)
    });
    let burst = Figures::since(&server, server_cpu, own_cpu, burst_started);
    let held = slow.connected.load(Ordering::SeqCst) - slow.closed.load(Ordering::SeqCst);
    let worst_post = posts.iter().map(|(_, t)| *t).max().unwrap();
    let mut post_times: Vec<Duration> = posts.iter().map(|(_, t)| *t).collect();
    post_times.sort();
    eprintln!(
        "unsubscribe serve: one-click POST latency median {:?}, 90th percentile {:?}, worst {:?}",
        post_times[POSTS / 2],
        post_times[POSTS * 9 / 10],
        worst_post
    );
    let worst_get = gets.iter().map(|(_, t)| *t).max().unwrap();
    let get_statuses: Vec<u16> = gets.iter().map(|(s, _)| *s).collect();
    let post_statuses: Vec<u16> = posts.iter().map(|(s, _)| *s).collect();
    eprintln!(
        "unsubscribe serve: {SLOW} slow clients ({held} still held after the burst), {PARALLEL} parallel GETs ({}; worst {:?}), {POSTS} one-click POSTs ({}; worst {:?})",
        tally(&get_statuses),
        worst_get,
        tally(&post_statuses),
        worst_post
    );
    eprintln!("unsubscribe serve: {burst}");
    assert_eq!(held, SLOW, "slow clients were dropped during the burst");
    for (status, took) in &posts {
        assert_eq!(
            *status,
            200,
            "a one-click POST was not answered 200 ({took:?})\n{}",
            tally(&post_statuses)
        );
    }
    assert!(
        worst_post <= must_answer_within(),
        "a one-click POST took {worst_post:?} (allowed {:?})",
        must_answer_within()
    );
    assert!(
        get_statuses.iter().all(|s| matches!(s, 200 | 503)),
        "GETs without a proper answer: {}",
        tally(&get_statuses)
    );

    // Every POST is in the log, synced before its 200.
    let log = fs::read_to_string(project.path("unsubscribes.log")).unwrap();
    for address in &addresses {
        assert_eq!(
            log.lines()
                .filter(|l| l.contains(&format!("\t{address}\t")))
                .count(),
            1,
            "{address} not logged once:\n{log}"
        );
    }
    assert_eq!(log.lines().count(), POSTS);

    // The next good request, with the slow clients still there.
    let (next, took, _) = runtime.block_on(exchange(
        port,
        post("li.wei@example.org"),
        Duration::from_secs(10),
    ));
    assert_eq!(next, 200);
    assert!(
        took <= must_answer_within(),
        "the next POST took {took:?} (allowed {:?})",
        must_answer_within()
    );
    let rss_after = server.status_kb("VmRSS");
    let rss_peak = server.status_kb("VmHWM");
    eprintln!(
        "unsubscribe serve: RSS {rss_before} kB before, {rss_after} kB after, peak {rss_peak} kB"
    );
    assert!(rss_peak < MAX_RSS_KB, "peak RSS {rss_peak} kB");

    runtime.block_on(expect_slow_closed(&slow, slow_tasks));
    server.assert_running();

    // The access log has every answer, 503s included.
    let count =
        |stderr: &str, prefix: &str| stderr.lines().filter(|l| l.starts_with(prefix)).count();
    let stderr =
        server.stderr_when(|e| count(e, "POST 200 ") == POSTS + 1 && count(e, "- 408 -") >= SLOW);
    let logged = |prefix: &str| count(&stderr, prefix);
    assert_eq!(logged("POST 200 attack-"), POSTS, "{stderr}");
    let busy = get_statuses.iter().filter(|s| **s == 503).count();
    assert!(logged("- 503 -") >= busy, "503s not logged");
    eprintln!(
        "unsubscribe serve: access log has {} lines, {} of them 503, {} 408",
        stderr.lines().count(),
        logged("- 503 -"),
        logged("- 408 -")
    );
}

#[test]
fn the_preview_page_gets_through_slowloris_and_a_burst_of_gets() {
    let _alone = one_at_a_time();
    let project = Project::example();
    let mut server = Server::start(
        &project,
        &[
            "preview",
            "issues/2022-07-13.toml",
            "--serve",
            "--port",
            "0",
        ],
    );
    let port = server.port;
    let page = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").into_bytes();
    let runtime = runtime();

    let (first, took, body) =
        runtime.block_on(exchange(port, page.clone(), Duration::from_secs(20)));
    assert_eq!(first, 200, "{}", server.stderr());
    eprintln!(
        "preview: the first page took {took:?}, {} bytes",
        body.len()
    );
    let rss_before = server.status_kb("VmRSS");

    let (server_cpu, own_cpu, burst_started) = (server.cpu(), cpu_of("self"), Instant::now());
    let (slow, slow_tasks, gets, probes) = runtime.block_on(async {
        let partial = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-");
        let (slow, slow_tasks) = start_slow(port, partial.as_bytes()).await;
        let mut gets = tokio::task::JoinSet::new();
        let mut probes = tokio::task::JoinSet::new();
        for i in 0..PARALLEL {
            gets.spawn(exchange(port, page.clone(), Duration::from_secs(20)));
            // A person's reload now and then, in the thick of it.
            if i % 100 == 50 {
                probes.spawn(exchange(port, page.clone(), Duration::from_secs(20)));
            }
        }
        let gets: Vec<(u16, Duration)> = gets
            .join_all()
            .await
            .into_iter()
            .map(|(s, t, _)| (s, t))
            .collect();
        let probes: Vec<(u16, Duration, usize)> = probes
            .join_all()
            .await
            .into_iter()
            .map(|(s, t, body)| (s, t, body.len()))
            .collect();
        (slow, slow_tasks, gets, probes)
    });
    let burst = Figures::since(&server, server_cpu, own_cpu, burst_started);
    let held = slow.connected.load(Ordering::SeqCst) - slow.closed.load(Ordering::SeqCst);
    let get_statuses: Vec<u16> = gets.iter().map(|(s, _)| *s).collect();
    let worst_get = gets.iter().map(|(_, t)| *t).max().unwrap();
    let worst_probe = probes.iter().map(|(_, t, _)| *t).max().unwrap();
    eprintln!(
        "preview: {SLOW} slow clients ({held} still held after the burst), {PARALLEL} parallel GETs of / ({}; worst {worst_get:?}), {} reloads in the burst (worst {worst_probe:?})",
        tally(&get_statuses),
        probes.len()
    );
    eprintln!("preview: {burst}");
    assert_eq!(held, SLOW, "slow clients were dropped during the burst");
    for (status, took, len) in &probes {
        assert_eq!(*status, 200, "a reload got {status} after {took:?}");
        assert!(*len > 10_000, "a reload got a short page ({len} bytes)");
    }
    assert!(
        worst_probe <= must_answer_within(),
        "a reload took {worst_probe:?} (allowed {:?})",
        must_answer_within()
    );
    assert!(
        get_statuses.iter().all(|s| matches!(s, 200 | 503)),
        "GETs without a proper answer: {}",
        tally(&get_statuses)
    );

    let (next, took, _) = runtime.block_on(exchange(port, page.clone(), Duration::from_secs(10)));
    assert_eq!(next, 200);
    assert!(
        took <= must_answer_within(),
        "the next page took {took:?} (allowed {:?})",
        must_answer_within()
    );
    let rss_after = server.status_kb("VmRSS");
    let rss_peak = server.status_kb("VmHWM");
    eprintln!("preview: RSS {rss_before} kB before, {rss_after} kB after, peak {rss_peak} kB");
    assert!(rss_peak < MAX_RSS_KB, "peak RSS {rss_peak} kB");

    runtime.block_on(expect_slow_closed(&slow, slow_tasks));
    server.assert_running();

    // The access log has every answer.
    let pages = PARALLEL + probes.len() + 2;
    let count = |stderr: &str, line: &str| stderr.lines().filter(|l| *l == line).count();
    let stderr =
        server.stderr_when(|e| count(e, "GET 200 /") >= pages && count(e, "- 408 -") >= SLOW);
    let logged = |line: &str| count(&stderr, line);
    eprintln!(
        "preview: access log has {} lines, {} of them 503, {} 408",
        stderr.lines().count(),
        logged("- 503 -"),
        logged("- 408 -")
    );
    assert_eq!(logged("GET 200 /"), pages);
    let busy = get_statuses.iter().filter(|s| **s == 503).count();
    assert!(logged("- 503 -") >= busy, "503s not logged");
}

#[test]
fn a_full_server_answers_503_at_once_without_reading_and_recovers_and_stops() {
    let _alone = one_at_a_time();
    const CAP: usize = 8;
    const MUTE: usize = 100;
    let project = Project::example();
    let mut command = project.command(&["unsubscribe", "serve", "--bind", "127.0.0.1:0"]);
    command.env("NEWSLETTER_HTTP_MAX_CONNECTIONS", CAP.to_string());
    let mut server = Server::spawn(command);
    let port = server.port;
    let signer = Signer::new(LIST_ID, SECRET.as_bytes());
    let post = format!(
        "POST /unsubscribe/{} HTTP/1.1\r\nHost: news.renecassin.example.org\r\nContent-Length: 26\r\n\r\nList-Unsubscribe=One-Click",
        signer.token("ruth.abrahams@example.org")
    )
    .into_bytes();
    let get = format!(
        "GET /unsubscribe/{} HTTP/1.1\r\nHost: news.renecassin.example.org\r\n\r\n",
        signer.token("ruth.abrahams@example.org")
    )
    .into_bytes();
    let runtime = runtime();
    runtime.block_on(async {
        // Slow clients take every place.
        let mut slow = Vec::new();
        for _ in 0..CAP {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.write_all(b"GET /unsubscribe/").await.unwrap();
            slow.push(stream);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Clients that send nothing and read nothing: each must not hold
        // up the next (the old server drained each 503's request in its
        // accept loop).
        let started = Instant::now();
        let mut mute = Vec::new();
        for _ in 0..MUTE {
            mute.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        }
        let (status, took, _) = exchange(port, get.clone(), Duration::from_secs(10)).await;
        eprintln!("full server: a GET after {MUTE} silent clients got {status} in {took:?}");
        assert_eq!(status, 503);
        assert!(
            took <= must_answer_within(),
            "the 503 took {took:?} (allowed {:?})",
            must_answer_within()
        );
        // The silent clients got their 503 without sending a byte.
        let mut answered = 0;
        for mut stream in mute {
            let mut answer = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
            if read.is_ok() && answer.starts_with(b"HTTP/1.1 503 Service Unavailable\r\n") {
                answered += 1;
            }
        }
        eprintln!(
            "full server: {answered} of {MUTE} silent clients got a 503 within {:?}",
            started.elapsed()
        );
        assert_eq!(answered, MUTE);
        // The places come back when the slow clients go.
        drop(slow);
        let deadline = Instant::now() + Duration::from_secs(5);
        let (status, took) = loop {
            let (status, took, _) = exchange(port, post.clone(), Duration::from_secs(10)).await;
            if status != 503 || Instant::now() > deadline {
                break (status, took);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(status, 200);
        assert!(
            took <= must_answer_within(),
            "the POST took {took:?} (allowed {:?})",
            must_answer_within()
        );
    });
    server.assert_running();

    // Ctrl-C with slow clients connected: they are not waited for.
    let slow: Vec<std::net::TcpStream> = (0..CAP)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            std::io::Write::write_all(&mut stream, b"GET /unsubscribe/").unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let interrupted = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            interrupted.elapsed() < Duration::from_secs(10),
            "the server did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let stopping = interrupted.elapsed();
    eprintln!("full server: stopped {stopping:?} after Ctrl-C, with {CAP} slow clients connected");
    assert_eq!(code, Some(0));
    assert!(
        stopping < Duration::from_secs(2),
        "stopping took {stopping:?}"
    );
    drop(slow);
    let stderr = server.stderr_when(|e| e.contains("Stopped."));
    let busy = stderr.lines().filter(|l| *l == "- 503 -").count();
    assert!(busy > MUTE, "503s are logged: {busy}\n{stderr}");
    assert!(
        stderr.contains("POST 200 ruth.abrahams@example.org"),
        "{stderr}"
    );
}
