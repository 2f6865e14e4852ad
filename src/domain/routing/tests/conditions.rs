use serde_json::{Value, json};

use crate::domain::routing::{Condition, Op};

fn parse(v: Value) -> Result<Condition, String> {
    Condition::parse(&v)
}

fn cmp(path: &str, op: Op, value: Value) -> Condition {
    Condition::Compare {
        path: path.to_string(),
        op,
        value,
    }
}

#[test]
fn parses_every_form() {
    let cases: Vec<(Value, Condition)> = vec![
        (json!(null), Condition::Always),
        (json!({}), Condition::Always),
        (
            json!({"expr": "${payload.a} == 1"}),
            cmp("payload.a", Op::Eq, json!(1)),
        ),
        (
            json!({"expr": "${payload.a}==\"x y\""}),
            cmp("payload.a", Op::Eq, json!("x y")),
        ),
        (
            json!({"expr": "${payload.a} != 'low'"}),
            cmp("payload.a", Op::Ne, json!("low")),
        ),
        (
            json!({"expr": "${payload.a} >= 2.5"}),
            cmp("payload.a", Op::Ge, json!(2.5)),
        ),
        (
            json!({"expr": "${payload.a} <= -1"}),
            cmp("payload.a", Op::Le, json!(-1)),
        ),
        (
            json!({"expr": "${payload.a} > 0"}),
            cmp("payload.a", Op::Gt, json!(0)),
        ),
        (
            json!({"expr": "${payload.a} < 0"}),
            cmp("payload.a", Op::Lt, json!(0)),
        ),
        (
            json!({"expr": "${payload.tags} contains urgent"}),
            cmp("payload.tags", Op::Contains, json!("urgent")),
        ),
        (
            json!({"expr": "${payload.a} in [\"x\", 2]"}),
            cmp("payload.a", Op::In, json!(["x", 2])),
        ),
        (
            json!({"expr": "${state.seen} exists"}),
            cmp("state.seen", Op::Exists, Value::Null),
        ),
        (
            json!({"expr": "  payload.flag == true  "}),
            cmp("payload.flag", Op::Eq, json!(true)),
        ),
        (
            json!({"path": "payload.a", "value": {"k": 1}}),
            cmp("payload.a", Op::Eq, json!({"k": 1})),
        ),
        (
            json!({"path": "${payload.a}", "op": "!=", "value": null}),
            cmp("payload.a", Op::Ne, Value::Null),
        ),
        (
            json!({"path": "payload.a", "op": "exists"}),
            cmp("payload.a", Op::Exists, Value::Null),
        ),
        (json!({"all": []}), Condition::All(vec![])),
        (
            json!({"any": [{}, {"path": "p", "value": 1}]}),
            Condition::Any(vec![Condition::Always, cmp("p", Op::Eq, json!(1))]),
        ),
        (
            json!({"not": {"expr": "${p} exists"}}),
            Condition::Not(Box::new(cmp("p", Op::Exists, Value::Null))),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(parse(input.clone()), Ok(expected), "{input}");
    }
}

#[test]
fn rejects_malformed_conditions_with_a_reason() {
    let ops = "expected ==, !=, >, >=, <, <=, contains, in or exists";
    let cases: Vec<(Value, String)> = vec![
        (json!("x == 1"), "a condition must be an object, got \"x == 1\"".into()),
        (json!({"when": 1}), "unknown condition keys [\"when\"]; expected one of all, any, not, expr, path".into()),
        (json!({"all": [], "any": []}), "a condition must use exactly one of all, any, not, expr, path (found [\"all\", \"any\"])".into()),
        (json!({"all": {}}), "all must be a list of conditions".into()),
        (json!({"any": [{}, 3]}), "any[1]: a condition must be an object, got 3".into()),
        (json!({"not": []}), "a condition must be an object, got []".into()),
        (json!({"expr": 5}), "expr must be a string, got 5".into()),
        (json!({"expr": "${payload.a}"}), "expr \"${payload.a}\" has no operator".into()),
        (json!({"expr": "${payload.a} =~ 1"}), format!("unsupported op \"=~\"; {ops}")),
        (json!({"expr": "${payload.a} == "}), "expr \"${payload.a} == \" is missing a value after ==".into()),
        (json!({"expr": "${payload.a} exists 1"}), "expr \"${payload.a} exists 1\": exists takes no value".into()),
        (json!({"expr": "${payload..a} == 1"}), "invalid path \"${payload..a}\"".into()),
        (json!({"expr": "${} == 1"}), "invalid path \"${}\"".into()),
        (json!({"expr": "${payload.a == 1"}), "expr \"${payload.a == 1\" must start with ${path} or a path".into()),
        (json!({"expr": "${payload.a} in 3"}), "op in requires a list value, got 3".into()),
        (json!({"expr": "${payload.a} containsx 3"}), format!("unsupported op \"containsx\"; {ops}")),
        (json!({"path": "payload.a"}), "condition on payload.a with op == requires a value".into()),
        (json!({"path": "payload.a", "op": "~", "value": 1}), format!("unsupported op \"~\"; {ops}")),
        (json!({"path": "payload.a", "op": 1, "value": 1}), "op must be a string, got 1".into()),
        (json!({"path": 1, "value": 1}), "path must be a string, got 1".into()),
        (json!({"path": "p", "op": "in", "value": "abc"}), "op in requires a list value, got \"abc\"".into()),
    ];
    for (input, expected) in cases {
        assert_eq!(parse(input.clone()), Err(expected), "{input}");
    }
}

/// `(condition, expected)` against one fixed context.
#[test]
fn evaluates_every_operator() {
    let ctx = json!({
        "message": {"type": "scored", "headers": {"level": "high"}, "body": {"score": 7}},
        "payload": {
            "score": 7, "score_text": "7.0", "name": "alpha-beta", "tags": ["a", "b", 3],
            "meta": {"k": 1}, "flag": true, "nothing": null, "items": [{"id": "x"}, {"id": "y"}],
            "outputs": {"selected_branch": "high_risk"}
        },
        "state": {"count": 2}
    });
    let cases: Vec<(Value, bool)> = vec![
        (json!({}), true),
        (
            json!({"expr": "${payload.outputs.selected_branch} == \"high_risk\""}),
            true,
        ),
        (
            json!({"expr": "${payload.outputs.selected_branch} == \"low_risk\""}),
            false,
        ),
        (json!({"expr": "${payload.score} == 7"}), true),
        (json!({"expr": "${payload.score} == \"7\""}), true),
        (json!({"expr": "${payload.score_text} == 7"}), true),
        (json!({"expr": "${payload.flag} == \"true\""}), true),
        (json!({"expr": "${payload.missing} == 1"}), false),
        (json!({"expr": "${payload.nothing} == null"}), true),
        (json!({"expr": "${payload.score} != 8"}), true),
        (json!({"expr": "${payload.missing} != 1"}), true),
        (json!({"expr": "${payload.score} != 7"}), false),
        (json!({"expr": "${payload.score} > 6"}), true),
        (json!({"expr": "${payload.score} > 7"}), false),
        (json!({"expr": "${payload.score_text} >= 7"}), true),
        (json!({"expr": "${payload.score} < \"10\""}), true),
        (json!({"expr": "${payload.score} <= 6.9"}), false),
        (json!({"expr": "${payload.name} > 1"}), false),
        (json!({"expr": "${payload.missing} < 1"}), false),
        (json!({"expr": "${payload.name} contains beta"}), true),
        (json!({"expr": "${payload.name} contains gamma"}), false),
        (json!({"expr": "${payload.tags} contains \"b\""}), true),
        (json!({"expr": "${payload.tags} contains 3"}), true),
        (json!({"expr": "${payload.tags} contains c"}), false),
        (json!({"expr": "${payload.meta} contains k"}), true),
        (json!({"expr": "${payload.meta} contains z"}), false),
        (json!({"expr": "${payload.score} contains 7"}), false),
        (
            json!({"expr": "${payload.name} in [\"alpha-beta\", \"x\"]"}),
            true,
        ),
        (json!({"expr": "${payload.score} in [\"7\"]"}), true),
        (json!({"expr": "${payload.name} in []"}), false),
        (json!({"expr": "${payload.flag} exists"}), true),
        (json!({"expr": "${payload.nothing} exists"}), false),
        (json!({"expr": "${payload.missing} exists"}), false),
        (json!({"path": "payload.items.1.id", "value": "y"}), true),
        (json!({"path": "payload.items.5.id", "op": "exists"}), false),
        (
            json!({"path": "payload.items.first", "op": "exists"}),
            false,
        ),
        (json!({"path": "payload.name.0", "op": "exists"}), false),
        (
            json!({"path": "message.headers.level", "op": "in", "value": ["high", "critical"]}),
            true,
        ),
        (
            json!({"path": "message.body.score", "op": ">=", "value": 7}),
            true,
        ),
        (json!({"path": "state.count", "op": "<", "value": 2}), false),
        (
            json!({"all": [{"expr": "${payload.score} > 1"}, {"expr": "${state.count} == 2"}]}),
            true,
        ),
        (
            json!({"all": [{"expr": "${payload.score} > 1"}, {"expr": "${state.count} == 3"}]}),
            false,
        ),
        (json!({"all": []}), true),
        (
            json!({"any": [{"expr": "${payload.score} > 100"}, {"expr": "${state.count} == 2"}]}),
            true,
        ),
        (json!({"any": []}), false),
        (json!({"not": {"expr": "${payload.flag} exists"}}), false),
        (json!({"not": {}}), false),
    ];
    for (cond, expected) in cases {
        let parsed = parse(cond.clone()).unwrap_or_else(|e| panic!("{cond}: {e}"));
        assert_eq!(parsed.matches(&ctx), expected, "{cond}");
    }
}

#[test]
fn canonical_form_parses_back_to_the_same_condition() {
    let inputs = [
        json!({}),
        json!({"expr": "${payload.a} contains 'x'"}),
        json!({"not": {"all": [{"expr": "${p} exists"}, {"path": "q", "op": "in", "value": [1]}]}}),
    ];
    for input in inputs {
        let parsed = parse(input.clone()).expect("valid");
        assert_eq!(parse(parsed.to_value()), Ok(parsed), "{input}");
    }
}
