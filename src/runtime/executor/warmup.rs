//! `warmup_command`: run once per agent on this node, before its first step here, in the
//! same runner as its steps (host, sandbox or container), so what a step relies on (an image
//! that starts, a model download, a compiled cache in a shared volume) is checked or prepared
//! once rather than on every step. Steps wait for it; if it fails, the step fails saying so,
//! and the next step tries the warmup again (only a success is remembered).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::ExecRequest;
use super::attempt;
use super::outcome::{ExecFailure, FailureKind};

type Key = (String, String);

/// Warmups done (or in progress) in this process, by (job, agent). Concurrent first steps of
/// one agent share one warmup.
static WARMED: Mutex<Option<HashMap<Key, Arc<OnceCell<()>>>>> = Mutex::new(None);

/// Runs the agent's warmup unless it already succeeded on this node.
pub async fn ensure(req: &Arc<ExecRequest>) -> Result<(), ExecFailure> {
    if req.config.spec.warmup.is_none() {
        return Ok(());
    }
    let cell = {
        let mut warmed = WARMED.lock().unwrap_or_else(|p| p.into_inner());
        let key = (req.job_id.clone(), req.agent_id.clone());
        warmed
            .get_or_insert_with(HashMap::new)
            .entry(key)
            .or_default()
            .clone()
    };
    cell.get_or_try_init(|| run(req)).await.map(|_| ())
}

/// The warmup as one attempt of a step whose command is `warmup_command`, bounded by
/// `warmup_timeout_ms`: same staging, same runner, same limits.
async fn run(req: &Arc<ExecRequest>) -> Result<(), ExecFailure> {
    let Some(warmup) = req.config.spec.warmup.clone() else {
        return Ok(());
    };
    let mut warm = ExecRequest::clone(req);
    warm.config.spec.command = warmup.command;
    warm.config.spec.timeout = Some(warmup.timeout);
    warm.config.spec.retry_on_timeout = false;
    warm.config.spec.warmup = None;
    tracing::info!(job_id = %req.job_id, agent_id = %req.agent_id, "running warmup_command");
    match attempt::run_once(&Arc::new(warm)).await {
        Ok(_) => Ok(()),
        Err(f) => Err(ExecFailure {
            error: format!(
                "warmup_command failed on this node, so the agent's steps do not run: {}",
                f.error
            ),
            kind: FailureKind::Warmup,
            transient: false,
            ..f
        }),
    }
}
