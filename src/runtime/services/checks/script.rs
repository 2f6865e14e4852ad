//! `script`: a command's exit status (0 passes). Refused unless the operator enabled script
//! checks; run contained like executor steps, from an empty environment plus the check's
//! `env` and `MN_SERVICE_NAME/ADDRESS/PORT`, never through a shell.

use std::process::Stdio;

use serde_json::json;

use super::{ALLOW_SCRIPTS_ENV, Probe_, Target};
use crate::domain::service::spec::{ScriptProbe, ServiceSpec};
use crate::runtime::containment;
use crate::runtime::executor::command::{Prepared, base_env, set};
use crate::runtime::executor::process::ProcessGroup;

pub(super) async fn check(
    probe: &ScriptProbe,
    service: &ServiceSpec,
    target: &Target,
    allowed: bool,
) -> Probe_ {
    let details = json!({"command": probe.command});
    if !allowed {
        return Err((
            format!(
                "script checks are disabled on this node (set {ALLOW_SCRIPTS_ENV}=1 to allow them)"
            ),
            details,
        ));
    }
    let Some((program, args)) = probe.command.split_first() else {
        return Err(("the command is empty".into(), details));
    };
    let env_pairs: Vec<(String, String)> = probe
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut env = base_env(&[], &env_pairs);
    set(&mut env, "MN_SERVICE_NAME", &service.name);
    set(&mut env, "MN_SERVICE_ADDRESS", &target.address);
    set(
        &mut env,
        "MN_SERVICE_PORT",
        &target.port.map(|p| p.to_string()).unwrap_or_default(),
    );
    let prepared = Prepared {
        program: program.clone(),
        args: args.to_vec(),
        env,
        cwd: probe
            .root_path
            .clone()
            .map_or_else(std::env::temp_dir, Into::into),
        join_cgroups: Vec::new(),
        containment: None,
    };
    let fail = |e: String| (e, details.clone());
    let (mut command, launch) =
        containment::command(&prepared).map_err(|e| fail(format!("cannot start: {e}")))?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    // Dropped when the check's timeout abandons this future: the group is then stopped.
    let mut group = ProcessGroup::of(&child, launch);
    let status = child
        .wait()
        .await
        .map_err(|e| fail(format!("wait failed: {e}")))?;
    group.reaped();
    let mut details = details.clone();
    details["exit_code"] = json!(status.code());
    if status.success() {
        Ok(details)
    } else {
        Err((format!("exited with {status}"), details))
    }
}
