//! The normalised manifest: one typed shape whatever layout or aliases the author used.
//!
//! It is stored whole in a job's first event and read back on replay, so it derives serde and
//! must stay backwards compatible: add fields with `#[serde(default)]`, never rename.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::executor::Concurrency;
use crate::domain::policy::UpdatePolicy;
use crate::domain::routing::{Condition, RoutingMode};
use crate::domain::service::ServiceSpec;

/// A validated job graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: String,
    /// Stable id of the graph (`graph_id`, else `workflow_id`, else `id`).
    pub graph_id: String,
    /// Display name; `graph_id` when the author gave none.
    pub job_name: String,
    pub job_type: JobType,
    /// Where the author put the graph; only used to point error paths at the right place.
    #[serde(default)]
    pub layout: GraphLayout,
    pub nodes: Vec<NodeSpec>,
    /// In manifest order: `first_match` routing depends on it.
    pub edges: Vec<EdgeSpec>,
    /// Nodes that receive `initial_inputs` seeded under [`ENTRYPOINTS_KEY`].
    pub entrypoints: Vec<String>,
    /// Seed payloads per node id; a bare list in the manifest is stored under
    /// [`ENTRYPOINTS_KEY`] and means "every entrypoint".
    pub initial_inputs: BTreeMap<String, Vec<Value>>,
    /// Validated (core-spec 1.5) but kept as JSON: the scheduler and lifecycle code read it.
    pub policies: Value,
    /// `policies.update`, typed, when the manifest declares one (deployments read it).
    /// Absent from events written before it existed; those jobs predate deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<UpdatePolicy>,
    pub metadata: Value,
    /// `services`: what the job provides, registered when it starts (core-spec 9.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceSpec>,
    /// `required_services`: checked by preflight before the job starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_services: Vec<ServiceSpec>,
    /// Top-level keys this runtime does not interpret, kept so they survive a round trip.
    #[serde(default)]
    pub extensions: Map<String, Value>,
}

/// Key of `initial_inputs` that addresses every entrypoint rather than one node.
pub const ENTRYPOINTS_KEY: &str = "__entrypoints__";

/// The manifest layouts accepted, by where the node graph sits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphLayout {
    /// Top-level `nodes`/`edges` (the documented v1 format).
    #[default]
    Flat,
    /// `agents.nodes`/`agents.edges` (mn.workflow v1/v2 blueprints).
    Agents,
    /// `flow.nodes`/`flow.edges`.
    Flow,
}

impl GraphLayout {
    /// The JSON path of the object holding the graph (`""` for the top level).
    pub fn container_path(self) -> &'static str {
        match self {
            GraphLayout::Flat => "",
            GraphLayout::Agents => "agents",
            GraphLayout::Flow => "flow",
        }
    }

    /// The JSON path of the node list in the author's file.
    pub fn nodes_path(self) -> &'static str {
        match self {
            GraphLayout::Flat => "nodes",
            GraphLayout::Agents => "agents.nodes",
            GraphLayout::Flow => "flow.nodes",
        }
    }

    /// The JSON path of the edge list in the author's file.
    pub fn edges_path(self) -> &'static str {
        match self {
            GraphLayout::Flat => "edges",
            GraphLayout::Agents => "agents.edges",
            GraphLayout::Flow => "flow.edges",
        }
    }
}

/// Batch jobs finish; the others are kept running (core-spec 1.5, 8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    #[default]
    Batch,
    Service,
    System,
    Sysbatch,
}

impl JobType {
    pub fn parse(s: &str) -> Option<JobType> {
        match s.to_ascii_lowercase().as_str() {
            "batch" => Some(JobType::Batch),
            "service" => Some(JobType::Service),
            "system" => Some(JobType::System),
            "sysbatch" => Some(JobType::Sysbatch),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Batch => "batch",
            JobType::Service => "service",
            JobType::System => "system",
            JobType::Sysbatch => "sysbatch",
        }
    }
}

/// One agent in the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub node_id: String,
    pub agent_type: AgentType,
    pub template: Template,
    /// Free text; `root`/`root_coordinator` make the node an implicit entrypoint.
    pub role: Option<String>,
    pub config: Map<String, Value>,
    /// `resources`, else `config.resources`, else `{}` (validated per core-spec 1.6).
    pub resources: Value,
    pub policies: Value,
    /// `services`: registered on the agent's node when the agent starts there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceSpec>,
    /// `requires_services`: the agent is only placed where each (required one) passes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_services: Vec<ServiceSpec>,
    /// An executor's `config.concurrency` and `ordered`; one at a time for every other agent.
    #[serde(default, skip_serializing_if = "Concurrency::is_default")]
    pub concurrency: Concurrency,
    /// Node keys not interpreted here (`constraints`, `display_name`, ...).
    #[serde(default)]
    pub extensions: Map<String, Value>,
}

/// One message-typed connection between two nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeSpec {
    pub edge_id: Option<String>,
    pub from_node: String,
    pub to_node: String,
    /// The emitted type this edge carries; `*` carries every type.
    pub message_type: String,
    pub routing_mode: RoutingMode,
    pub conditions: Condition,
    #[serde(default)]
    pub extensions: Map<String, Value>,
}

impl EdgeSpec {
    /// The id used in events and messages; `from->to` when the author gave none.
    pub fn label(&self) -> String {
        match &self.edge_id {
            Some(id) => id.clone(),
            None => format!("{}->{}", self.from_node, self.to_node),
        }
    }
}

/// What an agent does with a message (core-spec 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentType {
    Router,
    Executor,
    Aggregator,
    Sensor,
    /// A long-lived process from `payloads/` speaking JSON lines (see `config.command`).
    Module,
}

impl AgentType {
    /// Parses a name, accepting the legacy aliases `relay`, `sandbox_worker` and `collector`.
    pub fn parse(s: &str) -> Option<AgentType> {
        match s {
            "router" | "relay" => Some(AgentType::Router),
            "executor" | "sandbox_worker" => Some(AgentType::Executor),
            "aggregator" | "collector" => Some(AgentType::Aggregator),
            "sensor" => Some(AgentType::Sensor),
            "module" => Some(AgentType::Module),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgentType::Router => "router",
            AgentType::Executor => "executor",
            AgentType::Aggregator => "aggregator",
            AgentType::Sensor => "sensor",
            AgentType::Module => "module",
        }
    }

    /// The templates this agent type may be labelled with (core-spec 2.1).
    pub fn allows(self, template: Template) -> bool {
        use Template::*;
        match self {
            AgentType::Router => matches!(template, Generic | Map),
            AgentType::Executor | AgentType::Module => true,
            AgentType::Aggregator => matches!(template, Generic | Reduce),
            AgentType::Sensor => matches!(template, Generic),
        }
    }
}

/// A label exposed to workers as `template_type`; built-in agents do not change behaviour by it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    #[default]
    Generic,
    Stream,
    Map,
    Reduce,
    Batch,
}

impl Template {
    /// Parses a template name; `accumulator` is an alias of `reduce`.
    pub fn parse(s: &str) -> Option<Template> {
        match s {
            "generic" => Some(Template::Generic),
            "stream" => Some(Template::Stream),
            "map" => Some(Template::Map),
            "reduce" | "accumulator" => Some(Template::Reduce),
            "batch" => Some(Template::Batch),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Template::Generic => "generic",
            Template::Stream => "stream",
            Template::Map => "map",
            Template::Reduce => "reduce",
            Template::Batch => "batch",
        }
    }
}

impl Manifest {
    /// The normalised JSON form stored in the job's first event.
    pub fn to_value(&self) -> Value {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads back a form written by [`Manifest::to_value`]. It is not re-validated: it was
    /// validated when the job was submitted, and replay must not reject history.
    pub fn from_normalised(value: &Value) -> Result<Manifest, serde_json::Error> {
        Manifest::deserialize(value)
    }

    pub fn node(&self, node_id: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.node_id == node_id)
    }

    /// Edges leaving `node_id`, in manifest order.
    pub fn outbound<'a>(&'a self, node_id: &'a str) -> impl Iterator<Item = &'a EdgeSpec> + 'a {
        self.edges.iter().filter(move |e| e.from_node == node_id)
    }

    /// The author's JSON path of the node at `index` (for error messages after parsing).
    pub fn node_path(&self, index: usize) -> String {
        format!("{}[{index}]", self.layout.nodes_path())
    }
}
