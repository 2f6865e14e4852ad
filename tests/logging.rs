//! JSON logs (`MN_LOG_FORMAT=json`) carry the job id on every line logged while a job runs:
//! the owner loop runs in a `job` span with `job_id`, and each agent step in an `agent_step`
//! span (with `agent_id`) inside it, so one `grep job_id` finds a job's whole story.

mod common;

use std::process::Command;

use serde_json::Value;

#[test]
fn json_logs_of_a_job_carry_its_id() {
    let out = Command::new(env!("CARGO_BIN_EXE_mirror-neuron"))
        .args(["run", "examples/flaky_retry", "--json"])
        .env("MN_REDIS_URL", &common::redis().url)
        .env("MN_REDIS_NAMESPACE", common::namespace())
        .env("MN_LOG_FORMAT", "json")
        .env("MN_LOG_LEVEL", "info")
        .env_remove("MN_GRPC_TARGET")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run mirror-neuron");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: Value = serde_json::from_slice(&out.stdout).expect("job JSON");
    let job_id = job["job_id"].as_str().expect("job id");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // The executor's two transient failures are logged inside the step of `fetch_quote`.
    let retries: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("transient executor failure"))
        })
        .collect();
    assert_eq!(retries.len(), 2, "{stderr}");
    for line in &retries {
        assert_eq!(line["span"]["name"], "agent_step", "{line}");
        assert_eq!(line["span"]["agent_id"], "fetch_quote", "{line}");
    }
    // Every line logged inside any span of the run names the job in its `job` span.
    let in_spans: Vec<&Value> = lines.iter().filter(|l| l["spans"].is_array()).collect();
    assert!(in_spans.len() >= 2);
    for line in in_spans {
        let job_span = line["spans"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "job"))
            .unwrap_or_else(|| panic!("no job span in {line}"));
        assert_eq!(job_span["job_id"], job_id, "{line}");
    }
}
