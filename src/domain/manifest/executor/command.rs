//! What an executor runs (`command`) and the variables it adds (`environment`).

use serde_json::Value;

use super::super::error::{Errors, kind};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    /// A script line, run through `bash -c` (pipes, globs and `&&` work).
    Shell(String),
    /// A program and its arguments, executed directly with no shell in between.
    Argv(Vec<String>),
}

/// A string runs through bash; a list is an argv. Anything else, or an empty command, is
/// refused (the original silently ran a stub that printed a warning).
pub(super) fn parse(value: Option<&Value>, path: &str, errs: &mut Errors) -> Option<CommandSpec> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(CommandSpec::Shell(s.clone())),
        Some(Value::Array(items)) if !items.is_empty() => {
            let argv: Vec<String> = items.iter().filter_map(scalar_string).collect();
            if argv.len() == items.len() {
                return Some(CommandSpec::Argv(argv));
            }
            errs.push(path, "command list items must be strings or numbers");
            None
        }
        None | Some(Value::Null) => {
            errs.push(
                path,
                "executor requires config.command (a string, or a list such as [\"python3\", \"run.py\"])",
            );
            None
        }
        Some(_) => {
            errs.push(
                path,
                "command must be a non-empty string or a non-empty list of strings",
            );
            None
        }
    }
}

/// A string, number or boolean as text; used where manifests commonly write `"PORT": 8080`.
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `environment` as ordered pairs; values may be scalars, never objects or lists.
pub(super) fn environment(
    value: Option<&Value>,
    path: &str,
    errs: &mut Errors,
) -> Vec<(String, String)> {
    let map = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            errs.push(
                path,
                format!(
                    "environment must be an object of NAME: value, got {}",
                    kind(other)
                ),
            );
            return Vec::new();
        }
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (name, v) in map {
        let field = format!("{path}.{name}");
        if !valid_env_name(name) {
            errs.push(
                field,
                format!("environment name {name:?} is not a valid variable name"),
            );
            continue;
        }
        match scalar_string(v) {
            Some(s) => pairs.push((name.clone(), s)),
            None => errs.push(
                field,
                format!("environment.{name} must be a string, number or boolean"),
            ),
        }
    }
    pairs
}

/// POSIX-ish variable names: letters, digits and `_`, not starting with a digit.
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
