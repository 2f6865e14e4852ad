//! Turning an executor's or a process module's result into a [`StepOutcome`], so that routing,
//! completion and events work the same for every agent type.

use serde_json::{Value, json};

use crate::domain::agents::{Emit, StepOutcome};
use crate::domain::message::Message;
use crate::runtime::executor::{EmitSpec, ExecSuccess, ExecutorConfig, OutputType};
use crate::runtime::module_process::{ModuleAction, ModuleReply};

fn emit_from_spec(spec: &EmitSpec) -> Emit {
    Emit {
        to: spec.to.clone(),
        message_type: spec.message_type.clone(),
        body: spec.body.clone(),
        class: spec.class.clone(),
        headers: spec.headers.clone(),
        content_type: spec.content_type.clone(),
        artifacts: spec.artifacts.clone(),
    }
}

/// An executor's successful run. The agent state carries the script's `next_state` between
/// runs; structured output that emits or completes takes over the agent's outputs, otherwise
/// the configured default emission (`executor_result`, a named type, or nothing) applies.
pub fn executor_outcome(
    config: &ExecutorConfig,
    agent_id: &str,
    prev_state: &Value,
    message: &Message,
    ok: &ExecSuccess,
) -> StepOutcome {
    let output = ok.output_payload(agent_id, &message.body);
    let runs = prev_state.get("runs").and_then(Value::as_u64).unwrap_or(0) + 1;
    let mut agent_state = prev_state
        .get("agent_state")
        .cloned()
        .unwrap_or(Value::Null);
    let mut outcome = StepOutcome::default();
    let mut completed = json!({ "exit_code": ok.exit_code, "attempts": ok.attempts, "pool": ok.pool, "duration_ms": ok.duration_ms, "truncated": ok.truncated });
    if let Some(note) = &ok.output_cap {
        // The manifest asked for a larger cap than this server allows: say so in the history.
        completed["output_cap"] = note.clone();
    }
    outcome
        .events
        .push(("sandbox_job_completed".into(), completed));
    let mut takes_over = false;
    if let Some(s) = &ok.structured {
        outcome
            .emits
            .extend(s.emit_messages.iter().map(emit_from_spec));
        outcome.events.extend(s.events.iter().cloned());
        if let Some(next) = &s.next_state {
            agent_state = next.clone();
        }
        if let Some(done) = &s.complete_job {
            outcome.complete = Some(done.clone());
        } else if s.complete_job_default {
            outcome.complete = Some(output.clone());
        }
        takes_over = !s.emit_messages.is_empty() || outcome.complete.is_some();
    }
    if !takes_over {
        match &config.spec.output_message_type {
            OutputType::Default => outcome.emits.push(result_emit("executor_result", &output)),
            OutputType::Named(t) => outcome.emits.push(result_emit(t, &output)),
            OutputType::None => {}
        }
    }
    outcome.state = Some(json!({ "runs": runs, "agent_state": agent_state }));
    outcome
}

fn result_emit(message_type: &str, output: &Value) -> Emit {
    Emit::result(
        message_type,
        output.clone(),
        "com.mirrorneuron.executor.result",
    )
}

/// A process module's reply: its actions map one to one onto the outcome;
/// `prev_state` is kept when the module did not send a new state.
pub fn module_outcome(reply: &ModuleReply, prev_state: &Value) -> StepOutcome {
    let state = reply.state.clone().unwrap_or_else(|| prev_state.clone());
    let mut outcome = StepOutcome {
        state: Some(state),
        ..Default::default()
    };
    for action in &reply.actions {
        match action {
            ModuleAction::Emit { message_type, body } => outcome
                .emits
                .push(Emit::routed(message_type.clone(), body.clone())),
            ModuleAction::EmitTo {
                to,
                message_type,
                body,
            } => {
                let mut emit = Emit::routed(message_type.clone(), body.clone());
                emit.to = Some(to.clone());
                outcome.emits.push(emit);
            }
            ModuleAction::Event {
                event_type,
                payload,
            } => outcome.events.push((event_type.clone(), payload.clone())),
            ModuleAction::CompleteJob(value) => outcome.complete = Some(value.clone()),
        }
    }
    outcome
}
