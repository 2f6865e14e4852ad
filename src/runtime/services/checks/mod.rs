//! Runs one check of a service and reports a [`CheckResult`] (never an error: a check that
//! cannot run is `critical` with the reason). Each type lives in its own file.

mod grpc;
mod http;
pub mod redact;
mod script;
mod tcp;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::service::spec::{CheckSpec, Probe, ServiceSpec};
use crate::domain::service::{CheckResult, Health, HealthStatus, health};

/// Script checks run commands from manifests, so an operator must opt in (core-spec 9.1).
pub const ALLOW_SCRIPTS_ENV: &str = "MN_CORE_ALLOW_SCRIPT_CHECKS";

/// Whether this process may run script checks.
pub fn scripts_allowed() -> bool {
    crate::config::bool_var(ALLOW_SCRIPTS_ENV, false).unwrap_or_else(|e| {
        // Unreadable consent is no consent.
        tracing::warn!(error = %e, "script checks stay disabled");
        false
    })
}

/// Where a check connects: its own address and port, else the service's.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: String,
    pub port: Option<u16>,
}

impl Target {
    fn of(check: &CheckSpec, service: &ServiceSpec) -> Target {
        Target {
            address: check
                .address
                .clone()
                .or_else(|| service.address.clone())
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: check
                .port
                .as_ref()
                .or(service.port.as_ref())
                .and_then(|p| p.number()),
        }
    }

    fn socket(&self) -> Result<String, String> {
        let port = self.port.ok_or("no port to connect to")?;
        Ok(format!("{}:{port}", self.address))
    }
}

/// What a probe saw: `Ok(details)` passes, `Err((error, details))` is critical.
type Probe_ = Result<Value, (String, Value)>;

/// Runs one check within its timeout.
pub async fn run_check(check: &CheckSpec, service: &ServiceSpec) -> CheckResult {
    let target = Target::of(check, service);
    let limit = Duration::from_millis(check.timeout_ms);
    let started = Instant::now();
    let seen: Probe_ = match tokio::time::timeout(limit, probe(check, service, &target)).await {
        Ok(seen) => seen,
        Err(_) => Err((
            format!("timed out after {} ms", check.timeout_ms),
            Value::Null,
        )),
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (status, details, error) = match seen {
        Ok(d) => (HealthStatus::Passing, d, None),
        Err((e, d)) => (HealthStatus::Critical, d, Some(redact::text(&e))),
    };
    CheckResult {
        name: check.name.clone(),
        kind: check.probe.type_name().into(),
        required: check.required,
        status,
        duration_ms,
        details: Some(redact::value(&details)).filter(|d| !d.is_null()),
        error,
        suppressed_status: None,
        transient_failure: false,
        consecutive_failures: 0,
    }
}

async fn probe(check: &CheckSpec, service: &ServiceSpec, target: &Target) -> Probe_ {
    match &check.probe {
        Probe::Tcp => tcp::check(target).await,
        Probe::Http(h) => http::check(h, target).await,
        Probe::Grpc { service: name } => grpc::check(target, name).await,
        Probe::Script(s) => script::check(s, service, target, scripts_allowed()).await,
    }
}

/// Every check of a service, one round, folded with the previous health (thresholds).
pub async fn check_service(service: &ServiceSpec, previous: Option<&Health>) -> Health {
    let raw = futures::future::join_all(service.checks.iter().map(|c| run_check(c, service))).await;
    health::next_health(previous, &service.checks, raw)
}

/// The checks preflight runs for a requirement: its own, else an implicit http check of its
/// `url`, else a tcp check of its address and port.
pub fn preflight_checks(spec: &ServiceSpec) -> Vec<CheckSpec> {
    if !spec.checks.is_empty() {
        return spec.checks.clone();
    }
    let mut fields = serde_json::Map::new();
    match &spec.url {
        Some(url) => {
            fields.insert("type".into(), "http".into());
            fields.insert("url".into(), url.clone().into());
        }
        None => {
            fields.insert("type".into(), "tcp".into());
        }
    }
    let mut errs = Vec::new();
    let mut entry = serde_json::Map::new();
    entry.insert("name".into(), spec.name.clone().into());
    entry.insert("checks".into(), Value::Array(vec![Value::Object(fields)]));
    crate::domain::service::parse_entry(&Value::Object(entry), "preflight", &mut errs)
        .map(|s| s.checks)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::domain::service::parse_entry;

    fn service(v: serde_json::Value) -> ServiceSpec {
        let mut errs = Vec::new();
        let spec = parse_entry(&v, "s", &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        spec.expect("valid service")
    }

    /// A one-shot-per-connection HTTP server answering `status` with `body`.
    async fn http_server(status: u16, body: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn tcp_passes_on_an_open_port_and_fails_on_a_closed_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let s = service(json!({"name": "t", "port": port, "checks": [{"type": "tcp"}]}));
        assert_eq!(check_service(&s, None).await.status, HealthStatus::Passing);
        drop(listener);
        let h = check_service(&s, None).await;
        assert_eq!(h.status, HealthStatus::Critical);
        assert!(
            h.checks[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("cannot connect"))
        );
    }

    #[tokio::test]
    async fn http_checks_status_ranges_and_body() {
        let ok = http_server(200, "all good").await;
        let s = service(json!({"name": "h", "port": ok, "checks": [
            {"type": "http", "path": "/health?token=abc", "contains": "good"}]}));
        let h = check_service(&s, None).await;
        assert_eq!(h.status, HealthStatus::Passing, "{h:?}");
        let url = h.checks[0].details.as_ref().map(|d| d["url"].clone());
        assert_eq!(
            url,
            Some(json!(format!(
                "http://127.0.0.1:{ok}/health?token=[REDACTED]"
            )))
        );
        let s = service(json!({"name": "h", "port": ok, "checks": [
            {"type": "http", "contains": "bad"}]}));
        assert_eq!(check_service(&s, None).await.status, HealthStatus::Critical);
        let broken = http_server(503, "").await;
        let s = service(json!({"name": "h", "port": broken, "checks": [{"type": "http"}]}));
        assert_eq!(check_service(&s, None).await.status, HealthStatus::Critical);
        let s = service(json!({"name": "h", "port": broken, "checks": [
            {"type": "http", "expected_status": "500..599", "method": "post", "body": {"a": 1}}]}));
        assert_eq!(check_service(&s, None).await.status, HealthStatus::Passing);
    }

    #[tokio::test]
    async fn grpc_checks_ask_the_standard_health_service() {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("llm", tonic_health::ServingStatus::Serving)
            .await;
        reporter
            .set_service_status("down", tonic_health::ServingStatus::NotServing)
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let check = |name: &str| {
            service(json!({"name": "g", "port": port,
                "checks": [{"type": "grpc", "service": name}]}))
        };
        let h = check_service(&check("llm"), None).await;
        assert_eq!(h.status, HealthStatus::Passing, "{h:?}");
        let h = check_service(&check("down"), None).await;
        assert_eq!(h.status, HealthStatus::Critical);
        assert!(
            h.checks[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("NOT_SERVING")),
            "{h:?}"
        );
    }

    #[tokio::test]
    async fn a_check_that_hangs_fails_at_its_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // Accepts and never answers.
        let _hold = tokio::spawn(async move {
            let mut held = vec![];
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let s = service(json!({"name": "h", "port": port, "checks": [
            {"type": "http", "timeout_ms": 200}]}));
        let h = check_service(&s, None).await;
        assert_eq!(h.status, HealthStatus::Critical);
        assert!(
            h.checks[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("timed out"))
        );
    }

    #[tokio::test]
    async fn script_checks_are_refused_unless_enabled() {
        let s = service(json!({"name": "s", "checks": [{"type": "script", "command": ["true"]}]}));
        let target = Target {
            address: "127.0.0.1".into(),
            port: None,
        };
        let Probe::Script(p) = &s.checks[0].probe else {
            panic!("script probe expected")
        };
        let refused = script::check(p, &s, &target, false).await;
        assert!(refused.is_err_and(|(e, _)| e.contains(ALLOW_SCRIPTS_ENV)));
        assert!(script::check(p, &s, &target, true).await.is_ok());
        let failing = ScriptProbeFixture::failing();
        assert!(script::check(&failing, &s, &target, true).await.is_err());
    }

    struct ScriptProbeFixture;

    impl ScriptProbeFixture {
        fn failing() -> crate::domain::service::spec::ScriptProbe {
            crate::domain::service::spec::ScriptProbe {
                command: vec!["false".into()],
                env: Default::default(),
                root_path: None,
            }
        }
    }

    #[test]
    fn preflight_makes_an_implicit_check_from_the_address() {
        let s = service(json!({"name": "db", "address": "10.0.0.1", "port": 5432}));
        let checks = preflight_checks(&s);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].probe, Probe::Tcp);
        let s = service(json!({"name": "web", "url": "http://h/health"}));
        assert!(
            matches!(&preflight_checks(&s)[0].probe, Probe::Http(h) if h.url.as_deref() == Some("http://h/health"))
        );
    }
}
