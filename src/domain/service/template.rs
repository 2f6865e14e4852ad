//! `${a.b}` templates in service declarations, resolved when an instance is registered (or a
//! requirement is preflighted) against the context core-spec 9.1 names: `job_id`, `graph_id`,
//! `job_name`, `node`, `env`, `config`, `bundle_root`, `agent_id`, `source_agent_id`,
//! `service` (the declaration itself) and `service_name`. Unresolved paths become "".

use serde_json::{Map, Value};

use super::spec::{Port, ServiceSpec};

/// Where a declaration is being registered; everything a template may name.
#[derive(Debug, Clone, Default)]
pub struct TemplateContext {
    pub job_id: String,
    pub graph_id: String,
    pub job_name: String,
    pub node: String,
    /// The node's `config.environment` (plus the allocation's env for agents); never the
    /// process environment, so a manifest cannot read the runtime's secrets.
    pub env: Map<String, Value>,
    pub config: Value,
    pub bundle_root: String,
    pub agent_id: Option<String>,
    pub source_agent_id: Option<String>,
}

impl TemplateContext {
    fn as_value(&self, spec: &ServiceSpec) -> Value {
        serde_json::json!({
            "job_id": self.job_id, "graph_id": self.graph_id, "job_name": self.job_name,
            "node": self.node, "env": self.env, "config": self.config,
            "bundle_root": self.bundle_root, "agent_id": self.agent_id,
            "source_agent_id": self.source_agent_id,
            "service": serde_json::to_value(spec).unwrap_or(Value::Null),
            "service_name": spec.name,
        })
    }
}

/// The declaration with every template resolved; a port that resolves to digits is a number.
pub fn resolve_spec(spec: &ServiceSpec, ctx: &TemplateContext) -> ServiceSpec {
    let root = ctx.as_value(spec);
    let Ok(raw) = serde_json::to_value(spec) else {
        return spec.clone();
    };
    let mut out: ServiceSpec =
        serde_json::from_value(resolve(&raw, &root)).unwrap_or_else(|_| spec.clone());
    normalize_port(&mut out.port);
    for check in &mut out.checks {
        normalize_port(&mut check.port);
    }
    out
}

fn normalize_port(port: &mut Option<Port>) {
    if let Some(Port::Template(s)) = port
        && let Some(n) = s.trim().parse::<u16>().ok().filter(|n| *n > 0)
    {
        *port = Some(Port::Number(n));
    }
}

/// Every string in `value` with its `${...}` replaced from `ctx`.
pub fn resolve(value: &Value, ctx: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(resolve_str(s, ctx)),
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, ctx)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve(v, ctx)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One string: each `${a.b.c}` becomes the text of that path in `ctx` ("" when missing).
pub fn resolve_str(s: &str, ctx: &Value) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // An unclosed template is text.
            out.push_str(&rest[start..]);
            return out;
        };
        out.push_str(&text(lookup(ctx, after[..end].trim())));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn lookup<'a>(ctx: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(ctx, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn given_a_config_port_when_resolved_then_the_port_is_a_number() {
        let mut spec = ServiceSpec::named("demo");
        spec.port = Some(Port::Template("${config.service.port}".into()));
        spec.address = Some("${env.HOST}".into());
        spec.meta
            .insert("who".into(), json!("${job_id}/${service_name}/${nope.x}"));
        let ctx = TemplateContext {
            job_id: "j1".into(),
            config: json!({"service": {"port": 8123}}),
            env: json!({"HOST": "10.0.0.2"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ..TemplateContext::default()
        };
        let out = resolve_spec(&spec, &ctx);
        assert_eq!(out.port, Some(Port::Number(8123)));
        assert_eq!(out.address.as_deref(), Some("10.0.0.2"));
        assert_eq!(out.meta["who"], json!("j1/demo/"));
    }

    #[test]
    fn unclosed_templates_stay_text() {
        assert_eq!(resolve_str("a ${b", &json!({"b": 1})), "a ${b");
        assert_eq!(resolve_str("${b}${b}", &json!({"b": 1})), "11");
    }
}
