//! `http`: one request; the status must be in `expected_status` and the body must contain
//! `contains` when set. Plain HTTP/1.1 (no TLS client in this runtime).

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::{Probe_, Target};
use crate::domain::service::spec::HttpProbe;

/// How much of a body `contains` reads: a health page, not a download.
const BODY_LIMIT: usize = 1 << 20;

/// The URL a check requests.
pub(super) fn url(probe: &HttpProbe, target: &Target) -> Result<String, String> {
    if let Some(url) = &probe.url {
        return Ok(url.clone());
    }
    let port = target.port.ok_or("no port or url to request")?;
    let path = if probe.path.starts_with('/') {
        probe.path.clone()
    } else {
        format!("/{}", probe.path)
    };
    Ok(format!(
        "{}://{}:{port}{path}",
        probe.scheme, target.address
    ))
}

pub(super) async fn check(probe: &HttpProbe, target: &Target) -> Probe_ {
    let url = url(probe, target).map_err(|e| (e, json!({})))?;
    let mut details = json!({"url": url, "method": probe.method});
    let fail = |e: String, d: &serde_json::Value| (e, d.clone());
    let uri: http::Uri = url
        .parse()
        .map_err(|e| fail(format!("invalid url: {e}"), &details))?;
    if uri.scheme_str() != Some("http") {
        return Err(fail(
            "only http:// urls can be checked (this runtime has no TLS client)".into(),
            &details,
        ));
    }
    let host = uri.host().unwrap_or("127.0.0.1").to_string();
    let addr = format!("{host}:{}", uri.port_u16().unwrap_or(80));
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| fail(format!("cannot connect to {addr}: {e}"), &details))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(format!("http handshake with {addr} failed: {e}"), &details))?;
    // The connection task ends when the sender is dropped at the end of this check.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request =
        request(probe, &uri, &host).map_err(|e| fail(format!("invalid request: {e}"), &details))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| fail(format!("request failed: {e}"), &details))?;
    let status = response.status().as_u16();
    details["status_code"] = json!(status);
    if !probe
        .expected_status
        .iter()
        .any(|(lo, hi)| (*lo..=*hi).contains(&status))
    {
        return Err(fail(format!("unexpected status {status}"), &details));
    }
    if let Some(needle) = &probe.contains {
        let body = Limited::new(response.into_body(), BODY_LIMIT)
            .collect()
            .await
            .map_err(|e| fail(format!("cannot read the body: {e}"), &details))?
            .to_bytes();
        if !String::from_utf8_lossy(&body).contains(needle.as_str()) {
            return Err(fail(format!("body does not contain {needle:?}"), &details));
        }
    }
    Ok(details)
}

fn request(
    probe: &HttpProbe,
    uri: &http::Uri,
    host: &str,
) -> Result<http::Request<Full<Bytes>>, http::Error> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = http::Request::builder()
        .method(probe.method.as_str())
        .uri(path)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, "mirror-neuron-service-check");
    for (k, v) in &probe.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = match &probe.body {
        Some(b) => {
            builder = builder.header(http::header::CONTENT_TYPE, probe.content_type.as_str());
            Bytes::from(b.clone())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body))
}
