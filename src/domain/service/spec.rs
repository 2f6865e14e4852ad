//! The typed service declaration and its checks, as validation leaves them. Stored inside the
//! manifest of the job's first event, so fields are added with `#[serde(default)]` only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Check defaults from core-spec 9.1.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
/// How often a check runs unless it says otherwise.
pub const DEFAULT_INTERVAL_MS: u64 = 10_000;

/// A declared service, or (with `required`) a required one: the spec shares the shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    /// The instance id; `<job_id>:<agent_id|job>:<name>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// Only `mirror_neuron` is accepted; kept so the record says who registered it.
    #[serde(default = "provider")]
    pub provider: String,
    /// `None` on a requirement means any origin; declarations default to internal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// Preflight shortcut: an implicit http check of this URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Requirements only: a non-required one never blocks anything.
    #[serde(default = "yes")]
    pub required: bool,
}

fn provider() -> String {
    "mirror_neuron".into()
}

fn yes() -> bool {
    true
}

impl ServiceSpec {
    /// A service known by name alone (the string shorthand).
    pub fn named(name: impl Into<String>) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            id: None,
            address: None,
            port: None,
            tags: Vec::new(),
            meta: Map::new(),
            provider: provider(),
            origin: None,
            checks: Vec::new(),
            url: None,
            required: true,
        }
    }

    /// The origin of a declared instance (internal unless it says external).
    pub fn origin_or_default(&self) -> Origin {
        self.origin.unwrap_or(Origin::Internal)
    }

    /// Whether preflight can check this requirement itself rather than ask the registry.
    pub fn directly_checkable(&self) -> bool {
        !self.checks.is_empty()
            || self.address.is_some()
            || self.port.is_some()
            || self.url.is_some()
    }
}

/// Who runs the service: the runtime's own jobs, or something outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Internal,
    External,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Internal => "internal",
            Origin::External => "external",
        }
    }
}

/// A port number, or a `${...}` template resolved at registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Port {
    Number(u16),
    Template(String),
}

impl Port {
    /// The number, once templates are resolved (an unresolved or empty one has none).
    pub fn number(&self) -> Option<u16> {
        match self {
            Port::Number(n) => Some(*n),
            Port::Template(s) => s.trim().parse().ok().filter(|n| *n > 0),
        }
    }
}

/// One health check of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// Defaults to the check's type.
    pub name: String,
    pub timeout_ms: u64,
    pub interval_ms: u64,
    /// A failing optional check makes the service `warning`, not `critical`.
    pub required: bool,
    /// Consecutive critical results needed before the check reports critical.
    pub failures_before_critical: u32,
    /// Falls back to the service's address and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    pub probe: Probe,
}

/// What a check does; the variant is the check's `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Probe {
    /// Connect, then close.
    Tcp,
    Http(HttpProbe),
    /// `grpc.health.v1.Health/Check` must answer SERVING.
    Grpc {
        #[serde(default)]
        service: String,
    },
    Script(ScriptProbe),
}

impl Probe {
    pub fn type_name(&self) -> &'static str {
        match self {
            Probe::Tcp => "tcp",
            Probe::Http(_) => "http",
            Probe::Grpc { .. } => "grpc",
            Probe::Script(_) => "script",
        }
    }
}

/// An HTTP request and what its answer must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpProbe {
    /// The whole URL; otherwise built from scheme, address, port and path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub scheme: String,
    pub path: String,
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub content_type: String,
    /// Inclusive ranges; any match passes.
    pub expected_status: Vec<(u16, u16)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
}

/// A command whose exit status is the check (only where the operator enables script checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptProbe {
    /// Program and arguments; never run through a shell.
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_path: Option<String>,
}
