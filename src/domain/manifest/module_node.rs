//! `module` nodes. The original runtime compiled Elixir source from the bundle into itself;
//! here a module is a *process module*: a long-lived program from `payloads/` that speaks JSON
//! lines. Manifests written for the Elixir runtime get an error that says how to port them.

use serde_json::{Map, Value};

use super::error::{Errors, join};

/// How to write a process module; appended to every module error.
pub const PROCESS_MODULE_HOWTO: &str = "write a process module instead: set config.command (a string, or a list \
such as [\"python3\", \"agent.py\"]) to a long-lived program in payloads/ that reads one JSON message per line on \
stdin and writes one JSON line {\"actions\": [...], \"state\": ...} per message on stdout";

/// Checks a module node's config: it must run a command, not name Elixir code.
pub(crate) fn check(
    config: &Map<String, Value>,
    config_path: &str,
    node_id: &str,
    errs: &mut Errors,
) {
    if let Some(module) = config.get("module").filter(|v| !v.is_null()) {
        let name = module
            .as_str()
            .map_or_else(|| module.to_string(), |s| format!("{s:?}"));
        errs.push(
            join(config_path, "module"),
            format!("node {node_id} names Elixir module {name}, which this runtime cannot load; {PROCESS_MODULE_HOWTO}"),
        );
    } else if let Some(source) = config
        .get("module_source")
        .and_then(Value::as_str)
        .filter(|s| is_elixir(s))
    {
        errs.push(
            join(config_path, "module_source"),
            format!("node {node_id} points at Elixir source {source:?}, which this runtime cannot load; {PROCESS_MODULE_HOWTO}"),
        );
    } else if !config.contains_key("command") {
        errs.push(
            join(config_path, "command"),
            format!("module node {node_id} needs config.command; {PROCESS_MODULE_HOWTO}"),
        );
    }
}

fn is_elixir(path: &str) -> bool {
    path.ends_with(".ex") || path.ends_with(".exs")
}

/// `config.command`, when present, must be a non-empty string or a non-empty list of strings.
pub(crate) fn check_command(
    config: &Map<String, Value>,
    config_path: &str,
    node_id: &str,
    errs: &mut Errors,
) {
    let ok = match config.get("command") {
        None | Some(Value::Null) => return,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(items)) => !items.is_empty() && items.iter().all(Value::is_string),
        Some(_) => false,
    };
    if !ok {
        errs.push(
            join(config_path, "command"),
            format!("command for node {node_id} must be a non-empty string or a non-empty list of strings"),
        );
    }
}
