//! Fenced appends as the event-store and Redis Cluster benchmarks measure them.

use std::time::{Duration, Instant};

use mirror_neuron::domain::event::{EventEnvelope, JobEvent, JobSubmitted};
use mirror_neuron::store::{Store, seal};
use serde_json::json;

/// A typical small agent event.
pub fn payload(i: u64) -> JobEvent {
    JobEvent::AgentEventRecorded {
        agent_id: "worker_0001".into(),
        name: "aggregator_received".into(),
        payload: json!({"count": i, "note": "a typical small agent event of about two hundred bytes"}),
    }
}

/// The first event of a job.
pub fn submitted() -> JobEvent {
    JobEvent::JobSubmitted(JobSubmitted {
        graph_id: "bench".into(),
        job_name: "bench".into(),
        manifest: json!({"nodes": []}),
        bundle_path: None,
        bundle_digest: None,
        deployment: None,
        submitted_at_ms: 0,
    })
}

pub fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Creates job `job` (its first event).
pub async fn create(store: &Store, job: &str) {
    store
        .append(
            job,
            0,
            0,
            &seal(job, 0, 0, 0, None, None, vec![submitted()]),
        )
        .await
        .unwrap();
}

/// `jobs` concurrent writers each append `per_job` events in batches of `batch`.
pub async fn fenced(store: &Store, prefix: &str, jobs: u64, per_job: u64, batch: u64) -> f64 {
    for j in 0..jobs {
        create(store, &format!("{prefix}-{j}")).await;
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for j in 0..jobs {
        let store = store.clone();
        let job = format!("{prefix}-{j}");
        tasks.push(tokio::spawn(async move {
            let mut version = 1;
            while version <= per_job {
                let events: Vec<EventEnvelope> = seal(
                    &job,
                    version,
                    0,
                    0,
                    None,
                    None,
                    (0..batch).map(payload).collect(),
                );
                store.append(&job, version, 0, &events).await.unwrap();
                version += batch;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    rate(jobs * per_job, start.elapsed())
}
