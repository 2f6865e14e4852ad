//! What a step needs from a node, read loosely from its resources and config. Placement itself
//! is the resource-aware scheduler's (`domain::scheduler`); this coarse reading only feeds the
//! recovery-policy resolution, which asks which execution profiles a job uses.

use serde_json::Value;

use crate::domain::manifest::NodeSpec;

/// What a step needs from a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Need {
    pub gpus: u32,
    pub execution_profile: Option<String>,
}

impl Need {
    /// Reads the needs of an agent from its resources and config.
    pub fn of(spec: &NodeSpec) -> Need {
        let gpus = ["gpu_count", "gpus", "gpu"]
            .iter()
            .find_map(|k| spec.resources.get(*k))
            .and_then(|v| match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .map_or(0, |g| g.ceil().max(0.0) as u32);
        let execution_profile = spec
            .config
            .get("execution_profile")
            .or_else(|| spec.resources.get("execution_profile"))
            .and_then(Value::as_str)
            .map(String::from);
        Need {
            gpus,
            execution_profile,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::domain::manifest::{AgentType, Template};

    #[test]
    fn needs_are_read_from_resources_and_config() {
        let mut config = Map::new();
        config.insert("execution_profile".into(), json!("python"));
        let spec = NodeSpec {
            node_id: "a".into(),
            agent_type: AgentType::Executor,
            template: Template::Generic,
            role: None,
            config,
            resources: json!({"gpus": "1.5"}),
            policies: json!({}),
            services: Vec::new(),
            requires_services: Vec::new(),
            concurrency: Default::default(),
            extensions: Map::new(),
        };
        let need = Need::of(&spec);
        assert_eq!(need.gpus, 2);
        assert_eq!(need.execution_profile.as_deref(), Some("python"));
        let bare = NodeSpec {
            resources: json!({}),
            config: Map::new(),
            ..spec
        };
        assert_eq!(Need::of(&bare), Need::default());
    }
}
