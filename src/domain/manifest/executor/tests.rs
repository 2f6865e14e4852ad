use serde_json::{Value, json};

use super::*;

fn parse(config: Value) -> Result<ExecutorSpec, Vec<ValidationError>> {
    ExecutorSpec::parse(config.as_object().expect("object"))
}

/// The paths of the errors for `config`, in order.
fn paths(config: Value) -> Vec<String> {
    parse(config)
        .expect_err("invalid")
        .into_iter()
        .map(|e| e.path)
        .collect()
}

#[test]
fn defaults_are_applied_once() {
    let s = parse(json!({"command": "echo hi"})).expect("valid");
    assert_eq!(s.command, CommandSpec::Shell("echo hi".into()));
    assert_eq!(
        (
            s.pool.as_str(),
            s.pool_slots,
            s.max_attempts,
            s.retry_backoff_ms
        ),
        ("default", 1, 1, 500)
    );
    assert_eq!(
        (s.timeout, s.startup_delay_ms, s.retry_on_timeout),
        (None, 0, false)
    );
    assert_eq!(s.output_message_type, OutputType::Default);
}

#[test]
fn a_misspelt_command_is_a_missing_command() {
    let errs = parse(json!({"comand": "echo hi"})).expect_err("no command");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "command");
    assert!(
        errs[0].message.contains("requires config.command"),
        "{errs:?}"
    );
}

#[test]
fn every_bad_value_is_reported_with_its_path() {
    let got = paths(json!({
        "command": "x",
        "timeout_seconds": "sixty",
        "upload_path": "w.py",
        "upload_as": "../../..",
        "workdir": "../..",
        "pool_slots": 0,
        "max_attempts": 1.5,
        "environment": {"A-B": "1", "C": {"x": 1}},
        "upload_paths": [{"target": "t"}, {"source": "s", "target": "/etc"}, 5],
        "output_message_type": 5,
    }));
    assert_eq!(
        got,
        [
            "workdir",
            "environment.A-B",
            "environment.C",
            "upload_as",
            "upload_paths[0].source",
            "upload_paths[1].target",
            "upload_paths[2]",
            "timeout_seconds",
            "pool_slots",
            "max_attempts",
            "output_message_type",
        ]
    );
}

#[test]
fn messages_say_what_was_wrong() {
    let message = |config: Value| parse(config).expect_err("invalid")[0].message.clone();
    assert_eq!(
        message(json!({"command": "x", "timeout_seconds": "sixty"})),
        "timeout_seconds must be a number > 0, got \"sixty\""
    );
    assert_eq!(
        message(json!({"command": "x", "upload_path": "a", "upload_as": "../../.."})),
        "upload_as must not leave its directory, got \"../../..\""
    );
    assert_eq!(
        message(json!({"command": "x", "workdir": "../.."})),
        "workdir must not leave its directory, got \"../..\""
    );
}

#[test]
fn sandbox_paths_are_accepted_and_remapped_by_the_runner() {
    let s = parse(
        json!({"command": "x", "workdir": "/sandbox/job/w", "upload_path": "w",
        "upload_as": "/sandbox/job/w", "upload_paths": ["lib"]}),
    )
    .expect("valid");
    assert_eq!(s.workdir.as_deref(), Some("/sandbox/job/w"));
    assert_eq!(s.uploads.len(), 2);
    assert_eq!(
        s.uploads[1],
        UploadSpec {
            source: "lib".into(),
            target: None
        }
    );
}

#[test]
fn the_runner_follows_the_driver_and_the_runner_module() {
    let runner = |config: Value| parse(config).expect("valid").runner;
    assert_eq!(runner(json!({"command": "x"})), Runner::Host);
    let sandboxed = Runner::Sandbox(SandboxSpec::default());
    for config in [
        json!({"command": "x", "runtime_driver": "sandbox"}),
        json!({"command": "x", "runtime_driver": "openshell"}),
        json!({"command": "x", "runner_module": "MirrorNeuron.Runner.OpenShell"}),
        json!({"command": "x", "resources": {"runtime_driver": "openshell"}}),
        json!({"command": "x", "sandbox": {}}),
    ] {
        assert_eq!(runner(config.clone()), sandboxed, "{config}");
    }
    // An explicit host_local wins over the runner module.
    assert_eq!(
        runner(
            json!({"command": "x", "runner_module": "MirrorNeuron.Sandbox.OpenShell",
                      "runtime_driver": "host_local"})
        ),
        Runner::Host
    );
    let node_resources = json!({"runtime_driver": "sandbox", "memory": "1Gi"});
    let spec = ExecutorSpec::parse_node(
        json!({"command": "x", "sandbox": {"network": "host"}})
            .as_object()
            .expect("object"),
        &node_resources,
    )
    .expect("valid");
    assert_eq!(
        spec.runner,
        Runner::Sandbox(SandboxSpec {
            network: Network::Host,
            memory_mb: Some(1024),
            ..SandboxSpec::default()
        })
    );
}

#[test]
fn sandbox_settings_it_cannot_enforce_are_refused_by_path() {
    assert_eq!(
        paths(json!({"command": "x", "sandbox": {"network": ["api.example.com"]}})),
        ["sandbox.network"]
    );
    assert_eq!(
        paths(json!({"command": "x", "sandbox": {"network": {"allow": ["a.example"]}}})),
        ["sandbox.network"]
    );
    assert_eq!(
        paths(json!({"command": "x", "sandbox": {"network": "some"}})),
        ["sandbox.network"]
    );
    assert_eq!(
        paths(json!({"command": "x", "sandbox": {"egress": "all"}})),
        ["sandbox.egress"]
    );
    assert_eq!(paths(json!({"command": "x", "sandbox": true})), ["sandbox"]);
}

#[test]
fn docker_worker_executors_run_in_a_container_of_their_image() {
    let container = |config: Value| match parse(config.clone()).expect("valid").runner {
        Runner::Container(spec) => spec,
        other => panic!("{config}: expected a container, got {other:?}"),
    };
    for config in [
        json!({"command": "x", "image": "img:1", "runtime_driver": "docker_worker"}),
        json!({"command": "x", "image": "img:1", "runner_module": "MirrorNeuron.Runner.DockerWorker"}),
        json!({"command": "x", "from": "img:1", "resources": {"runtime_driver": "docker_worker"}}),
        json!({"command": "x", "image": "img:1", "container": {}}),
    ] {
        assert_eq!(container(config).image.as_deref(), Some("img:1"));
    }
    let spec = container(json!({
        "command": "x", "image": "img:1", "runtime_driver": "docker_worker",
        "resources": {"memory_mb": 256, "cpu_cores": 2}, "container": {"network": "host"}
    }));
    assert_eq!(
        (spec.memory_mb, spec.cpu_millis, spec.network),
        (Some(256), Some(2000), Network::Host)
    );
    assert_eq!(
        Runner::Container(spec).name(),
        crate::domain::manifest::executor::CONTAINER_DRIVER
    );
    // An image alone does not pick the container runner (OpenShell manifests carry one too).
    assert_eq!(
        parse(json!({"command": "x", "image": "img:1"}))
            .expect("valid")
            .runner,
        Runner::Host
    );
}

#[test]
fn a_docker_worker_without_an_image_is_refused_naming_the_field() {
    assert_eq!(
        paths(json!({"command": "x", "runtime_driver": "docker_worker"})),
        ["image"]
    );
    assert_eq!(
        paths(json!({"command": "x", "runtime_driver": "docker_worker", "image": "-v /:/h"})),
        ["image"]
    );
    assert_eq!(
        paths(json!({"command": "x", "image": "i", "container": {"network": ["a.example"]}})),
        ["container.network"]
    );
}

#[test]
fn warmup_is_a_command_with_a_timeout() {
    let s = parse(json!({"command": "x", "warmup_command": ["pip", "check"],
                         "warmup_timeout_ms": 1500}))
    .expect("valid");
    assert_eq!(
        s.warmup,
        Some(Warmup {
            command: CommandSpec::Argv(vec!["pip".into(), "check".into()]),
            timeout: Duration::from_millis(1500)
        })
    );
    let s = parse(json!({"command": "x", "warmup_command": "true"})).expect("valid");
    assert_eq!(
        s.warmup.map(|w| w.timeout),
        Some(Duration::from_millis(DEFAULT_WARMUP_TIMEOUT_MS))
    );
    assert_eq!(parse(json!({"command": "x"})).expect("valid").warmup, None);
    assert_eq!(
        paths(json!({"command": "x", "warmup_command": "", "warmup_timeout_ms": 0})),
        ["warmup_timeout_ms", "warmup_command"]
    );
}
