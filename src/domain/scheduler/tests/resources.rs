//! Demand normalisation: every accepted spelling and unit, and errors naming the field.

use serde_json::{Value, json};

use crate::domain::scheduler::{Demand, MemoryOperator};

fn demand(v: Value) -> Demand {
    Demand::parse(&v, "nodes[0].resources").expect("valid resources")
}

#[test]
fn scalar_spellings_and_units() {
    // (resources, cpu_millis, memory_mb, disk_mb, gpus)
    let cases: &[(Value, u64, u64, u64, u32)] = &[
        (json!({}), 0, 0, 0, 0),
        (json!({"cpu_cores": 2}), 2000, 0, 0, 0),
        (json!({"cores": 0.5}), 500, 0, 0, 0),
        (json!({"cpu": 4}), 4000, 0, 0, 0),
        (json!({"cpu": 500}), 500, 0, 0, 0),
        (json!({"cpu": "250m"}), 250, 0, 0, 0),
        (json!({"cpu_millis": 1500}), 1500, 0, 0, 0),
        (json!({"cpu_mcores": 32}), 32, 0, 0, 0),
        (json!({"cores": "2"}), 2000, 0, 0, 0),
        (json!({"memory_mb": 512}), 0, 512, 0, 0),
        (json!({"memory": "512Mi"}), 0, 512, 0, 0),
        (json!({"memory": "2Gi"}), 0, 2048, 0, 0),
        (json!({"memory": "1G"}), 0, 1024, 0, 0),
        (json!({"memory": "1.5GB"}), 0, 1536, 0, 0),
        (json!({"memory": "512"}), 0, 512, 0, 0),
        (json!({"memory": "2048Ki"}), 0, 2, 0, 0),
        (json!({"memory_gb": 1.5}), 0, 1536, 0, 0),
        (json!({"memory_mb": 100, "memory_gb": 9}), 0, 100, 0, 0),
        (json!({"disk_mb": 10}), 0, 0, 10, 0),
        (json!({"disk": "1Ti"}), 0, 0, 1_048_576, 0),
        (json!({"disk_gb": 2}), 0, 0, 2048, 0),
        (json!({"gpu_count": 2}), 0, 0, 0, 2),
        (json!({"gpus": "1"}), 0, 0, 0, 1),
        (json!({"gpu": true}), 0, 0, 0, 1),
    ];
    for (v, cpu, mem, disk, gpus) in cases {
        let d = demand(v.clone());
        assert_eq!(
            (d.cpu_millis, d.memory_mb, d.disk_mb, d.gpus),
            (*cpu, *mem, *disk, *gpus),
            "case {v}"
        );
    }
}

#[test]
fn errors_name_the_field() {
    let cases: &[(Value, &str)] = &[
        (json!([]), "nodes[0].resources: resources must be an object"),
        (
            json!({"cpu": "lots"}),
            "nodes[0].resources.cpu: must be a number, got \"lots\"",
        ),
        (
            json!({"cores": -1}),
            "nodes[0].resources.cores: must be zero or greater",
        ),
        (
            json!({"cpu": "2x"}),
            "nodes[0].resources.cpu: unknown cpu unit \"x\"; use cores or \"500m\"",
        ),
        (
            json!({"memory": "3 parsecs"}),
            "nodes[0].resources.memory: unknown size unit \"parsecs\"; use Mi, Gi, M, G",
        ),
        (
            json!({"disk_gb": -2}),
            "nodes[0].resources.disk_gb: must be zero or greater",
        ),
        (
            json!({"gpus": 1.5}),
            "nodes[0].resources.gpus: must be a non-negative integer, got 1.5",
        ),
        (
            json!({"devices": {}}),
            "nodes[0].resources.devices: devices must be a list",
        ),
        (
            json!({"devices": [7]}),
            "nodes[0].resources.devices[0]: must be an object",
        ),
        (
            json!({"devices": [{"type": "gpu", "count": 0}]}),
            "nodes[0].resources.devices[0].count: count must be greater than zero",
        ),
        (
            json!({"devices": [{"memory_operator": "<"}]}),
            "nodes[0].resources.devices[0].memory_operator: memory_operator must be >, >=, or ==",
        ),
        (
            json!({"devices": [{"capabilities": 3}]}),
            "nodes[0].resources.devices[0].capabilities: must be a list",
        ),
        (
            json!({"ports": [{"label": "http", "port": 0}]}),
            "nodes[0].resources.ports[0].port: port must be between 1 and 65535",
        ),
        (
            json!({"ports": [{"port": 80}]}),
            "nodes[0].resources.ports[0].label: label is required",
        ),
        (
            json!({"volumes": [{"name": "d", "source": "rel", "target": "/d"}]}),
            "nodes[0].resources.volumes[0].source: source must be an absolute host path",
        ),
        (
            json!({"runtime_driver": 5}),
            "nodes[0].resources.runtime_driver: must be a string",
        ),
    ];
    for (v, want) in cases {
        let err = Demand::parse(v, "nodes[0].resources").expect_err("invalid resources");
        assert_eq!(err.to_string(), *want, "case {v}");
    }
}

#[test]
fn devices_ports_volumes_and_driver() {
    let d = demand(json!({
        "devices": [{"type": "NVIDIA/GPU", "count": 2, "min_memory_mb": 16000, "memory_operator": "=",
                     "capabilities": ["CUDA"], "ids": ["gpu-1", "gpu-2"]}],
        "ports": [{"label": "http", "port": 8080}, {"label": "dns", "port": 53, "protocol": "UDP"}],
        "volumes": [{"name": "data", "source": "/srv/data", "target": "/data", "mode": "rw"}],
        "runtime_driver": "Docker_Worker"
    }));
    let r = &d.devices[0];
    assert_eq!(
        (r.kind.as_str(), r.device_type.as_deref(), r.count),
        ("gpu", Some("nvidia/gpu"), 2)
    );
    assert_eq!(
        (r.min_memory_mb, r.memory_operator),
        (16000, MemoryOperator::Equal)
    );
    assert_eq!(
        (r.capabilities.clone(), r.ids.clone()),
        (
            vec!["cuda".to_string()],
            vec!["gpu-1".to_string(), "gpu-2".to_string()]
        )
    );
    assert_eq!(d.gpus, 2, "GPU devices count towards the GPU demand");
    assert_eq!(d.ports[1].protocol, "udp");
    assert_eq!(d.ports[0].protocol, "tcp", "tcp by default");
    assert!(!d.volumes[0].read_only);
    assert_eq!(d.runtime_driver.as_deref(), Some("docker_worker"));
}

#[test]
fn gpu_count_without_devices_gets_a_generic_request() {
    let d = demand(json!({"gpus": 2}));
    assert_eq!(d.devices.len(), 1);
    assert_eq!((d.devices[0].kind.as_str(), d.devices[0].count), ("gpu", 2));
}

#[test]
fn gpu_count_above_described_devices_adds_the_difference() {
    let d = demand(json!({"gpus": 3, "devices": [{"type": "gpu", "min_memory_mb": 8000}]}));
    assert_eq!(d.gpus, 3);
    let counts: Vec<u32> = d.devices.iter().map(|r| r.count).collect();
    assert_eq!(counts, vec![1, 2]);
}

#[test]
fn device_kind_is_derived_from_type() {
    let d = demand(
        json!({"devices": [{"type": "xilinx-fpga"}, {"type": "edge-tpu"}, {"type": "sensor"}]}),
    );
    let kinds: Vec<&str> = d.devices.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, vec!["fpga", "tpu", "device"]);
    assert_eq!(d.gpus, 0);
}
