//! Where one executor step runs: the eligible node with the most free executor slots. This is
//! the capacity-and-eligibility placement of the cluster; the resource-aware scheduler refines
//! it with full resources, devices and constraints.

use serde_json::Value;

use crate::domain::manifest::NodeSpec;

/// A node the owner may place work on.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub name: String,
    /// Connected, alive and schedulable.
    pub eligible: bool,
    pub slots: u32,
    /// Work items queued or running there.
    pub load: u64,
    pub gpus: u32,
    pub execution_profiles: Vec<String>,
}

/// What a step needs from a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Need {
    pub gpus: u32,
    pub execution_profile: Option<String>,
    /// A node the step must not run on (it failed there and is being rescheduled).
    pub avoid_node: Option<String>,
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
            avoid_node: None,
        }
    }
}

/// The least loaded eligible node that fits (ties broken by name), or `None`.
pub fn choose_node<'a>(candidates: &'a [Candidate], need: &Need) -> Option<&'a Candidate> {
    candidates
        .iter()
        .filter(|c| c.eligible && c.gpus >= need.gpus)
        .filter(|c| need.avoid_node.as_deref() != Some(c.name.as_str()))
        .filter(|c| {
            need.execution_profile
                .as_ref()
                .is_none_or(|p| c.execution_profiles.contains(p))
        })
        .min_by(|a, b| {
            let (la, lb) = (
                a.load as f64 / a.slots.max(1) as f64,
                b.load as f64 / b.slots.max(1) as f64,
            );
            la.total_cmp(&lb).then_with(|| a.name.cmp(&b.name))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, slots: u32, load: u64) -> Candidate {
        Candidate {
            name: name.into(),
            eligible: true,
            slots,
            load,
            gpus: 0,
            execution_profiles: vec!["host_local".into()],
        }
    }

    #[test]
    fn least_loaded_relative_to_slots_wins_ties_by_name() {
        let nodes = vec![c("a", 4, 2), c("b", 8, 2), c("c", 8, 2)];
        assert_eq!(
            choose_node(&nodes, &Need::default()).map(|c| c.name.as_str()),
            Some("b")
        );
    }

    #[test]
    fn ineligible_and_unfit_nodes_are_skipped() {
        let mut a = c("a", 4, 0);
        a.eligible = false;
        let mut g = c("g", 4, 9);
        g.gpus = 1;
        let nodes = vec![a, c("b", 4, 1), g];
        let gpu = Need {
            gpus: 1,
            ..Need::default()
        };
        assert_eq!(
            choose_node(&nodes, &gpu).map(|c| c.name.as_str()),
            Some("g")
        );
        assert_eq!(
            choose_node(&nodes, &Need::default()).map(|c| c.name.as_str()),
            Some("b")
        );
        let python = Need {
            execution_profile: Some("python".into()),
            ..Need::default()
        };
        assert_eq!(choose_node(&nodes, &python), None);
        let elsewhere = Need {
            avoid_node: Some("b".into()),
            ..Need::default()
        };
        assert_eq!(
            choose_node(&nodes, &elsewhere).map(|c| c.name.as_str()),
            Some("g")
        );
    }
}
