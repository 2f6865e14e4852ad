//! The out-of-process `module` agent against real python3/bash children.

mod common;

use std::time::{Duration, Instant};

use mirror_neuron::runtime::executor::CommandSpec;
use mirror_neuron::runtime::executor::command::base_env;
use mirror_neuron::runtime::module_process::{
    ModuleAction, ModuleError, ModuleOptions, ModuleProcess,
};
use serde_json::{Value, json};

const ECHO_MODULE: &str = r#"
import json, sys
for line in sys.stdin:
    req = json.loads(line)
    n = (req.get("state") or {}).get("n", 0) + 1
    body = req["message"]["body"]
    reply = {"actions": [
        {"emit": {"type": "echo", "body": body}},
        {"emit_to": {"to": "sink", "type": "copy", "body": body}},
        {"event": {"type": "seen", "payload": {"n": n}}},
    ] + ([{"complete_job": {"last": body}}] if body == "bye" else []), "state": {"n": n}}
    print(json.dumps(reply), flush=True)
"#;

fn options(max_restarts: u32) -> ModuleOptions {
    ModuleOptions {
        reply_timeout: Duration::from_secs(10),
        max_restarts,
        ..ModuleOptions::default()
    }
}

fn spawn(command: CommandSpec, max_restarts: u32) -> ModuleProcess {
    let cwd = std::env::temp_dir();
    ModuleProcess::spawn_with(command, cwd, base_env(&[], &[]), options(max_restarts))
        .expect("module starts")
}

fn python_echo() -> ModuleProcess {
    spawn(
        CommandSpec::Argv(vec![
            "python3".into(),
            "-u".into(),
            "-c".into(),
            ECHO_MODULE.into(),
        ]),
        3,
    )
}

fn message(body: Value) -> Value {
    json!({"envelope": {"type": "task"}, "body": body})
}

async fn handle(
    module: &mut ModuleProcess,
    body: Value,
    state: Value,
) -> Result<mirror_neuron::runtime::module_process::ModuleReply, ModuleError> {
    tokio::time::timeout(Duration::from_secs(30), module.handle(message(body), state))
        .await
        .expect("bounded")
}

#[tokio::test]
async fn echo_module_replies_with_typed_actions_and_state() {
    let mut module = python_echo();
    let reply = handle(&mut module, json!("hello"), json!(null))
        .await
        .expect("reply");
    assert_eq!(reply.state, Some(json!({"n": 1})));
    assert_eq!(
        reply.actions,
        vec![
            ModuleAction::Emit {
                message_type: "echo".into(),
                body: json!("hello")
            },
            ModuleAction::EmitTo {
                to: "sink".into(),
                message_type: "copy".into(),
                body: json!("hello")
            },
            ModuleAction::Event {
                event_type: "seen".into(),
                payload: json!({"n": 1})
            },
        ]
    );
    let reply = handle(&mut module, json!("bye"), json!({"n": 1}))
        .await
        .expect("reply");
    assert_eq!(reply.state, Some(json!({"n": 2})));
    assert_eq!(
        reply.actions.last(),
        Some(&ModuleAction::CompleteJob(json!({"last": "bye"})))
    );
    assert_eq!(module.restarts(), 0);
}

#[tokio::test]
async fn killed_module_is_restarted_on_the_next_message() {
    let mut module = python_echo();
    handle(&mut module, json!(1), json!(null))
        .await
        .expect("first reply");
    let pid = module.pid().expect("running");
    // SAFETY: signalling a child this test started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = handle(&mut module, json!(2), json!({"n": 5}))
        .await
        .expect("reply from the restarted module");
    assert_eq!(reply.state, Some(json!({"n": 6})));
    assert_eq!(module.restarts(), 1);
    assert_ne!(module.pid(), Some(pid));
}

#[tokio::test]
async fn garbage_reply_is_a_clear_error_and_restarts_are_bounded() {
    let garbage = CommandSpec::Shell("while read -r line; do echo 'not json at all'; done".into());
    let mut module = spawn(garbage, 2);
    match handle(&mut module, json!(1), json!(null)).await {
        Err(ModuleError::BadReply { reason, excerpt }) => {
            assert!(reason.contains("not JSON"), "{reason}");
            assert_eq!(excerpt, "not json at all");
        }
        other => panic!("expected BadReply, got {other:?}"),
    }
    for _ in 0..2 {
        assert!(matches!(
            handle(&mut module, json!(1), json!(null)).await,
            Err(ModuleError::BadReply { .. })
        ));
    }
    match handle(&mut module, json!(1), json!(null)).await {
        Err(e @ ModuleError::GaveUp { restarts: 2, .. }) => {
            assert!(e.to_string().contains("not JSON"), "{e}")
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert_eq!(module.restarts(), 2);
}

#[tokio::test]
async fn malformed_actions_are_rejected() {
    let reply = r#"{"actions": [{"emit": {"body": 1}}]}"#;
    let command = CommandSpec::Shell(format!("while read -r line; do echo '{reply}'; done"));
    let mut module = spawn(command, 1);
    match handle(&mut module, json!(1), json!(null)).await {
        Err(ModuleError::BadReply { reason, .. }) => {
            assert!(reason.contains("emit.type"), "{reason}")
        }
        other => panic!("expected BadReply, got {other:?}"),
    }
}

#[tokio::test]
async fn silent_module_times_out_and_exiting_module_is_reported_dead() {
    let silent = CommandSpec::Shell("sleep 1000".into());
    let opts = ModuleOptions {
        reply_timeout: Duration::from_millis(300),
        ..ModuleOptions::default()
    };
    let mut module =
        ModuleProcess::spawn_with(silent, std::env::temp_dir(), base_env(&[], &[]), opts)
            .expect("spawn");
    let started = Instant::now();
    assert!(matches!(
        handle(&mut module, json!(1), json!(null)).await,
        Err(ModuleError::Timeout { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(3));

    let quitter = CommandSpec::Shell("read -r line; exit 0".into());
    let mut module = spawn(quitter, 1);
    match handle(&mut module, json!(1), json!(null)).await {
        Err(ModuleError::Died { detail }) => assert!(detail.contains("closed"), "{detail}"),
        other => panic!("expected Died, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_program_is_a_spawn_error() {
    let command = CommandSpec::Argv(vec!["/nonexistent/module".into()]);
    let result = ModuleProcess::spawn(command, std::env::temp_dir(), base_env(&[], &[]));
    assert!(matches!(result, Err(ModuleError::Spawn { .. })));
}

#[tokio::test]
async fn dropping_the_module_kills_everything_it_started() {
    let dir = tempfile::tempdir().expect("tmp");
    let ready = dir.path().join("ready");
    // Found by name: inside the module's pid namespace `$!` is not a host pid. One child
    // leaves the process group and the session, which a group kill would miss.
    let name = format!("mn-module-child-{}", std::process::id());
    let command = CommandSpec::Shell(format!(
        "(exec -a {name} sleep 1000) & setsid bash -c 'exec -a {name} sleep 1000' & \
         sleep 0.2; touch {}; wait",
        ready.display()
    ));
    let module = spawn(command, 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ready.exists() || common::pids_named(&name).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "module never started its children"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(module);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<i32> = common::pids_named(&name)
            .into_iter()
            .filter(|&p| !is_zombie(p))
            .collect();
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "children {alive:?} survived the drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
