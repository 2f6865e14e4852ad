//! Execution-profile settings for the runner (core-spec 7.4): an executor that names a profile
//! (`config.execution_profile`, or `config.profile`) configured in the cluster's
//! `MN_EXECUTION_PROFILES_JSON` takes that profile's runner keys over its own config when its
//! steps run, so an operator can say once which image, pool and warmup a class of work gets.
//!
//! Only the keys this runtime reads are taken: `image` (and `from`), `pool`, `pool_slots`
//! (`slots`), `warmup_command`, `warmup_timeout_ms`. Placement keys (`gpu`,
//! `required_capabilities`) are the scheduler's (see `cluster::dry_run`). An unconfigured
//! profile leaves the config as written: placement already refuses it.

use serde_json::{Map, Value};

/// Runner keys a profile may set, with the config key each becomes.
const KEYS: [(&str, &str); 7] = [
    ("image", "image"),
    ("from", "from"),
    ("pool", "pool"),
    ("pool_slots", "pool_slots"),
    ("slots", "pool_slots"),
    ("warmup_command", "warmup_command"),
    ("warmup_timeout_ms", "warmup_timeout_ms"),
];

use crate::domain::manifest::executor::profile_named as named;

/// `config` with the named profile's runner keys laid over it, from
/// `MN_EXECUTION_PROFILES_JSON`; `None` when there is nothing to lay over.
pub fn overlay_from_env(config: &Map<String, Value>) -> Result<Option<Map<String, Value>>, String> {
    let Some(name) = named(config) else {
        return Ok(None);
    };
    let Some(text) = crate::config::var("MN_EXECUTION_PROFILES_JSON") else {
        return Ok(None);
    };
    let profiles: Value = serde_json::from_str(&text)
        .map_err(|e| format!("MN_EXECUTION_PROFILES_JSON is not valid JSON: {e}"))?;
    Ok(overlay(config, profiles.get(name)))
}

/// `config` with `profile`'s runner keys over it (a profile's `image` replaces the config's
/// `image` and `from`: one image, the profile's).
fn overlay(config: &Map<String, Value>, profile: Option<&Value>) -> Option<Map<String, Value>> {
    let profile = profile?.as_object()?;
    let mut out = config.clone();
    let mut changed = false;
    for (from, to) in KEYS {
        if let Some(value) = profile.get(from).filter(|v| !v.is_null()) {
            if to == "image" {
                out.remove("from");
            }
            out.insert(to.to_string(), value.clone());
            changed = true;
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_profiles_runner_keys_override_the_config() {
        let config = map(
            json!({"command": "x", "execution_profile": "gpu", "from": "old",
                                "pool": "default", "warmup_timeout_ms": 5}),
        );
        let profile = json!({"image": "cuda:12", "slots": 2, "warmup_command": "nvidia-smi",
                             "gpu": true});
        let out = overlay(&config, Some(&profile)).expect("overlaid");
        assert_eq!(out["image"], "cuda:12");
        assert!(!out.contains_key("from"));
        assert_eq!(out["pool_slots"], 2);
        assert_eq!(out["warmup_command"], "nvidia-smi");
        assert_eq!(out["warmup_timeout_ms"], 5);
        assert_eq!(out["pool"], "default");
        assert!(
            !out.contains_key("gpu"),
            "placement keys stay the scheduler's"
        );
        assert_eq!(named(&config), Some("gpu"));
        assert_eq!(overlay(&config, None), None);
        assert_eq!(overlay(&config, Some(&json!({"gpu": true}))), None);
        assert_eq!(named(&map(json!({"profile": " "}))), None);
    }
}
