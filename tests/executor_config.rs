//! Pure parts of the executor: config parsing, pool settings, retry policy, structured output.

use std::time::Duration;

use mirror_neuron::runtime::executor::pool::parse_pool_capacities;
use mirror_neuron::runtime::executor::retry::{backoff, transient_marker};
use mirror_neuron::runtime::executor::staging::{encode_body, runner_name};
use mirror_neuron::runtime::executor::structured::parse_structured;
use mirror_neuron::runtime::executor::{
    CommandSpec, ExecutorConfig, ExecutorPools, OutputType, PoolError, UploadSpec,
};
use serde_json::{Value, json};

fn parse(config: Value) -> Result<ExecutorConfig, String> {
    ExecutorConfig::from_node_config(config.as_object().expect("object"))
}

#[test]
fn defaults_and_command_forms() {
    let c = parse(json!({"command": "echo hi"})).expect("valid");
    assert_eq!(c.spec.command, CommandSpec::Shell("echo hi".into()));
    assert_eq!(
        (
            c.spec.pool.as_str(),
            c.spec.pool_slots,
            c.spec.max_attempts,
            c.spec.retry_backoff_ms
        ),
        ("default", 1, 1, 500)
    );
    assert_eq!(
        (
            c.spec.timeout,
            c.spec.startup_delay_ms,
            c.spec.retry_on_timeout
        ),
        (None, 0, false)
    );
    assert_eq!(c.spec.output_message_type, OutputType::Default);
    let c = parse(json!({"command": ["python3", "x.py", 3]})).expect("valid");
    assert_eq!(
        c.spec.command,
        CommandSpec::Argv(vec!["python3".into(), "x.py".into(), "3".into()])
    );
}

#[test]
fn output_message_type_distinguishes_absent_null_and_named() {
    let named = parse(json!({"command": "x", "output_message_type": "done"})).expect("valid");
    assert_eq!(
        named.spec.output_message_type,
        OutputType::Named("done".into())
    );
    let none = parse(json!({"command": "x", "output_message_type": null})).expect("valid");
    assert_eq!(none.spec.output_message_type, OutputType::None);
}

#[test]
fn all_fields_parse() {
    let c = parse(json!({
        "command": "x", "workdir": "w", "environment": {"A": "1", "B": 2, "C": true}, "pass_env": ["HOME2"],
        "upload_path": "a.py", "upload_as": "b.py", "upload_paths": [{"source": "lib", "target": "l"}, "c.txt"],
        "timeout_seconds": 1.5, "max_output_bytes": 1000, "pool": "gpu", "pool_slots": 2, "max_attempts": 3,
        "retry_backoff_ms": 10, "startup_delay_ms": 5, "retry_on_timeout": true,
    }))
    .expect("valid");
    assert_eq!(
        c.spec.environment,
        vec![
            ("A".into(), "1".into()),
            ("B".into(), "2".into()),
            ("C".into(), "true".into())
        ]
    );
    assert_eq!(
        c.spec.uploads,
        vec![
            UploadSpec {
                source: "a.py".into(),
                target: Some("b.py".into())
            },
            UploadSpec {
                source: "lib".into(),
                target: Some("l".into())
            },
            UploadSpec {
                source: "c.txt".into(),
                target: None
            },
        ]
    );
    assert_eq!(c.spec.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(
        (
            c.max_output_bytes,
            c.spec.pool_slots,
            c.spec.max_attempts,
            c.spec.retry_on_timeout
        ),
        (1000, 2, 3, true)
    );
}

#[test]
fn bad_values_are_errors_naming_the_key() {
    for (config, expected) in [
        (json!({}), "requires config.command"),
        (json!({"command": ""}), "command must be"),
        (json!({"command": []}), "command must be"),
        (json!({"command": [{"a": 1}]}), "command list items"),
        (
            json!({"command": "x", "timeout_seconds": 0}),
            "timeout_seconds",
        ),
        (
            json!({"command": "x", "timeout_seconds": -1.5}),
            "timeout_seconds",
        ),
        (
            json!({"command": "x", "timeout_seconds": "10"}),
            "timeout_seconds",
        ),
        (
            json!({"command": "x", "pool_slots": 0}),
            "pool_slots must be a positive integer",
        ),
        (json!({"command": "x", "max_attempts": 1.5}), "max_attempts"),
        (
            json!({"command": "x", "environment": ["A"]}),
            "environment must be an object",
        ),
        (
            json!({"command": "x", "environment": {"A-B": "1"}}),
            "not a valid variable name",
        ),
        (
            json!({"command": "x", "environment": {"A": {"x": 1}}}),
            "environment.A",
        ),
        (
            json!({"command": "x", "pass_env": "HOME"}),
            "pass_env must be a list",
        ),
        (
            json!({"command": "x", "upload_paths": [{"target": "t"}]}),
            "upload_paths[0] requires source",
        ),
        (
            json!({"command": "x", "output_message_type": 5}),
            "output_message_type",
        ),
    ] {
        let e = parse(config.clone()).expect_err("invalid");
        assert!(e.contains(expected), "{config}: {e}");
    }
}

#[test]
fn pool_capacities_parse_strictly() {
    assert_eq!(
        parse_pool_capacities("gpu=2, io=8,").expect("ok"),
        vec![("gpu".into(), 2), ("io".into(), 8)]
    );
    assert_eq!(parse_pool_capacities("").expect("ok"), vec![]);
    for bad in [
        "gpu",
        "gpu=x",
        "gpu=0",
        "gpu=-1",
        "=2",
        "gpu=1,gpu=2",
        "default=3",
    ] {
        assert!(parse_pool_capacities(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn pool_acquire_errors_and_release_on_drop() {
    let pools = ExecutorPools::new(2, [("gpu".to_string(), 1)]);
    assert_eq!(
        pools.acquire("x", 1).await.err(),
        Some(PoolError::UnknownPool { pool: "x".into() })
    );
    assert_eq!(
        pools.acquire("gpu", 2).await.err(),
        Some(PoolError::TooManySlots {
            slots: 2,
            capacity: 1
        })
    );
    assert_eq!(
        pools.acquire("gpu", 0).await.err(),
        Some(PoolError::NotPositive)
    );
    let held = pools.acquire("default", 2).await.expect("slots");
    assert_eq!((held.info.pool.as_str(), held.info.slots), ("default", 2));
    let waiting =
        tokio::time::timeout(Duration::from_millis(50), pools.acquire("default", 1)).await;
    assert!(waiting.is_err(), "pool is full");
    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(1), pools.acquire("default", 2)).await;
    assert!(again.is_ok(), "slots came back on drop");
}

#[test]
fn retry_policy() {
    assert_eq!(
        transient_marker("", "Error: Connection Refused"),
        Some("connection refused")
    );
    assert_eq!(
        transient_marker("rpc DEADLINE EXCEEDED", ""),
        Some("deadline exceeded")
    );
    assert_eq!(transient_marker("ValueError: bad input", "Traceback"), None);
    assert_eq!(backoff(500, 1), Duration::from_millis(500));
    assert_eq!(backoff(500, 3), Duration::from_millis(2000));
    assert_eq!(
        backoff(500, 200),
        Duration::from_secs(300),
        "capped, no overflow"
    );
}

#[test]
fn structured_output_detection() {
    assert_eq!(parse_structured("plain text").expect("ok"), None);
    assert_eq!(parse_structured("{\"result\": 1}").expect("ok"), None);
    assert_eq!(parse_structured("{not json").expect("ok"), None);
    let pretty = "{\n  \"next_state\": {\"a\": 1}\n}\n";
    assert_eq!(
        parse_structured(pretty)
            .expect("ok")
            .and_then(|s| s.next_state),
        Some(json!({"a": 1}))
    );
    let nulls =
        parse_structured(r#"{"next_state": null, "complete_job": null, "complete_job?": true}"#)
            .expect("ok")
            .expect("structured");
    assert_eq!(
        (
            nulls.next_state,
            nulls.complete_job,
            nulls.complete_job_default
        ),
        (None, None, true)
    );
    let b64 = parse_structured(r#"{"emit_messages": [{"type": "blob", "body_base64": "aGk="}]}"#)
        .expect("ok");
    assert_eq!(
        b64.expect("structured").emit_messages[0]
            .body_base64
            .as_deref(),
        Some("aGk=")
    );
    assert!(parse_structured(r#"{"events": {}}"#).is_err());
}

#[test]
fn body_encodings_and_runner_name() {
    assert_eq!(
        encode_body(&json!({"a": 1}), "application/json; charset=utf-8"),
        b"{\"a\":1}"
    );
    assert_eq!(encode_body(&json!([1, 2]), "application/jsonl"), b"1\n2\n");
    assert_eq!(
        encode_body(&json!("raw bytes"), "application/octet-stream"),
        b"raw bytes"
    );
    assert_eq!(encode_body(&json!("txt"), "text/plain"), b"\"txt\"");
    assert_eq!(runner_name("Job_1", "Agent.X"), "host-local-job-1-agent-x");
}
