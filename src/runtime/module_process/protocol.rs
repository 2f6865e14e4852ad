//! The module wire protocol: one JSON line in, one JSON line out, parsed into typed actions.
//! Framing is bounded (a reply longer than the limit is an error, not an allocation).

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::ModuleError;

/// What a module asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleAction {
    Emit {
        message_type: String,
        body: Value,
    },
    EmitTo {
        to: String,
        message_type: String,
        body: Value,
    },
    Event {
        event_type: String,
        payload: Value,
    },
    CompleteJob(Value),
}

/// One reply: its actions and the module's new state (`None`: unchanged).
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleReply {
    pub actions: Vec<ModuleAction>,
    pub state: Option<Value>,
}

/// Reads the next non-blank line, at most `max` bytes.
pub(super) async fn read_reply_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Vec<u8>, ModuleError> {
    loop {
        let mut buf = Vec::new();
        let n = (&mut *reader)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| ModuleError::Died {
                detail: format!("read failed: {e}"),
            })?;
        if n == 0 {
            return Err(ModuleError::Died {
                detail: "stdout closed before a reply".to_string(),
            });
        }
        if buf.last() != Some(&b'\n') {
            if buf.len() > max {
                return Err(bad_reply(format!("reply longer than {max} bytes"), &buf));
            }
            return Err(ModuleError::Died {
                detail: "stdout closed in the middle of a reply".to_string(),
            });
        }
        if !buf.iter().all(u8::is_ascii_whitespace) {
            return Ok(buf);
        }
    }
}

fn bad_reply(reason: impl Into<String>, raw: &[u8]) -> ModuleError {
    let excerpt: String = String::from_utf8_lossy(raw)
        .trim_end()
        .chars()
        .take(200)
        .collect();
    ModuleError::BadReply {
        reason: reason.into(),
        excerpt,
    }
}

/// Parses `{"actions": [...], "state": ...}`; both keys are optional.
pub fn parse_reply(raw: &[u8]) -> Result<ModuleReply, ModuleError> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| bad_reply(format!("not JSON: {e}"), raw))?;
    let Value::Object(m) = value else {
        return Err(bad_reply("not a JSON object", raw));
    };
    let actions = match m.get("actions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, a)| {
                parse_action(a).map_err(|reason| bad_reply(format!("actions[{i}]: {reason}"), raw))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad_reply("actions must be a list", raw)),
    };
    Ok(ModuleReply {
        actions,
        state: m.get("state").filter(|s| !s.is_null()).cloned(),
    })
}

fn parse_action(action: &Value) -> Result<ModuleAction, String> {
    let m = action
        .as_object()
        .filter(|m| m.len() == 1)
        .ok_or("must be an object with exactly one key")?;
    let (kind, spec) = m.iter().next().ok_or("empty action")?;
    let field = |name: &str| -> Result<String, String> {
        spec.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("{kind}.{name} must be a non-empty string"))
    };
    let body = |name: &str| spec.get(name).cloned().unwrap_or(Value::Null);
    match kind.as_str() {
        "complete_job" => Ok(ModuleAction::CompleteJob(spec.clone())),
        _ if !spec.is_object() => Err(format!("{kind} must be an object")),
        "emit" => Ok(ModuleAction::Emit {
            message_type: field("type")?,
            body: body("body"),
        }),
        "emit_to" => Ok(ModuleAction::EmitTo {
            to: field("to")?,
            message_type: field("type")?,
            body: body("body"),
        }),
        "event" => Ok(ModuleAction::Event {
            event_type: field("type")?,
            payload: body("payload"),
        }),
        other => Err(format!("unknown action {other:?}")),
    }
}
