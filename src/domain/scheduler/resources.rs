//! A node's `resources` JSON (core-spec 1.6) normalised into one [`Demand`] in fixed units:
//! millicores, MiB, whole GPUs. Authors write `cpu: 2`, `cores: "500m"`, `memory: "2Gi"` or
//! `memory_gb: 1.5`; the planner should only ever compare integers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::devices::DeviceRequest;
use super::fields::{first, lower_str, number_and_unit, whole};

/// What one agent asks of the node it runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Demand {
    pub cpu_millis: u64,
    pub memory_mb: u64,
    pub disk_mb: u64,
    /// Whole GPUs; always covered by GPU entries in `devices` (a bare count gets a generic one).
    pub gpus: u32,
    pub devices: Vec<DeviceRequest>,
    pub ports: Vec<PortRequest>,
    pub volumes: Vec<VolumeRequest>,
    /// The worker driver the node must offer (`host_local`, `docker_worker`, ...).
    pub runtime_driver: Option<String>,
}

/// A static port the agent binds; identity for conflicts is protocol plus port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRequest {
    pub label: String,
    pub port: u16,
    pub protocol: String,
}

/// A host directory the agent expects; the node must expose `source` under one of its host paths.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VolumeRequest {
    pub name: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

/// A resource value that cannot be read; `path` points at the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DemandError {
    pub path: String,
    pub message: String,
}

impl DemandError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        DemandError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Cores written above this are taken as millicores (`cpu: 500`), as the original did.
const MAX_PLAIN_CORES: f64 = 64.0;

impl Demand {
    /// Reads `resources` found at `path` (e.g. `nodes[2].resources`).
    pub fn parse(resources: &Value, path: &str) -> Result<Demand, DemandError> {
        let map = match resources {
            Value::Null => return Ok(Demand::default()),
            Value::Object(map) => map,
            _ => return Err(DemandError::new(path, "resources must be an object")),
        };
        let devices = super::devices::parse_requests(map.get("devices"), path)?;
        let mut demand = Demand {
            cpu_millis: cpu_millis(map, path)?,
            memory_mb: size_mb(map, ["memory_mb", "memory"], "memory_gb", path)?,
            disk_mb: size_mb(map, ["disk_mb", "disk"], "disk_gb", path)?,
            gpus: 0,
            devices,
            ports: ports(map.get("ports"), path)?,
            volumes: volumes(map.get("volumes"), path)?,
            runtime_driver: lower_str(map, "runtime_driver", path)?,
        };
        let asked = match first(map, &["gpu_count", "gpus", "gpu"]) {
            Some((_, Value::Bool(b))) => u32::from(*b),
            Some((key, v)) => u32::try_from(whole(v, &format!("{path}.{key}"))?)
                .map_err(|_| DemandError::new(format!("{path}.{key}"), "is too large"))?,
            None => 0,
        };
        demand.require_gpus(asked);
        Ok(demand)
    }

    /// Raises the GPU count to at least `n`, adding a generic GPU request for any GPUs the
    /// device list does not already describe (so device allocation always covers the count).
    pub fn require_gpus(&mut self, n: u32) {
        let described: u32 = self
            .devices
            .iter()
            .filter(|d| d.is_gpu())
            .map(|d| d.count)
            .sum();
        if n > described {
            self.devices.push(DeviceRequest::gpus(n - described));
        }
        self.gpus = n.max(described);
    }
}

fn cpu_millis(map: &Map<String, Value>, path: &str) -> Result<u64, DemandError> {
    let Some((key, v)) = first(
        map,
        &["cpu_cores", "cores", "cpu", "cpu_millis", "cpu_mcores"],
    ) else {
        return Ok(0);
    };
    let field = format!("{path}.{key}");
    let (n, unit) = number_and_unit(v)
        .ok_or_else(|| DemandError::new(&field, format!("must be a number, got {v}")))?;
    if n < 0.0 {
        return Err(DemandError::new(field, "must be zero or greater"));
    }
    let millis = match (key, unit.as_str()) {
        ("cpu_millis" | "cpu_mcores", "" | "m") | (_, "m") => n,
        ("cpu", "") if n > MAX_PLAIN_CORES => n,
        (_, "") => n * 1000.0,
        (_, other) => {
            return Err(DemandError::new(
                field,
                format!("unknown cpu unit {other:?}; use cores or \"500m\""),
            ));
        }
    };
    Ok(millis.ceil() as u64)
}

/// Memory or disk in MiB: `<mb keys>` take plain numbers as MiB or strings with a unit
/// (`512Mi`, `2Gi`, `1G`, `100K`; decimal and binary suffixes are both read as binary, like
/// Docker does), `<gb key>` is GiB.
fn size_mb(
    map: &Map<String, Value>,
    mb_keys: [&'static str; 2],
    gb_key: &'static str,
    path: &str,
) -> Result<u64, DemandError> {
    let (key, v, scale) = match first(map, &mb_keys) {
        Some((key, v)) => (key, v, 1.0),
        None => match first(map, &[gb_key]) {
            Some((key, v)) => (key, v, 1024.0),
            None => return Ok(0),
        },
    };
    let field = format!("{path}.{key}");
    let (n, unit) = number_and_unit(v).ok_or_else(|| {
        DemandError::new(
            &field,
            format!("must be a number or size like \"2Gi\", got {v}"),
        )
    })?;
    if n < 0.0 {
        return Err(DemandError::new(field, "must be zero or greater"));
    }
    let unit_scale = match unit.trim_end_matches("ib").trim_end_matches(['b', 'i']) {
        "" if unit.is_empty() => scale,
        "" => 1.0 / (1024.0 * 1024.0),
        "k" => 1.0 / 1024.0,
        "m" => 1.0,
        "g" => 1024.0,
        "t" => 1024.0 * 1024.0,
        _ => {
            return Err(DemandError::new(
                field,
                format!("unknown size unit {unit:?}; use Mi, Gi, M, G"),
            ));
        }
    };
    Ok((n * unit_scale).ceil() as u64)
}

/// A list entry with its path.
type Item<'a> = (String, &'a Map<String, Value>);

fn list<'a>(value: Option<&'a Value>, path: &str) -> Result<Vec<Item<'a>>, DemandError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let p = format!("{path}[{i}]");
                item.as_object()
                    .map(|o| (p.clone(), o))
                    .ok_or_else(|| DemandError::new(p, "must be an object"))
            })
            .collect(),
        Some(_) => Err(DemandError::new(path, "must be a list")),
    }
}

fn ports(value: Option<&Value>, path: &str) -> Result<Vec<PortRequest>, DemandError> {
    let mut out = Vec::new();
    for (p, obj) in list(value, &format!("{path}.ports"))? {
        let label = lower_str(obj, "label", &p)?
            .ok_or_else(|| DemandError::new(format!("{p}.label"), "label is required"))?;
        let port = obj
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                DemandError::new(format!("{p}.port"), "port must be between 1 and 65535")
            })?;
        let protocol = lower_str(obj, "protocol", &p)?.unwrap_or_else(|| "tcp".into());
        out.push(PortRequest {
            label,
            port,
            protocol,
        });
    }
    Ok(out)
}

fn volumes(value: Option<&Value>, path: &str) -> Result<Vec<VolumeRequest>, DemandError> {
    let mut out = Vec::new();
    for (p, obj) in list(value, &format!("{path}.volumes"))? {
        let text = |key: &str| -> Result<String, DemandError> {
            match obj.get(key).and_then(Value::as_str) {
                Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                _ => Err(DemandError::new(
                    format!("{p}.{key}"),
                    format!("{key} is required"),
                )),
            }
        };
        let source = text("source")?;
        if !source.starts_with('/') {
            return Err(DemandError::new(
                format!("{p}.source"),
                "source must be an absolute host path",
            ));
        }
        let mode = lower_str(obj, "mode", &p)?;
        out.push(VolumeRequest {
            name: text("name")?,
            source,
            target: text("target")?,
            read_only: mode.as_deref() != Some("rw"),
        });
    }
    Ok(out)
}
