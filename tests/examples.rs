//! The bundles in `examples/` run end to end against a real Redis, and each result is checked
//! against values computed here independently (primes, peaks) or fixed by the bundle's design
//! (routes, attempts). Every run is bounded by [`RUN_LIMIT`] and every test by [`TEST_LIMIT`].

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mirror_neuron::domain::event::JobEvent;
use mirror_neuron::domain::job::JobStatus;
use mirror_neuron::domain::replay::{Entry, ReplayPoint, replay};
use mirror_neuron::domain::view::JobView;
use mirror_neuron::runtime::bundle::load_bundle;
use mirror_neuron::runtime::local::{run_job, submit};
use mirror_neuron::runtime::owner::OwnerExit;
use mirror_neuron::runtime::projector::PROJECTION_GROUP;
use mirror_neuron::store::Store;
use serde_json::{Value, json};

/// How long one job may run before the owner is told to stop.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// Hard bound on a whole test (a run plus projection catch-up and setup).
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// Every example that must exist, load and run.
const EXAMPLES: [&str; 10] = [
    "research_flow",
    "prime_sweep",
    "streaming_peaks",
    "conditional_routing",
    "flaky_retry",
    "document_triage",
    "retrieval_qa",
    // Needs a model server; run by its tests only when MN_EXAMPLE_LLM_BASE_URL is set.
    "llm_step",
    // Two releases of one service, deployed in turn (run by tests/deployments.rs).
    "web_service/v1",
    "web_service/v2",
];

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// What one finished run left behind.
struct Finished {
    job_id: String,
    exit: OwnerExit,
    view: JobView,
}

impl Finished {
    /// The job's `result.output`, after checking the job completed cleanly.
    fn completed_output(&self, agent: &str) -> &Value {
        assert_eq!(
            self.exit,
            OwnerExit::Finished(JobStatus::Completed),
            "job {} did not complete: {:?}",
            self.job_id,
            self.view
        );
        assert_eq!(self.view.status, Some(JobStatus::Completed));
        assert_eq!(self.view.dead_letters, 0, "no message may be dead-lettered");
        assert_eq!(self.view.steps_failed, 0, "no step may fail");
        let result = self
            .view
            .result
            .as_ref()
            .expect("a completed job has a result");
        assert_eq!(result["agent_id"], agent, "completed by the wrong agent");
        &result["output"]
    }
}

/// Loads, submits and runs the bundle at `path` on a fresh namespace.
async fn run_bundle(path: &Path) -> Finished {
    run_bundle_on(&common::store().await, path).await
}

/// Loads, submits and runs the bundle at `path` on `store`.
async fn run_bundle_on(store: &Store, path: &Path) -> Finished {
    let bundle = load_bundle(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let store = store.clone();
    let job_id = submit(&store, &bundle).await.expect("submit");
    let report = run_job(&store, &job_id, "test-node", Some(RUN_LIMIT), |_| {})
        .await
        .expect("run the job");
    assert!(!report.timed_out, "job {job_id} ran past {RUN_LIMIT:?}");
    assert_replay_matches_live_views(&store, &job_id).await;
    Finished {
        job_id,
        exit: report.exit,
        view: report.view.expect("the job has a view"),
    }
}

/// Replaying the job's history to its end with the runtime's own folds (`job replay`) gives
/// exactly the views the projection workers built live, and the owner's state as the runtime
/// loads it. Every example run goes through here.
async fn assert_replay_matches_live_views(store: &Store, job_id: &str) {
    let history = store.history(job_id, 1, None).await.expect("history");
    let entries = history.iter().map(|h| match &h.event {
        Ok(env) => Entry::Event(env),
        Err(_) => Entry::Undecodable { seq: h.seq },
    });
    let replayed = replay(job_id, entries, ReplayPoint::End);
    let live = store.job_view(job_id).await.expect("view").expect("a view");
    assert_eq!(replayed.projection.job, live, "job view of {job_id}");
    let agents: Vec<_> = replayed.projection.agents.values().cloned().collect();
    assert_eq!(
        agents,
        store.agent_views(job_id).await.expect("agent views")
    );
    let report = replayed.report();
    assert_eq!(
        report.dead_letters,
        store.dead_letter_views(job_id).await.expect("dead letters")
    );
    assert_eq!(report.status, live.status);
    assert_eq!(
        replayed.state,
        store.load_state(job_id).await.expect("state")
    );
}

/// Runs `f` under [`TEST_LIMIT`].
async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_LIMIT, f)
        .await
        .expect("test ran past its time limit");
}

fn manifest(path: &Path) -> Value {
    let text = std::fs::read_to_string(path.join("manifest.json")).expect("read manifest");
    serde_json::from_str(&text).expect("manifest is JSON")
}

#[test]
fn every_example_validates() {
    for name in EXAMPLES {
        let bundle = load_bundle(&example(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!bundle.manifest.nodes.is_empty(), "{name} has nodes");
    }
    // Nothing in examples/ is left out of the list above (and so out of these tests).
    let mut found: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"))
            .expect("list examples")
            .map(|e| e.expect("entry"))
            .filter(|e| e.path().is_dir())
            .flat_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                // A folder without a manifest holds several bundles (releases of one job).
                match e.path().join("manifest.json").exists() {
                    true => vec![name],
                    false => std::fs::read_dir(e.path())
                        .expect("list releases")
                        .map(|r| r.expect("entry"))
                        .filter(|r| r.path().is_dir())
                        .map(|r| format!("{name}/{}", r.file_name().to_string_lossy()))
                        .collect(),
                }
            })
            .collect();
    found.sort();
    let mut expected: Vec<String> = EXAMPLES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected);
}

/// The AI examples are what users copy first: `validate` passes them with nothing to warn about.
#[test]
fn ai_examples_validate_without_warnings() {
    for name in ["document_triage", "retrieval_qa", "llm_step"] {
        let out = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
            .arg("validate")
            .arg(example(name))
            .env_remove("MN_EXECUTOR_SECRET_ENV")
            .output()
            .expect("validate runs");
        assert!(out.status.success(), "{name}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "valid\n", "{name}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{name}");
    }
}

#[tokio::test]
async fn research_flow_collects_its_one_input() {
    bounded(async {
        let run = run_bundle(&example("research_flow")).await;
        let input = json!({
            "topic": "edge inference",
            "text": "Small models on owned hardware are getting good enough."
        });
        let output = run.completed_output("reviewer");
        assert_eq!(
            output,
            &json!({ "messages": [input], "count": 1, "last_message": input })
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// prime_sweep

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// The summary the bundle must produce, computed here from first principles.
fn expected_prime_summary(workers: u64, start: u64, chunk: u64) -> Value {
    let end = start + workers * chunk - 1;
    let primes: Vec<u64> = (start..=end).filter(|n| is_prime(*n)).collect();
    let first: Vec<u64> = primes.iter().copied().take(10).collect();
    let last: Vec<u64> = primes[primes.len().saturating_sub(10)..].to_vec();
    json!({
        "mode": "prime_sweep",
        "worker_count": workers,
        "checked_numbers": workers * chunk,
        "prime_count": primes.len(),
        "range_start": start,
        "range_end": end,
        "first_primes": first,
        "last_primes": last,
    })
}

/// Runs `generate.py` into `out`.
fn generate_prime_sweep(out: &Path, args: &[&str]) {
    let status = Command::new("python3")
        .arg(example("prime_sweep").join("generate.py"))
        .args(args)
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs");
    assert!(status.success(), "generate.py failed");
}

#[test]
fn committed_prime_sweep_is_what_the_generator_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    generate_prime_sweep(dir.path(), &["--workers", "4"]);
    assert_eq!(manifest(dir.path()), manifest(&example("prime_sweep")));
    assert!(
        dir.path()
            .join("payloads/scripts/check_prime_range.py")
            .is_file()
    );
}

#[tokio::test]
async fn prime_sweep_four_workers() {
    bounded(async {
        let run = run_bundle(&example("prime_sweep")).await;
        let output = run.completed_output("summarizer");
        assert_eq!(output, &expected_prime_summary(4, 1_000_003, 100));
        assert_eq!(output["prime_count"], 32);
        // dispatcher x4, workers x4, collector x4, summarizer x1.
        assert_eq!(run.view.steps_finished, 13);
    })
    .await;
}

#[tokio::test]
async fn prime_sweep_generated_twenty_workers() {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        generate_prime_sweep(
            dir.path(),
            &["--workers", "20", "--start", "2000000", "--chunk", "75"],
        );
        let graph = manifest(dir.path());
        assert_eq!(graph["graph_id"], "prime_sweep_20_workers");
        assert_eq!(
            graph["initial_inputs"]["dispatcher"]
                .as_array()
                .map(Vec::len),
            Some(20)
        );
        let run = run_bundle(dir.path()).await;
        let output = run.completed_output("summarizer");
        assert_eq!(output, &expected_prime_summary(20, 2_000_000, 75));
        assert_eq!(run.view.steps_finished, 20 * 3 + 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// streaming_peaks

/// Peaks of the whole series at once: strictly above the left neighbour, not below the right
/// one, at least `threshold`; the two ends never count.
fn peaks_of(samples: &[i64], threshold: i64) -> Vec<(usize, i64)> {
    (1..samples.len().saturating_sub(1))
        .filter(|&i| {
            let v = samples[i];
            samples[i - 1] < v && v >= samples[i + 1] && v >= threshold
        })
        .map(|i| (i, samples[i]))
        .collect()
}

#[tokio::test]
async fn streaming_peaks_carries_state_across_chunks() {
    bounded(async {
        let path = example("streaming_peaks");
        let seed = manifest(&path)["initial_inputs"]["telemetry_source"][0].clone();
        let samples: Vec<i64> = serde_json::from_value(seed["samples"].clone()).expect("samples");
        let threshold = seed["threshold"].as_i64().expect("threshold");
        let chunk = seed["chunk_size"].as_u64().expect("chunk_size") as usize;

        let expected = peaks_of(&samples, threshold);
        // The series is built so that peaks sit inside chunks, on a plateau, and on the last
        // sample of a chunk (only detectable with the next chunk, i.e. from carried state).
        assert_eq!(
            expected,
            vec![
                (5, 55),
                (9, 61),
                (15, 80),
                (19, 52),
                (26, 91),
                (29, 58),
                (31, 60)
            ]
        );
        assert!(expected.iter().any(|(i, _)| i % chunk == chunk - 1));

        let run = run_bundle(&path).await;
        let output = run.completed_output("peak_detector");
        let (max_index, max_value) = samples.iter().enumerate().fold(
            (0, i64::MIN),
            |best, (i, &v)| if v > best.1 { (i, v) } else { best },
        );
        let peaks: Vec<Value> = expected
            .iter()
            .map(|(i, v)| json!({ "index": i, "value": v }))
            .collect();
        assert_eq!(
            output,
            &json!({
                "sensor": "pump-7/vibration",
                "chunks": samples.len().div_ceil(chunk),
                "samples": samples.len(),
                "threshold": threshold,
                "max": { "index": max_index, "value": max_value },
                "peaks": peaks,
            })
        );
        // One source run, then one detector run per chunk.
        assert_eq!(run.view.steps_finished, 1 + 5);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// conditional_routing

#[tokio::test]
async fn conditional_routing_sends_each_ticket_down_one_branch() {
    bounded(async {
        let run = run_bundle(&example("conditional_routing")).await;
        let output = run.completed_output("report");
        assert_eq!(
            output,
            &json!({
                "tickets": 6,
                "routes": {
                    "T-101": "escalate",
                    "T-102": "archive",
                    "T-103": "escalate",
                    "T-104": "review",
                    "T-105": "archive",
                    "T-106": "archive",
                },
                "by_branch": {
                    "escalate": ["T-101", "T-103"],
                    "review": ["T-104"],
                    "archive": ["T-102", "T-105", "T-106"],
                },
                "actions": {
                    "T-101": "page on-call",
                    "T-102": "file in backlog",
                    "T-103": "page on-call",
                    "T-104": "queue for next triage meeting",
                    "T-105": "file in backlog",
                    "T-106": "file in backlog",
                },
            })
        );
        // triage x6 + one branch step per ticket x6 + ledger x6 + report x1: first_match
        // delivered each ticket exactly once, even where a later (default) edge also matched.
        assert_eq!(run.view.steps_finished, 19);
        assert_eq!(run.view.messages_sent, 6 + 6 + 6 + 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// flaky_retry

#[tokio::test]
async fn flaky_retry_succeeds_on_the_third_attempt() {
    bounded(async {
        let run = run_bundle(&example("flaky_retry")).await;
        let output = run.completed_output("sink");
        assert_eq!(output["count"], 1);
        let result = &output["last_message"];
        assert_eq!(result["agent_id"], "fetch_quote");
        assert_eq!(result["input"], json!({ "symbol": "ACME" }));
        let sandbox = &result["sandbox"];
        assert_eq!(sandbox["exit_code"], 0);
        assert_eq!(
            sandbox["attempts"], 3,
            "two transient failures, then success"
        );
        let printed: Value = serde_json::from_str(sandbox["stdout"].as_str().expect("stdout"))
            .expect("the quote is JSON");
        assert_eq!(
            printed,
            json!({ "symbol": "ACME", "price_cents": 18250, "served_on_attempt": 3 })
        );
        // The retries happened inside one step: nothing failed at the job level.
        assert_eq!(run.view.steps_finished, 2);
        let counter = std::env::temp_dir().join(format!("mn-flaky-{}", run.job_id));
        assert!(
            !counter.exists(),
            "the script removes its counter on success"
        );
    })
    .await;
}

/// A copy of `flaky_retry` whose script fails one time more than `max_attempts` allows.
fn flaky_retry_exhausted() -> tempfile::TempDir {
    // In-step retries are the subject here; agent restarts are tested on their own.
    flaky_variant(3, json!({"enabled": false}))
}

/// `flaky_retry` failing `fail_times` times, with `restart` as its restart policy.
fn flaky_variant(fail_times: u32, restart: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = example("flaky_retry");
    std::fs::create_dir_all(dir.path().join("payloads/scripts")).expect("mkdir");
    std::fs::copy(
        src.join("payloads/scripts/flaky_fetch.sh"),
        dir.path().join("payloads/scripts/flaky_fetch.sh"),
    )
    .expect("copy script");
    let mut graph = manifest(&src);
    graph["nodes"][0]["config"]["environment"]["FAIL_TIMES"] = json!(fail_times);
    graph["policies"]["restart"] = restart;
    std::fs::write(dir.path().join("manifest.json"), graph.to_string()).expect("write manifest");
    dir
}

/// Runs the exhausted variant; returns the job's failure result.
async fn run_flaky_exhausted() -> Value {
    let dir = flaky_retry_exhausted();
    let run = run_bundle(dir.path()).await;
    let _ = std::fs::remove_file(std::env::temp_dir().join(format!("mn-flaky-{}", run.job_id)));
    assert_eq!(run.exit, OwnerExit::Finished(JobStatus::Failed));
    assert_eq!(run.view.status, Some(JobStatus::Failed));
    run.view.result.expect("a failed job has a result")
}

#[tokio::test]
async fn flaky_retry_fails_the_job_once_attempts_run_out() {
    bounded(async {
        let result = run_flaky_exhausted().await;
        assert_eq!(result["agent_id"], "fetch_quote");
        let error = &result["error"];
        assert_eq!(error["attempts"], 3);
        assert_eq!(error["transient"], true);
        assert_eq!(error["exit_code"], 1);
        assert!(
            error["stderr"]
                .as_str()
                .unwrap_or("")
                .contains("attempt 3: upstream quote service: connection reset"),
            "{error}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// document_triage

/// `payloads/data/<rel>` of an example, parsed as JSON.
fn example_json(name: &str, rel: &str) -> Value {
    let path = example(name).join("payloads/data").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("JSON data")
}

/// The file stems of the `.txt` files in `payloads/data/<rel>`, sorted.
fn txt_stems(name: &str, rel: &str) -> Vec<String> {
    let mut stems: Vec<String> = std::fs::read_dir(example(name).join("payloads/data").join(rel))
        .expect("list documents")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    stems.sort();
    stems
}

/// Counts of each string in `values`.
fn tally<'a>(values: impl Iterator<Item = &'a str>) -> Value {
    let mut counts = serde_json::Map::new();
    for v in values {
        let n = counts.get(v).and_then(Value::as_u64).unwrap_or(0);
        counts.insert(v.to_string(), json!(n + 1));
    }
    Value::Object(counts)
}

#[tokio::test]
async fn document_triage_classifies_routes_and_reports_held_out_accuracy() {
    bounded(async {
        let name = "document_triage";
        let graph = manifest(&example(name));
        let inbox = txt_stems(name, "inbox");
        let gold = example_json(name, "inbox_labels.json");
        let labels: Vec<String> = std::fs::read_dir(example(name).join("payloads/data/training"))
            .expect("training labels")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        // The shipped data agree with each other and with the graph.
        assert_eq!(inbox.len(), 12);
        let gold_ids: Vec<&String> = gold.as_object().expect("labels").keys().collect();
        assert_eq!(gold_ids, inbox.iter().collect::<Vec<_>>());
        let node = |id: &str| {
            graph["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .find(|n| n["node_id"] == id)
                .unwrap_or_else(|| panic!("node {id}"))
                .clone()
        };
        assert_eq!(node("collect")["config"]["complete_after"], inbox.len());
        assert_eq!(node("classify")["config"]["concurrency"], 4);
        let edge = |id: &str| {
            graph["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .find(|e| e["edge_id"] == id)
                .unwrap_or_else(|| panic!("edge {id}"))
                .clone()
        };
        let threshold = edge("low_confidence")["conditions"]["value"]
            .as_f64()
            .expect("threshold");
        let report_threshold: f64 = node("report")["config"]["environment"]["LOW_CONFIDENCE_BELOW"]
            .as_str()
            .expect("report threshold")
            .parse()
            .expect("a number");
        assert_eq!(threshold, report_threshold, "edge and report agree");

        let started = std::time::Instant::now();
        let run = run_bundle(&example(name)).await;
        let output = run.completed_output("report");
        eprintln!("document_triage ran in {:?}", started.elapsed());
        let items = output["items"].as_object().expect("items");
        assert_eq!(
            items.keys().collect::<Vec<_>>(),
            inbox.iter().collect::<Vec<_>>()
        );
        assert_eq!(output["documents"], inbox.len());

        // Counts per label and per handler, recomputed from the per-document results.
        let label_of = |id: &str| items[id]["label"].as_str().expect("label");
        assert!(
            items
                .keys()
                .all(|id| labels.iter().any(|l| l == label_of(id)))
        );
        assert_eq!(
            output["by_label"],
            tally(items.keys().map(|id| label_of(id)))
        );
        assert_eq!(
            output["by_handler"],
            tally(
                items
                    .values()
                    .map(|i| i["handler"].as_str().expect("handler"))
            )
        );

        // Every document took the branch the first_match edges give for its label and
        // confidence.
        for (id, item) in items {
            let confidence = item["confidence"].as_f64().expect("confidence");
            assert!((0.0..=1.0).contains(&confidence), "{id}: {confidence}");
            let expected = match item["label"].as_str().expect("label") {
                _ if confidence < threshold => "human_review",
                "security_alert" => "security_desk",
                "invoice" => "accounts_payable",
                "support_ticket" => "support_queue",
                _ => "notes_archive",
            };
            assert_eq!(item["handler"], expected, "{id}");
        }
        // The flagged items are exactly those under the threshold, as the report saw them.
        let low_ids: Vec<&str> = items
            .iter()
            .filter(|(_, i)| i["confidence"].as_f64().expect("confidence") < threshold)
            .map(|(id, _)| id.as_str())
            .collect();
        let flagged = output["low_confidence"].as_array().expect("flagged");
        for (f, id) in flagged.iter().zip(&low_ids) {
            assert_eq!(f["doc_id"], *id);
            assert_eq!(f["label"], items[*id]["label"]);
            assert_eq!(f["confidence"], items[*id]["confidence"]);
        }
        assert_eq!(flagged.len(), low_ids.len());
        // The two documents written to straddle two kinds are the unsure ones.
        assert_eq!(low_ids, ["doc-03", "doc-11"]);

        // Held-out accuracy against the shipped labels (never used for training).
        let correct = items
            .keys()
            .filter(|id| gold[id.as_str()] == label_of(id))
            .count();
        let accuracy = &output["held_out_accuracy"];
        assert_eq!(accuracy["correct"], correct);
        assert_eq!(accuracy["total"], inbox.len());
        let ratio = correct as f64 / inbox.len() as f64;
        assert!((accuracy["accuracy"].as_f64().expect("accuracy") - ratio).abs() < 1e-4);
        assert_eq!(
            accuracy["misclassified"].as_array().map(Vec::len),
            Some(inbox.len() - correct)
        );
        // Measured at 12 of 12 when the example was written; 11 leaves room for one
        // tie-break difference, not for a broken classifier.
        assert!(correct >= 11, "held-out accuracy {correct}/12");

        // What the handlers pulled out is really in the documents.
        let text = |id: &str| {
            std::fs::read_to_string(example(name).join(format!("payloads/data/inbox/{id}.txt")))
                .expect("document")
        };
        for (id, item) in items {
            let d = &item["details"];
            let t = text(id);
            match item["handler"].as_str().expect("handler") {
                "accounts_payable" => {
                    assert!(t.contains(d["invoice"].as_str().expect("invoice")), "{id}");
                    let amount = d["amount"].as_str().expect("amount");
                    assert!(t.contains(amount), "{id}: {amount}");
                }
                "security_desk" => {
                    for ip in d["ips"].as_array().expect("ips") {
                        assert!(t.contains(ip.as_str().expect("ip")), "{id}");
                    }
                }
                "notes_archive" => {
                    let actions = d["action_items"].as_array().expect("actions");
                    assert!(!actions.is_empty(), "{id}");
                    for a in actions {
                        assert!(t.contains(a.as_str().expect("action")), "{id}");
                    }
                }
                _ => {}
            }
        }
        // extract x1, classify x12, a handler x12, collect x12, report x1.
        assert_eq!(run.view.steps_finished, 1 + 12 * 3 + 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// retrieval_qa

#[tokio::test]
async fn retrieval_qa_cites_real_passages_and_reports_its_hit_rate() {
    bounded(async {
        let name = "retrieval_qa";
        let corpus: std::collections::HashMap<String, String> =
            std::fs::read_to_string(example(name).join("payloads/data/passages.jsonl"))
                .expect("corpus")
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let p: Value = serde_json::from_str(l).expect("a passage");
                    (
                        p["id"].as_str().expect("id").to_string(),
                        p["text"].as_str().expect("text").to_string(),
                    )
                })
                .collect();
        assert_eq!(corpus.len(), 40);
        let questions = example_json(name, "questions.json");
        let questions = questions.as_array().expect("questions");
        let gold = example_json(name, "gold.json");
        let top_k = manifest(&example(name))["initial_inputs"]["index"][0]["top_k"]
            .as_u64()
            .expect("top_k") as usize;

        let started = std::time::Instant::now();
        let run = run_bundle(&example(name)).await;
        let output = run.completed_output("report");
        eprintln!("retrieval_qa ran in {:?}", started.elapsed());
        let answers = output["answers"].as_array().expect("answers");
        assert_eq!(output["questions"], questions.len());
        assert_eq!(
            answers.iter().map(|a| a["qid"].clone()).collect::<Vec<_>>(),
            questions
                .iter()
                .map(|q| q["qid"].clone())
                .collect::<Vec<_>>()
        );

        let (mut hits, mut reciprocal, mut cited_gold, mut misses) = (0, 0.0, 0, vec![]);
        for a in answers {
            let qid = a["qid"].as_str().expect("qid");
            let gold_ids: Vec<&str> = gold[qid]
                .as_array()
                .expect("gold ids")
                .iter()
                .map(|g| g.as_str().expect("id"))
                .collect();
            let retrieved: Vec<(&str, f64)> = a["retrieved"]
                .as_array()
                .expect("retrieved")
                .iter()
                .map(|r| {
                    (
                        r["id"].as_str().expect("id"),
                        r["score"].as_f64().expect("score"),
                    )
                })
                .collect();
            assert!(!retrieved.is_empty() && retrieved.len() <= top_k, "{qid}");
            assert!(
                retrieved.iter().all(|(id, _)| corpus.contains_key(*id)),
                "{qid}"
            );
            assert!(
                retrieved.windows(2).all(|w| w[0].1 >= w[1].1),
                "{qid}: ranked"
            );
            assert!(retrieved.iter().all(|(_, s)| *s > 0.0), "{qid}");
            // The answer is a sentence of the passage it cites, which was retrieved.
            let cited = a["cited"].as_str().expect("cited");
            assert!(retrieved.iter().any(|(id, _)| *id == cited), "{qid}");
            assert!(
                corpus[cited].contains(a["answer"].as_str().expect("answer")),
                "{qid}"
            );
            match retrieved.iter().position(|(id, _)| gold_ids.contains(id)) {
                Some(rank) => {
                    hits += 1;
                    reciprocal += 1.0 / (rank + 1) as f64;
                }
                None => misses.push(qid),
            }
            cited_gold += usize::from(gold_ids.contains(&cited));
        }
        let n = answers.len() as f64;
        let close = |key: &str, want: f64| {
            let got = output[key].as_f64().expect("a figure");
            assert!((got - want).abs() < 1e-4, "{key}: {got} vs {want}");
        };
        close("hit_rate", hits as f64 / n);
        close("mrr", reciprocal / n);
        close("citation_accuracy", cited_gold as f64 / n);
        assert_eq!(output["misses"], json!(misses));
        // Measured when the example was written: 19 of 20 (q17 says "trainers", the corpus
        // "running shoes").
        assert_eq!(misses, ["q17"]);
        // index x1, retrieve x1, answer x20, collect x20, report x1.
        assert_eq!(run.view.steps_finished, 2 + 20 * 2 + 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// llm_step

/// A copy of `llm_step` whose `llm` node gets `environment` instead of the user's `pass_env`.
fn llm_step_with(environment: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = example("llm_step");
    std::fs::create_dir_all(dir.path().join("payloads/scripts")).expect("mkdir");
    std::fs::copy(
        src.join("payloads/scripts/llm_classify.py"),
        dir.path().join("payloads/scripts/llm_classify.py"),
    )
    .expect("copy script");
    let mut graph = manifest(&src);
    let config = &mut graph["nodes"][1]["config"];
    assert_eq!(config["command"][1], "llm_classify.py");
    config.as_object_mut().expect("config").remove("pass_env");
    config["environment"] = environment;
    std::fs::write(dir.path().join("manifest.json"), graph.to_string()).expect("write manifest");
    dir
}

#[tokio::test]
async fn llm_step_without_an_endpoint_fails_saying_how_to_configure_it() {
    bounded(async {
        // No pass_env: the step sees neither variable, whatever this process has set.
        let dir = llm_step_with(json!({}));
        let run = run_bundle(dir.path()).await;
        assert_eq!(run.view.status, Some(JobStatus::Failed));
        let result = run.view.result.expect("a failed job has a result");
        assert_eq!(result["agent_id"], "llm");
        let error = &result["error"];
        assert_eq!(error["attempts"], 1, "a missing setting is not retried");
        assert_eq!(error["transient"], false);
        assert_eq!(
            result["reason"],
            "command exited with status 2: llm_step is not configured: MN_EXAMPLE_LLM_BASE_URL \
             and MN_EXAMPLE_LLM_MODEL not set (see examples/llm_step/README.md)"
        );
        let stderr = error["stderr"].as_str().expect("stderr");
        assert!(stderr.contains("http://127.0.0.1:11434/v1"), "{stderr}");
        assert!(stderr.contains("llama-server"), "{stderr}");
    })
    .await;
}

/// A stand-in for an OpenAI-compatible server, good for `n` requests: it records each request
/// (head and JSON body) and answers from `reply(user_text)` with the reply as the assistant's
/// content. Not a model: it lets the test check what the step sends and how it reads replies.
fn stand_in_server(
    n: usize,
    reply: fn(&str) -> String,
) -> (String, std::thread::JoinHandle<Vec<(String, Value)>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for stream in listener.incoming().take(n) {
            let mut stream = stream.expect("connection");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header line");
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().expect("length");
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            let request: Value = serde_json::from_slice(&body).expect("JSON request");
            let text = request["messages"][1]["content"].as_str().unwrap_or("");
            let answer = json!({
                "model": request["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply(text)}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            })
            .to_string();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer}",
                answer.len()
            )
            .expect("reply");
            seen.push((head, request));
        }
        seen
    });
    (url, handle)
}

#[tokio::test]
async fn llm_step_sends_chat_requests_and_reads_the_replies() {
    bounded(async {
        // Keyword rules stand in for the model; one reply is not JSON, as small models do.
        fn reply(text: &str) -> String {
            let category = if text.contains("charged twice") {
                "billing"
            } else if text.contains("password") {
                "security"
            } else if text.contains("week numbers") {
                return "Sure! This one is a feature request.".into();
            } else {
                "bug report"
            };
            json!({"category": category, "summary": text.split(". ").next()}).to_string()
        }
        let (url, server) = stand_in_server(4, reply);
        let dir = llm_step_with(json!({
            "MN_EXAMPLE_LLM_BASE_URL": url,
            "MN_EXAMPLE_LLM_MODEL": "stand-in",
            "OPENAI_API_KEY": "test-key",
        }));
        let run = run_bundle(dir.path()).await;
        let output = run.completed_output("collect");
        let requests = server.join().expect("server thread");

        let inputs = manifest(&example("llm_step"))["initial_inputs"]["inbox"].clone();
        let inputs = inputs.as_array().expect("inputs");
        assert_eq!(requests.len(), inputs.len());
        for (head, request) in &requests {
            assert!(head.starts_with("POST /v1/chat/completions "), "{head}");
            assert!(head.contains("Authorization: Bearer test-key"), "{head}");
            assert_eq!(request["model"], "stand-in");
            assert_eq!(request["temperature"], 0);
            assert_eq!(request["messages"][0]["role"], "system");
            let text = &request["messages"][1]["content"];
            assert!(inputs.iter().any(|i| &i["text"] == text), "{text}");
        }
        // Results in message order, as the stand-in answered them.
        assert_eq!(output["count"], 4);
        let results = output["messages"].as_array().expect("results");
        let got: Vec<(&str, Value, bool)> = results
            .iter()
            .map(|r| {
                assert_eq!(r["model"], "stand-in");
                (r["id"].as_str().expect("id"), r["category"].clone(), r["valid"] == true)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("msg-1", json!("bug report"), true),
                ("msg-2", json!("billing"), true),
                ("msg-3", Value::Null, false),
                ("msg-4", json!("security"), true),
            ]
        );
        assert_eq!(results[2]["raw"], "Sure! This one is a feature request.");
        assert_eq!(
            results[1]["summary"],
            "We were charged twice for the December subscription, once on the 1st and again on the 3rd"
        );
    })
    .await;
}

/// Runs the real bundle against the endpoint in `MN_EXAMPLE_LLM_BASE_URL` (and
/// `MN_EXAMPLE_LLM_MODEL`); skipped, saying so, when none is configured.
#[tokio::test]
async fn llm_step_against_the_configured_endpoint() {
    if std::env::var_os("MN_EXAMPLE_LLM_BASE_URL").is_none() {
        eprintln!(
            "skipped: set MN_EXAMPLE_LLM_BASE_URL and MN_EXAMPLE_LLM_MODEL (see \
             examples/llm_step/README.md) to run llm_step against a model"
        );
        return;
    }
    bounded(async {
        let run = run_bundle(&example("llm_step")).await;
        let output = run.completed_output("collect");
        eprintln!("llm_step replies: {output}");
        let results = output["messages"].as_array().expect("results");
        let ids: Vec<&str> = results
            .iter()
            .map(|r| r["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, ["msg-1", "msg-2", "msg-3", "msg-4"]);
        for r in results {
            // Either a parsed reply or the raw text: never nothing.
            assert!(r["summary"].is_string() || r["raw"].is_string(), "{r}");
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Runtime bugs exposed while writing the examples (see the branch report).

/// The job-level `status_reason` names the owner's step attempt (1), not the executor's
/// attempts (3) that `error.attempts` reports.
#[tokio::test]
async fn exhausted_retries_status_reason_counts_executor_attempts() {
    bounded(async {
        let result = run_flaky_exhausted().await;
        assert_eq!(result["error"]["attempts"], 3);
        let reason = result["status_reason"].as_str().unwrap_or("");
        assert!(
            reason.starts_with("agent fetch_quote failed after 3 attempt(s); "),
            "{reason}"
        );
    })
    .await;
}

/// An aggregator counting results from ONE executor agent that handled several messages: each
/// result body carries the same `agent_id`, so the aggregator's dedupe drops all but the first
/// and `complete_after: 3` is never reached; the job hangs until the timeout.
#[tokio::test]
async fn aggregator_counts_every_result_of_one_executor() {
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("payloads")).expect("payloads");
        let bundle = json!({
            "manifest_version": "1.0",
            "graph_id": "agg_dedupe_bug",
            "job_name": "agg-dedupe-bug",
            "entrypoints": ["fanout"],
            "initial_inputs": {"fanout": [{"n": 1}, {"n": 2}, {"n": 3}]},
            "nodes": [
                {"node_id": "fanout", "agent_type": "router", "config": {"emit_type": "work"}},
                {"node_id": "worker", "agent_type": "executor", "config": {"command": ["true"]}},
                {"node_id": "collect", "agent_type": "aggregator", "config": {"complete_after": 3}}
            ],
            "edges": [
                {"edge_id": "a", "from_node": "fanout", "to_node": "worker", "message_type": "work"},
                {"edge_id": "b", "from_node": "worker", "to_node": "collect", "message_type": "executor_result"}
            ]
        });
        std::fs::write(dir.path().join("manifest.json"), bundle.to_string()).expect("write");
        let loaded = load_bundle(dir.path()).expect("valid");
        let store = common::store().await;
        let job_id = submit(&store, &loaded).await.expect("submit");
        let report = run_job(&store, &job_id, "test-node", Some(Duration::from_secs(20)), |_| {})
            .await
            .expect("run");
        assert!(!report.timed_out, "never completed: 2 of 3 results were dropped as duplicates");
        let view = report.view.expect("view");
        assert_eq!(view.status, Some(JobStatus::Completed));
        assert_eq!(view.result.expect("result")["output"]["count"], 3);
    })
    .await;
}

/// A redis-server with AOF on, in `dir` on `port`, killed on drop.
struct AofRedis(std::process::Child);

impl AofRedis {
    fn start(dir: &Path, port: u16) -> AofRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes"])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        AofRedis(child)
    }
}

impl AofRedis {
    /// An AOF redis-server on a free port: the server, its port and its URL.
    fn on_free_port(dir: &Path) -> (AofRedis, u16, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        (
            AofRedis::start(dir, port),
            port,
            format!("redis://127.0.0.1:{port}/0"),
        )
    }
}

impl Drop for AofRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// After an AOF rewrite, Redis restores a consumer group's `entries-read` from the rewrite and
/// does not advance it while replaying the later deliveries, so `XINFO GROUPS` reports a `lag`
/// for entries that were all delivered and acknowledged. `Store::feed_backlog` adds that lag,
/// so `wait_projections_caught_up` (and every CLI `job` command, and the end of `run_job`)
/// times out on such a store, forever.
#[tokio::test]
async fn projection_backlog_is_zero_after_redis_restart() {
    if common::skip_on_cluster("restarts a plain redis-server of its own") {
        return;
    }
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let (redis, port, url) = AofRedis::on_free_port(dir.path());
        let namespace = common::namespace();
        let store = Store::connect(&url, &namespace).await.expect("connect");
        store.migrate(0).await.expect("migrate");
        run_bundle_on(&store, &example("research_flow")).await;
        let mut conn = store.conn();
        let _: () = redis::cmd("BGREWRITEAOF")
            .query_async(&mut conn)
            .await
            .expect("rewrite");
        loop {
            let info: String = redis::cmd("INFO")
                .arg("persistence")
                .query_async(&mut conn)
                .await
                .expect("info");
            if info.contains("aof_rewrite_in_progress:0")
                && !info.contains("aof_rewrite_scheduled:1")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        run_bundle_on(&store, &example("research_flow")).await;
        assert_eq!(
            store.feed_backlog(PROJECTION_GROUP).await.expect("backlog"),
            0
        );
        drop(conn);
        drop(store);
        drop(redis);

        let _redis = AofRedis::start(dir.path(), port);
        let store = Store::connect(&url, &namespace).await.expect("reconnect");
        assert_eq!(
            store.feed_backlog(PROJECTION_GROUP).await.expect("backlog"),
            0,
            "every feed entry was delivered and acknowledged before the restart"
        );
    })
    .await;
}

/// `flaky_retry` failing `fail_times` times, with a quick restart policy of `restarts`.
fn flaky_with_restarts(fail_times: u32, restarts: u32) -> tempfile::TempDir {
    flaky_variant(
        fail_times,
        json!({"attempts": restarts, "delay_ms": 100, "delay_function": "constant"}),
    )
}

/// The restart events of a job: (attempt, delay).
async fn restarts_of(store: &Store, job_id: &str) -> Vec<(u32, u64)> {
    store
        .history(job_id, 1, None)
        .await
        .expect("history")
        .into_iter()
        .filter_map(|h| match h.event.ok()?.payload {
            JobEvent::AgentRestartScheduled {
                attempt, delay_ms, ..
            } => Some((attempt, delay_ms)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_failing_agent_is_restarted_by_its_policy_and_then_succeeds() {
    bounded(async {
        // Three in-step attempts fail, the restart's first attempt succeeds.
        let dir = flaky_with_restarts(4, 2);
        let store = common::store().await;
        let run = run_bundle_on(&store, dir.path()).await;
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("mn-flaky-{}", run.job_id)));
        assert_eq!(run.view.status, Some(JobStatus::Completed));
        assert_eq!(restarts_of(&store, &run.job_id).await, vec![(1, 100)]);
    })
    .await;
}

#[tokio::test]
async fn an_agent_that_keeps_failing_exhausts_its_restarts_and_fails_the_job() {
    bounded(async {
        let dir = flaky_with_restarts(100, 2);
        let store = common::store().await;
        let run = run_bundle_on(&store, dir.path()).await;
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("mn-flaky-{}", run.job_id)));
        assert_eq!(run.view.status, Some(JobStatus::Failed));
        assert_eq!(
            restarts_of(&store, &run.job_id).await,
            vec![(1, 100), (2, 100)]
        );
        let result = run.view.result.expect("the error envelope");
        assert_eq!(result["agent_id"], "fetch_quote");
        assert_eq!(result["error"]["exit_code"], 1);
        assert!(
            result["status_reason"]
                .as_str()
                .unwrap_or("")
                .contains("restart attempts exhausted"),
            "{result}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// a batch job whose only message is dead-lettered

#[tokio::test]
async fn a_batch_job_left_with_only_dead_letters_fails_naming_them() {
    bounded(async {
        // research_flow without `emit_type`: ingress passes `init` on, no edge takes it.
        let dir = tempfile::tempdir().expect("temp dir");
        let mut m = manifest(&example("research_flow"));
        m["nodes"][0]["config"] = json!({});
        std::fs::create_dir_all(dir.path().join("payloads")).expect("payloads");
        std::fs::write(dir.path().join("manifest.json"), m.to_string()).expect("manifest");
        let started = std::time::Instant::now();
        let run = run_bundle(dir.path()).await;
        assert_eq!(run.view.status, Some(JobStatus::Failed), "{:?}", run.view);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "it ended at once, not after a timeout"
        );
        assert_eq!(run.view.dead_letters, 1);
        let result = run.view.result.as_ref().expect("a failed job has a result");
        assert_eq!(result["kind"], "dead_letters");
        let reason = result["reason"].as_str().expect("a reason");
        assert!(
            reason.contains("dead-lettered") && reason.contains("from ingress"),
            "{reason}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Redis away for a moment while a job runs

/// Stops an AOF redis-server cleanly (`SHUTDOWN` writes the AOF out), so nothing acknowledged
/// is lost across the restart.
fn shutdown(redis: AofRedis, port: u16) {
    let _ = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "shutdown"])
        .output();
    let mut child = redis;
    let _ = child.0.wait();
}

/// A bundle whose one step sleeps `secs` (long enough for an outage to fall inside it).
fn outage_bundle(dir: &Path, secs: u32) -> PathBuf {
    let bundle_dir = dir.join("bundle");
    std::fs::create_dir_all(bundle_dir.join("payloads")).expect("payloads");
    let manifest = json!({
        "manifest_version": "1.0", "graph_id": "outage", "entrypoints": ["work"],
        "nodes": [
            {"node_id": "work", "agent_type": "executor", "config": {
                "command": ["sh", "-c", format!("sleep {secs}; echo done")], "output_message_type": "done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_on_message": true}}
        ],
        "edges": [{"from_node": "work", "to_node": "sink", "message_type": "done"}]
    });
    std::fs::write(bundle_dir.join("manifest.json"), manifest.to_string()).expect("manifest");
    bundle_dir
}

#[tokio::test]
async fn a_local_run_rides_out_a_brief_redis_restart() {
    if common::skip_on_cluster("restarts a plain redis-server of its own") {
        return;
    }
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let (redis, port, url) = AofRedis::on_free_port(dir.path());
        let store = Store::connect(&url, &common::namespace())
            .await
            .expect("connect");
        store.migrate(0).await.expect("migrate");
        let bundle_dir = outage_bundle(dir.path(), 2);
        let bundle = load_bundle(&bundle_dir).expect("bundle");
        let job_id = submit(&store, &bundle).await.expect("submit");
        let running = {
            let (store, job_id) = (store.clone(), job_id.clone());
            tokio::spawn(async move {
                run_job(&store, &job_id, "test-node", Some(RUN_LIMIT), |_| {}).await
            })
        };
        // While the step sleeps, Redis goes away for a moment and comes back with its data.
        tokio::time::sleep(Duration::from_millis(800)).await;
        shutdown(redis, port);
        tokio::time::sleep(Duration::from_secs(4)).await;
        let _redis = AofRedis::start(dir.path(), port);
        let report = running
            .await
            .expect("the run task")
            .expect("the run rides out the restart");
        assert!(!report.timed_out);
        let view = report.view.expect("a view");
        assert_eq!(view.status, Some(JobStatus::Completed), "{view:?}");
        assert_eq!(view.result.expect("result")["agent_id"], "sink");
    })
    .await;
}

/// The same outage seen from `run --wait --target`: the server's stream breaks while Redis is
/// down, the CLI reconnects and skips what it already showed, and exits 0 with the result.
#[tokio::test]
async fn a_remote_run_wait_rides_out_a_brief_redis_restart() {
    if common::skip_on_cluster("restarts a plain redis-server of its own") {
        return;
    }
    bounded(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let (redis, port, url) = AofRedis::on_free_port(dir.path());
        let ns = common::namespace();
        let bundle_dir = outage_bundle(dir.path(), 3);
        let log = dir.path().join("serve.log");
        let out = std::fs::File::create(&log).expect("log");
        let mut serve = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
            .arg("serve")
            .env("MN_GRPC_PORT", "0")
            .env("MN_METRICS_PORT", "0")
            .env("MN_REDIS_URL", &url)
            .env("MN_REDIS_NAMESPACE", &ns)
            .env("MN_NODE_NAME", "steady")
            .env("MN_HOME", dir.path().join("home"))
            .env("MN_TEMP_DIR", dir.path().join("runs"))
            .env("MN_LOG_LEVEL", "info")
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("serve");
        let target = common::wait_grpc_target(|| std::fs::read_to_string(&log).unwrap_or_default());
        let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
            .args(["run", "--wait", "--json", "--target", &target])
            .arg(&bundle_dir)
            .output();
        let outage = async {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            shutdown(redis, port);
            tokio::time::sleep(Duration::from_secs(4)).await;
            AofRedis::start(dir.path(), port)
        };
        let (out, _redis) = tokio::join!(run, outage);
        let out = out.expect("run");
        let _ = serve.kill();
        let _ = serve.wait();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "run --wait exits 0: {stderr}");
        let view: Value = serde_json::from_slice(&out.stdout).expect("json view");
        assert_eq!(view["status"], "completed", "{view}");
    })
    .await;
}
