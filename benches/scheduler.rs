//! Scheduler benchmark: placements per second of the pure planner, single thread.
//!
//! `cargo bench --bench scheduler` places 10,000 tasks onto 1,000 simulated nodes (a quarter
//! with GPUs, some cordoned or draining, attributes for constraints), twice:
//! - as 100 jobs of 100 tasks, each plan seeing every earlier allocation as existing usage
//!   (the shape of Nomad's C1M run: many jobs onto one cluster);
//! - as one job of 10,000 tasks.
//!
//! It prints placements/s and the ratio against Nomad's published C1M figure of about 3,750
//! placements/s (1,000,000 containers in under 300 s on 5,000 hosts). The comparison is loose:
//! Nomad's number includes Raft, RPC and many workers; this is the placement core alone.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mirror_neuron::domain::manifest::JobType;
use mirror_neuron::domain::scheduler::{
    Allocation, Constraint, Demand, Device, DeviceRequest, JobRequest, NodeCandidate, NodeStatus,
    Operator, Strategy, TaskRequest, plan,
};

const NOMAD_C1M_PLACEMENTS_PER_S: f64 = 3_750.0;
const NODES: usize = 1_000;

/// A tiny deterministic generator, so every run places the same cluster.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn cluster(rng: &mut Lcg) -> Vec<NodeCandidate> {
    (0..NODES)
        .map(|i| {
            let cores = [8, 16, 32, 64][rng.next(4) as usize];
            let mut n =
                NodeCandidate::new(format!("node-{i:04}"), cores * 1000, cores * 4096, 500_000);
            n.status = match rng.next(50) {
                0 => NodeStatus::Draining,
                1 => NodeStatus::Offline,
                _ => NodeStatus::Healthy,
            };
            n.eligible = rng.next(40) != 0;
            let os = if rng.next(10) == 0 {
                "windows"
            } else {
                "linux"
            };
            n.attributes.insert("os".into(), os.into());
            n.attributes
                .insert("rack".into(), format!("r{}", rng.next(10)));
            n.attributes.insert(
                "arch".into(),
                if rng.next(5) == 0 { "arm64" } else { "x86_64" }.into(),
            );
            n.capabilities = vec!["docker".into()];
            if i % 4 == 0 {
                let mem = [16_000, 24_000, 40_000, 80_000][rng.next(4) as usize];
                n.devices = (0..2 + rng.next(7))
                    .map(|g| Device {
                        id: format!("node-{i:04}-gpu-{g}"),
                        kind: "gpu".into(),
                        vendor: Some("nvidia".into()),
                        model: Some("bench".into()),
                        memory_mb: mem,
                        driver: Some("cuda".into()),
                        capabilities: vec!["cuda".into()],
                    })
                    .collect();
            }
            n
        })
        .collect()
}

/// Job `j` of the mix: mostly CPU batch jobs under constraints, some spread services, some GPU jobs.
fn job(j: usize, tasks: usize, rng: &mut Lcg) -> JobRequest {
    let kind = j % 10;
    let linux = Constraint::new("os", Operator::Equal, "linux");
    let (strategy, job_type, constraints) = match kind {
        0..=6 => (
            Strategy::Binpack,
            JobType::Batch,
            vec![linux, Constraint::new("rack", Operator::NotIn, "r9")],
        ),
        7 | 8 => (
            Strategy::Spread,
            JobType::Service,
            vec![linux, Constraint::new("arch", Operator::Equal, "x86_64")],
        ),
        _ => (Strategy::Binpack, JobType::Batch, vec![linux]),
    };
    let tasks = (0..tasks)
        .map(|t| {
            let mut demand = Demand {
                cpu_millis: 250 * (1 + rng.next(8)),
                memory_mb: 256 * (1 + rng.next(8)),
                disk_mb: 100,
                ..Demand::default()
            };
            if kind == 9 && t % 2 == 0 {
                let mut gpu = DeviceRequest::gpus(1);
                gpu.min_memory_mb = 16_000;
                gpu.capabilities = vec!["cuda".into()];
                demand.devices.push(gpu);
                demand.gpus = 1;
            }
            TaskRequest {
                agent_id: format!("job{j}-task{t}"),
                demand,
                constraints: vec![Constraint::new(
                    "capabilities",
                    Operator::Contains,
                    "docker",
                )],
                execution_profile: None,
                preferred_nodes: Vec::new(),
                requires_services: Vec::new(),
            }
        })
        .collect();
    JobRequest {
        job_id: format!("job{j}"),
        job_type,
        strategy,
        preferred_nodes: Vec::new(),
        constraints,
        tasks,
    }
}

/// Plans `jobs` one after another, each seeing the earlier allocations; returns (placed, time).
fn run(nodes: &[NodeCandidate], jobs: &[JobRequest]) -> (usize, Duration) {
    let mut existing: Vec<Allocation> = Vec::new();
    let start = Instant::now();
    for job in jobs {
        let p = plan(nodes, &existing, job)
            .unwrap_or_else(|e| panic!("bench job {} must fit: {e}", job.job_id));
        existing.extend(p.allocations);
    }
    let took = start.elapsed();
    black_box(&existing);
    (existing.len(), took)
}

fn report(label: &str, placed: usize, took: Duration) {
    let rate = placed as f64 / took.as_secs_f64();
    println!(
        "  {label:<28} {placed:>6} placements in {:>7.1} ms  {rate:>10.0} placements/s  ratio vs Nomad C1M {:.1}x",
        took.as_secs_f64() * 1000.0,
        rate / NOMAD_C1M_PLACEMENTS_PER_S
    );
}

fn main() {
    let mut rng = Lcg(42);
    let nodes = cluster(&mut rng);
    let many: Vec<JobRequest> = (0..100).map(|j| job(j, 100, &mut rng)).collect();
    let one = vec![job(0, 10_000, &mut rng)];
    // Warm-up pass (allocator, caches), then the measured one.
    run(&nodes, &many[..10]);
    let (placed_many, took_many) = run(&nodes, &many);
    let (placed_one, took_one) = run(&nodes, &one);
    println!("scheduler benchmark ({NODES} nodes, single thread, constraints + GPU devices)");
    report("100 jobs x 100 tasks", placed_many, took_many);
    report("1 job x 10,000 tasks", placed_one, took_one);
    println!("  Nomad C1M reference: {NOMAD_C1M_PLACEMENTS_PER_S:.0} placements/s");
}
