//! Devices (GPUs and other accelerators): what an agent asks for, what a node has, and which
//! concrete device ids satisfy a request (core-spec 1.6, 7.2). Ids are allocated, not just
//! counted, so two agents can never be handed the same GPU.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fields::{lower_str, str_list, whole};
use super::resources::DemandError;

/// How a device's memory is compared with `min_memory_mb`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemoryOperator {
    #[serde(rename = ">")]
    Greater,
    #[default]
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "==")]
    Equal,
}

impl MemoryOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryOperator::Greater => ">",
            MemoryOperator::AtLeast => ">=",
            MemoryOperator::Equal => "==",
        }
    }

    fn holds(self, have: u64, want: u64) -> bool {
        match self {
            MemoryOperator::Greater => have > want,
            MemoryOperator::AtLeast => have >= want,
            MemoryOperator::Equal => have == want,
        }
    }
}

/// One device request of an agent; strings are lowercased when parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceRequest {
    /// `gpu`, `fpga`, `tpu` or `device`; a device also matches when it lists the kind as a capability.
    pub kind: String,
    /// `gpu`, `nvidia/gpu`, or a model family; `<vendor>/...` adds a vendor filter.
    pub device_type: Option<String>,
    pub vendor: Option<String>,
    /// Matched as a case-insensitive substring of the device model (`a100`).
    pub model: Option<String>,
    pub driver: Option<String>,
    pub count: u32,
    pub min_memory_mb: u64,
    pub memory_operator: MemoryOperator,
    /// Every one must be listed by the device (`cuda`, `fp16`).
    pub capabilities: Vec<String>,
    /// When not empty, only these device ids may be used.
    pub ids: Vec<String>,
}

/// One device a node offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Unique on the node (`gpu-0`, a UUID); what allocations record.
    pub id: String,
    pub kind: String,
    pub vendor: Option<String>,
    pub model: Option<String>,
    /// Free memory if known, else total.
    pub memory_mb: u64,
    pub driver: Option<String>,
    pub capabilities: Vec<String>,
}

impl DeviceRequest {
    /// `n` GPUs of any make: what a bare `gpus: n` means.
    pub fn gpus(n: u32) -> DeviceRequest {
        DeviceRequest {
            kind: "gpu".into(),
            device_type: None,
            vendor: None,
            model: None,
            driver: None,
            count: n,
            min_memory_mb: 0,
            memory_operator: MemoryOperator::AtLeast,
            capabilities: Vec::new(),
            ids: Vec::new(),
        }
    }

    pub fn is_gpu(&self) -> bool {
        self.kind == "gpu"
    }

    /// Whether `device` could serve this request (ignoring whether it is already taken).
    pub fn matches(&self, device: &Device) -> bool {
        self.matches_kind(device)
            && self.matches_type(device)
            && opt_eq(&self.vendor, &device.vendor)
            && opt_eq(&self.driver, &device.driver)
            && self.model.as_ref().is_none_or(|m| {
                device
                    .model
                    .as_ref()
                    .is_some_and(|dm| dm.to_lowercase().contains(m.as_str()))
            })
            && (self.ids.is_empty() || self.ids.contains(&device.id))
            && self
                .capabilities
                .iter()
                .all(|c| has(&device.capabilities, c))
            && self
                .memory_operator
                .holds(device.memory_mb, self.min_memory_mb)
    }

    /// Kind and type only: the devices worth naming when explaining a miss.
    pub fn matches_kind(&self, device: &Device) -> bool {
        device.kind.eq_ignore_ascii_case(&self.kind) || has(&device.capabilities, &self.kind)
    }

    fn matches_type(&self, device: &Device) -> bool {
        let Some(ty) = self
            .device_type
            .as_deref()
            .filter(|t| !t.is_empty() && *t != "device")
        else {
            return true;
        };
        let (vendor, rest) = match ty.split_once('/') {
            Some((v, r)) => (Some(v), r),
            None => (None, ty),
        };
        let vendor_ok = vendor.is_none_or(|v| {
            device
                .vendor
                .as_deref()
                .is_some_and(|dv| dv.eq_ignore_ascii_case(v))
        });
        let rest_ok = if rest.contains("gpu") {
            device.kind.eq_ignore_ascii_case("gpu")
        } else {
            device.kind.eq_ignore_ascii_case(rest)
                || device
                    .model
                    .as_deref()
                    .is_some_and(|m| m.to_lowercase().contains(rest))
        };
        vendor_ok && rest_ok
    }

    /// The smallest adequate free devices for this request (least wasted memory, then id), or
    /// `None` when fewer than `count` match. `taken` runs parallel to `devices`.
    pub fn pick(&self, devices: &[Device], taken: &[bool]) -> Option<Vec<usize>> {
        let mut found: Vec<usize> = (0..devices.len())
            .filter(|&i| !taken.get(i).copied().unwrap_or(true) && self.matches(&devices[i]))
            .collect();
        if found.len() < self.count as usize {
            return None;
        }
        found.sort_by(|&a, &b| {
            let (da, db) = (&devices[a], &devices[b]);
            da.memory_mb
                .cmp(&db.memory_mb)
                .then_with(|| da.id.cmp(&db.id))
        });
        found.truncate(self.count as usize);
        Some(found)
    }

    /// A readable summary for error messages: `1 GPU with >= 16000 MB and capability cuda`.
    pub fn describe(&self) -> String {
        let noun = if self.is_gpu() {
            "GPU".to_string()
        } else {
            self.kind.clone()
        };
        let mut s = format!("{} {noun}", self.count);
        for (label, v) in [
            ("vendor", &self.vendor),
            ("model", &self.model),
            ("driver", &self.driver),
        ] {
            if let Some(v) = v {
                s.push_str(&format!(" {label} {v}"));
            }
        }
        if self.min_memory_mb > 0 {
            s.push_str(&format!(
                " with {} {} MB",
                self.memory_operator.as_str(),
                self.min_memory_mb
            ));
        }
        if !self.capabilities.is_empty() {
            let word = if self.capabilities.len() == 1 {
                "capability"
            } else {
                "capabilities"
            };
            s.push_str(&format!(" and {word} {}", self.capabilities.join(", ")));
        }
        s
    }
}

/// Picks devices for every request in turn; `None` if any request cannot be met.
pub fn allocate(
    requests: &[DeviceRequest],
    devices: &[Device],
    taken: &[bool],
) -> Option<Vec<usize>> {
    if requests.is_empty() {
        return Some(Vec::new());
    }
    let mut taken = taken.to_vec();
    let mut picked = Vec::new();
    for request in requests {
        for i in request.pick(devices, &taken)? {
            taken[i] = true;
            picked.push(i);
        }
    }
    Some(picked)
}

fn opt_eq(want: &Option<String>, have: &Option<String>) -> bool {
    want.as_ref()
        .is_none_or(|w| have.as_ref().is_some_and(|h| h.eq_ignore_ascii_case(w)))
}

fn has(list: &[String], item: &str) -> bool {
    list.iter().any(|c| c.eq_ignore_ascii_case(item))
}

/// Reads `resources.devices` (absent means none).
pub(crate) fn parse_requests(
    value: Option<&Value>,
    path: &str,
) -> Result<Vec<DeviceRequest>, DemandError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(DemandError::new(
                format!("{path}.devices"),
                "devices must be a list",
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let p = format!("{path}.devices[{i}]");
            let obj = item
                .as_object()
                .ok_or_else(|| DemandError::new(&p, "must be an object"))?;
            parse_request(obj, &p)
        })
        .collect()
}

fn parse_request(obj: &Map<String, Value>, p: &str) -> Result<DeviceRequest, DemandError> {
    let device_type = lower_str(obj, "type", p)?;
    let kind = match lower_str(obj, "kind", p)? {
        Some(k) => k,
        None => derived_kind(device_type.as_deref()),
    };
    let count = match obj.get("count").filter(|v| !v.is_null()) {
        None => 1,
        Some(v) => u32::try_from(whole(v, &format!("{p}.count"))?).unwrap_or(u32::MAX),
    };
    if count == 0 {
        return Err(DemandError::new(
            format!("{p}.count"),
            "count must be greater than zero",
        ));
    }
    let min_memory_mb = match obj.get("min_memory_mb").filter(|v| !v.is_null()) {
        None => 0,
        Some(v) => whole(v, &format!("{p}.min_memory_mb"))?,
    };
    let memory_operator = match lower_str(obj, "memory_operator", p)?.as_deref() {
        None | Some(">=") => MemoryOperator::AtLeast,
        Some(">") => MemoryOperator::Greater,
        Some("==" | "=") => MemoryOperator::Equal,
        Some(_) => {
            return Err(DemandError::new(
                format!("{p}.memory_operator"),
                "memory_operator must be >, >=, or ==",
            ));
        }
    };
    Ok(DeviceRequest {
        kind,
        device_type,
        vendor: lower_str(obj, "vendor", p)?,
        model: lower_str(obj, "model", p)?,
        driver: lower_str(obj, "driver", p)?,
        count,
        min_memory_mb,
        memory_operator,
        capabilities: str_list(obj, "capabilities", p, true)?,
        ids: str_list(obj, "ids", p, false)?,
    })
}

/// `kind` when the author gave only `type`: gpu/fpga/tpu by substring, else `device`.
fn derived_kind(device_type: Option<&str>) -> String {
    let ty = device_type.unwrap_or("");
    ["gpu", "fpga", "tpu"]
        .into_iter()
        .find(|k| ty.contains(k))
        .unwrap_or("device")
        .to_string()
}
