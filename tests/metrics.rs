//! The `/metrics` endpoint of a real `serve`: every metric the dashboards and alert rules
//! query is exported from the start, the rules pass `promtool` (when it is installed), and
//! the numbers move while an example job runs through the server.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mirror_neuron::metrics::names::CATALOG;

/// Names in rules that Prometheus makes up itself rather than scraping from us.
const PROMETHEUS_OWN: [&str; 1] = ["up"];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mirror-neuron")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A `mirror-neuron serve` on free ports, on the test Redis; stopped (SIGTERM) on drop.
struct Server {
    child: Child,
    grpc: u16,
    metrics: u16,
    _home: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let (grpc, metrics) = (free_port(), free_port());
        let home = tempfile::tempdir().expect("home dir");
        let namespace = common::namespace();
        let child = Command::new(bin())
            .arg("serve")
            .env("MN_REDIS_URL", &common::redis().url)
            .env("MN_REDIS_NAMESPACE", &namespace)
            .env("MN_HOME", home.path())
            .env("MN_GRPC_PORT", grpc.to_string())
            .env("MN_METRICS_PORT", metrics.to_string())
            .env("MN_METRICS_INTERVAL_MS", "200")
            .env("MN_NODE_NAME", "metrics-test")
            .env_remove("MN_GRPC_AUTH_TOKEN")
            .env_remove("MN_GRPC_TARGET")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start serve");
        let server = Server {
            child,
            grpc,
            metrics,
            _home: home,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.try_scrape().is_none() || TcpStream::connect(("127.0.0.1", grpc)).is_err() {
            assert!(Instant::now() < deadline, "serve did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// GET /metrics over plain HTTP/1.0; `None` until the endpoint answers 200.
    fn try_scrape(&self) -> Option<String> {
        let mut conn = TcpStream::connect(("127.0.0.1", self.metrics)).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        conn.read_to_string(&mut text).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200")
            .then(|| body.to_string())
            .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
    }

    fn scrape(&self) -> Scrape {
        Scrape::parse(&self.try_scrape().expect("scrape /metrics"))
    }

    /// Runs a bundle through this server (`run --target ... --wait`); returns stdout.
    fn run_bundle(&self, bundle: &Path) -> String {
        let out = Command::new(bin())
            .args(["--target", &format!("127.0.0.1:{}", self.grpc), "run"])
            .arg(bundle)
            .arg("--json")
            .env_remove("MN_GRPC_AUTH_TOKEN")
            .output()
            .expect("run the client");
        assert!(
            out.status.success(),
            "run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed exposition: series (name + labels) to value, and the HELP lines seen.
struct Scrape {
    series: BTreeMap<String, f64>,
    helped: BTreeSet<String>,
    text: String,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut series = BTreeMap::new();
        let mut helped = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                if let Some(name) = rest.split_whitespace().next() {
                    helped.insert(name.to_string());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if let Some((key, value)) = line.rsplit_once(' ')
                && let Ok(v) = value.parse::<f64>()
            {
                series.insert(key.to_string(), v);
            }
        }
        Scrape {
            series,
            helped,
            text: text.to_string(),
        }
    }

    /// Metric names of every series (`_bucket`/`_sum`/`_count` kept as exported).
    fn names(&self) -> BTreeSet<String> {
        self.series
            .keys()
            .map(|k| k.split('{').next().unwrap_or(k).to_string())
            .collect()
    }

    /// Sum of every series of `name` whose labels contain all of `labels` (`k="v"` pairs).
    fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.series
            .iter()
            .filter(|(k, _)| {
                let (n, rest) = k.split_once('{').unwrap_or((k, ""));
                n == name && labels.iter().all(|l| rest.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

/// Every `mirror_neuron_*` name (and Prometheus' own names) mentioned in `text`.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("mirror_neuron_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    for own in PROMETHEUS_OWN {
        if text.contains(&format!("{own}{{")) {
            names.insert(own.to_string());
        }
    }
    names
}

fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("dashboards"))
        .expect("dashboards/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Every PromQL expression of a Grafana dashboard.
fn exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn dashboards_and_alerts_query_only_exported_metrics() {
    let server = Server::start();
    let scrape = server.scrape();
    let exported = scrape.names();

    // A fresh node exports every catalog metric, each with its HELP text.
    for m in CATALOG {
        assert!(
            exported
                .iter()
                .any(|n| n == m.name || n.starts_with(&format!("{}_", m.name))),
            "{} is not exported by a fresh node",
            m.name
        );
        assert!(scrape.helped.contains(m.name), "{} has no HELP", m.name);
    }
    // Histograms are real histograms (buckets set), not summaries.
    assert!(
        scrape
            .text
            .contains("# TYPE mirror_neuron_append_duration_seconds histogram")
    );

    let mut used = BTreeSet::new();
    let files = dashboard_files();
    let wanted: BTreeSet<&str> = ["overview", "jobs", "cluster", "event_store"].into();
    let found: BTreeSet<String> = files
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    for w in &wanted {
        assert!(found.contains(*w), "dashboards/{w}.json is missing");
    }
    let mut uids = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read dashboard");
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        assert!(
            uids.insert(json["uid"].as_str().unwrap_or_default().to_string()),
            "{}: uid missing or repeated",
            file.display()
        );
        let mut all = Vec::new();
        exprs(&json, &mut all);
        assert!(!all.is_empty(), "{} has no queries", file.display());
        for e in &all {
            let names = metric_names_in(e);
            assert!(
                !names.is_empty(),
                "{}: {e:?} queries no metric",
                file.display()
            );
            for n in names {
                assert!(
                    exported.contains(&n),
                    "{} queries {n}, which /metrics does not export",
                    file.display()
                );
                used.insert(n);
            }
        }
    }
    let rules_path = repo().join("dashboards/alerts.yml");
    let rules = std::fs::read_to_string(&rules_path).expect("read alerts.yml");
    for alert in [
        "ProjectionLag",
        "LeaseLost",
        "DeadLetterRate",
        "NodeLost",
        "RedisUnreachable",
    ] {
        assert!(
            rules.contains(&format!("alert: MirrorNeuron{alert}")),
            "{alert}"
        );
    }
    let rule_exprs: String = rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(rule_exprs.lines().count() >= 5, "alerts.yml has its rules");
    for n in metric_names_in(&rule_exprs) {
        if PROMETHEUS_OWN.contains(&n.as_str()) {
            continue;
        }
        assert!(
            exported.contains(&n),
            "alerts.yml uses {n}, which is not exported"
        );
    }
    // And the other way round: every catalog metric is on some dashboard.
    for m in CATALOG {
        assert!(
            used.iter()
                .any(|u| u == m.name || u.starts_with(&format!("{}_", m.name))),
            "no dashboard shows {}",
            m.name
        );
    }

    match Command::new("promtool").arg("--version").output() {
        Ok(_) => {
            let check = Command::new("promtool")
                .args(["check", "rules"])
                .arg(&rules_path)
                .output()
                .expect("promtool runs");
            assert!(
                check.status.success(),
                "promtool check rules: {}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            let unit = Command::new("promtool")
                .args(["test", "rules"])
                .arg(repo().join("dashboards/alerts_test.yml"))
                .output()
                .expect("promtool runs");
            assert!(
                unit.status.success(),
                "promtool test rules: {}{}",
                String::from_utf8_lossy(&unit.stdout),
                String::from_utf8_lossy(&unit.stderr)
            );
            let mut lint = Command::new("promtool")
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("promtool runs");
            lint.stdin
                .take()
                .expect("stdin")
                .write_all(scrape.text.as_bytes())
                .expect("write metrics");
            let out = lint.wait_with_output().expect("promtool check metrics");
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => eprintln!(
            "note: promtool is not on PATH; skipped `promtool check rules`, `test rules` and `check metrics` \
             (apt-get install prometheus to run them)"
        ),
    }
}

#[test]
fn metrics_move_while_an_example_runs() {
    let server = Server::start();
    let before = server.scrape();
    assert_eq!(
        before.sum("mirror_neuron_redis_up", &[]),
        1.0,
        "Redis is reachable"
    );
    server.run_bundle(&repo().join("examples/prime_sweep"));
    // The job counts come from the poller (every 200 ms here).
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let s = server.scrape();
        if s.sum("mirror_neuron_jobs", &[r#"status="completed""#]) >= 1.0 {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "jobs{{status=completed}} never reached 1"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let grew = |name: &str, labels: &[&str]| after.sum(name, labels) - before.sum(name, labels);

    // prime_sweep: 4 workers and a summariser run as executors, 13 agent steps, one job.
    assert!(grew("mirror_neuron_events_appended_total", &[]) >= 15.0);
    assert_eq!(
        grew(
            "mirror_neuron_events_appended_total",
            &[r#"event_type="job_completed""#]
        ),
        1.0
    );
    assert_eq!(
        grew("mirror_neuron_agent_messages_processed_total", &[]),
        13.0
    );
    assert_eq!(
        grew(
            "mirror_neuron_executor_runs_total",
            &[r#"pool="default""#, r#"outcome="ok""#]
        ),
        5.0
    );
    assert_eq!(
        grew(
            "mirror_neuron_executor_run_duration_seconds_count",
            &[r#"pool="default""#]
        ),
        5.0
    );
    assert_eq!(
        grew(
            "mirror_neuron_job_duration_seconds_count",
            &[r#"status="completed""#]
        ),
        1.0
    );
    assert!(grew("mirror_neuron_appends_total", &[r#"outcome="appended""#]) >= 1.0);
    assert!(
        grew(
            "mirror_neuron_append_duration_seconds_count",
            &[r#"outcome="appended""#]
        ) >= 1.0
    );
    assert!(
        grew(
            "mirror_neuron_grpc_requests_total",
            &[
                r#"method="mirrorneuron.job.v1.JobService/SubmitJob""#,
                r#"code="OK""#
            ]
        ) == 1.0
    );
    assert!(grew("mirror_neuron_redis_ping_seconds_count", &[]) >= 1.0);
    // The job is over: nothing owned, queued or in flight on this node any more.
    assert_eq!(after.sum("mirror_neuron_owned_jobs", &[]), 0.0);
    assert_eq!(after.sum("mirror_neuron_queued_messages", &[]), 0.0);
    assert_eq!(after.sum("mirror_neuron_inflight_messages", &[]), 0.0);
    assert_eq!(
        after.sum("mirror_neuron_projection_lag", &[r#"group="projections""#]),
        0.0,
        "the projections caught up"
    );

    // A failed call is counted with its status code.
    let bogus = Command::new(bin())
        .args([
            "--target",
            &format!("127.0.0.1:{}", server.grpc),
            "job",
            "inspect",
            "nope",
        ])
        .env_remove("MN_GRPC_AUTH_TOKEN")
        .output()
        .expect("run the client");
    assert!(!bogus.status.success());
    let last = server.scrape();
    assert!(
        last.sum(
            "mirror_neuron_grpc_requests_total",
            &[r#"code="NOT_FOUND""#]
        ) >= 1.0,
        "the failed GetJob is counted with its code"
    );
}
