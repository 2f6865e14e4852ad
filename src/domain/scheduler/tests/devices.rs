//! Device matching and allocation: which requests a device serves, and that allocation picks
//! the smallest adequate free devices.

use serde_json::{Value, json};

use super::gpu;
use crate::domain::scheduler::devices::allocate;
use crate::domain::scheduler::{Demand, Device, DeviceRequest};

fn request(v: Value) -> DeviceRequest {
    let d = Demand::parse(&json!({"devices": [v]}), "r").expect("valid device request");
    d.devices[0].clone()
}

fn fpga() -> Device {
    Device {
        id: "fpga-0".into(),
        kind: "fpga".into(),
        vendor: Some("xilinx".into()),
        model: Some("Alveo U250".into()),
        memory_mb: 64_000,
        driver: None,
        capabilities: vec!["gpu-compat".into()],
    }
}

#[test]
fn matching_table() {
    let a100 = gpu("gpu-0", 40_000, &["cuda", "fp16"]);
    let cases: &[(&str, Value, &Device, bool)] = &[
        ("bare gpu", json!({"type": "gpu"}), &a100, true),
        ("kind only", json!({"kind": "gpu"}), &a100, true),
        ("vendor prefix", json!({"type": "nvidia/gpu"}), &a100, true),
        (
            "wrong vendor prefix",
            json!({"type": "amd/gpu"}),
            &a100,
            false,
        ),
        (
            "vendor field",
            json!({"type": "gpu", "vendor": "NVIDIA"}),
            &a100,
            true,
        ),
        (
            "model substring",
            json!({"type": "gpu", "model": "a100"}),
            &a100,
            true,
        ),
        (
            "model by type",
            json!({"kind": "gpu", "type": "a100"}),
            &a100,
            true,
        ),
        (
            "model mismatch",
            json!({"type": "gpu", "model": "h100"}),
            &a100,
            false,
        ),
        (
            "driver",
            json!({"type": "gpu", "driver": "rocm"}),
            &a100,
            false,
        ),
        (
            "capabilities all present",
            json!({"type": "gpu", "capabilities": ["cuda", "fp16"]}),
            &a100,
            true,
        ),
        (
            "capability missing",
            json!({"type": "gpu", "capabilities": ["cuda", "bf16"]}),
            &a100,
            false,
        ),
        (
            "memory >= holds",
            json!({"type": "gpu", "min_memory_mb": 40_000}),
            &a100,
            true,
        ),
        (
            "memory > fails at equal",
            json!({"type": "gpu", "min_memory_mb": 40_000, "memory_operator": ">"}),
            &a100,
            false,
        ),
        (
            "memory == holds",
            json!({"type": "gpu", "min_memory_mb": 40_000, "memory_operator": "=="}),
            &a100,
            true,
        ),
        (
            "memory too small",
            json!({"type": "gpu", "min_memory_mb": 80_000}),
            &a100,
            false,
        ),
        (
            "ids allow",
            json!({"type": "gpu", "ids": ["gpu-0"]}),
            &a100,
            true,
        ),
        (
            "ids exclude",
            json!({"type": "gpu", "ids": ["gpu-9"]}),
            &a100,
            false,
        ),
        ("fpga is not a gpu", json!({"type": "gpu"}), &fpga(), false),
        (
            "kind via device capability",
            json!({"kind": "gpu-compat"}),
            &fpga(),
            true,
        ),
        ("fpga by kind", json!({"type": "fpga"}), &fpga(), true),
    ];
    for (name, req, device, want) in cases {
        assert_eq!(request(req.clone()).matches(device), *want, "case {name}");
    }
}

#[test]
fn pick_prefers_the_smallest_adequate_device() {
    let devices = vec![
        gpu("big", 80_000, &[]),
        gpu("small", 16_000, &[]),
        gpu("mid", 24_000, &[]),
    ];
    let req = request(json!({"type": "gpu", "min_memory_mb": 20_000}));
    assert_eq!(req.pick(&devices, &[false, false, false]), Some(vec![2]));
    assert_eq!(
        req.pick(&devices, &[false, false, true]),
        Some(vec![0]),
        "taken devices are skipped"
    );
    assert_eq!(req.pick(&devices, &[true, false, true]), None);
}

#[test]
fn ties_on_memory_break_by_id() {
    let devices = vec![gpu("gpu-1", 16_000, &[]), gpu("gpu-0", 16_000, &[])];
    let req = request(json!({"type": "gpu", "count": 2}));
    assert_eq!(req.pick(&devices, &[false, false]), Some(vec![1, 0]));
}

#[test]
fn allocation_never_hands_one_device_to_two_requests() {
    let devices = vec![gpu("gpu-0", 16_000, &[]), gpu("gpu-1", 16_000, &[])];
    let two = [
        request(json!({"type": "gpu"})),
        request(json!({"type": "gpu"})),
    ];
    assert_eq!(allocate(&two, &devices, &[false, false]), Some(vec![0, 1]));
    let three = [
        request(json!({"type": "gpu", "count": 2})),
        request(json!({"type": "gpu"})),
    ];
    assert_eq!(allocate(&three, &devices, &[false, false]), None);
}

#[test]
fn describe_reads_like_a_requirement() {
    let req = request(json!({"type": "gpu", "min_memory_mb": 16000, "capabilities": ["cuda"]}));
    assert_eq!(req.describe(), "1 GPU with >= 16000 MB and capability cuda");
    let req = request(json!({"type": "fpga", "count": 2, "vendor": "xilinx"}));
    assert_eq!(req.describe(), "2 fpga vendor xilinx");
}
