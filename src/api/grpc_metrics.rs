//! A tower layer on the gRPC server that counts and times every call by method and status
//! code (`mirror_neuron_grpc_requests_total`, `mirror_neuron_grpc_request_duration_seconds`).
//!
//! Why a layer and not an interceptor: interceptors see only requests, and the status code
//! is in the response. The code is read from the response headers, where tonic puts it for
//! every error it answers "trailers-only" (failed unary calls, auth refusals, unknown
//! methods); a call whose status travels in trailers after a body (a stream ending in an
//! error) counts as `OK`. Calls to paths no service knows are labelled `unknown`, so clients
//! cannot grow the label set.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::metrics::{UNKNOWN_METHOD, grpc_request};

/// Wraps every service of the server in [`GrpcMetrics`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower_layer::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> GrpcMetrics<S> {
        GrpcMetrics { inner }
    }
}

/// The service wrapper that records each call when its response headers are ready.
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for GrpcMetrics<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let path = req.uri().path().to_string();
        let started = Instant::now();
        let call = self.inner.call(req);
        Box::pin(async move {
            let result = call.await;
            let code = match &result {
                Ok(response) => code_of(response),
                Err(_) => "INTERNAL",
            };
            let method = match code {
                "UNIMPLEMENTED" => UNKNOWN_METHOD,
                _ => path.trim_start_matches('/'),
            };
            grpc_request(method, code, started.elapsed());
            result
        })
    }
}

/// The canonical gRPC code name of a response (see the module doc for streams).
fn code_of<B>(response: &http::Response<B>) -> &'static str {
    match response.headers().get("grpc-status") {
        Some(v) => code_name(v.to_str().ok().and_then(|s| s.parse().ok())),
        None if response.status() == http::StatusCode::OK => "OK",
        None => "UNKNOWN",
    }
}

fn code_name(code: Option<u8>) -> &'static str {
    match code {
        Some(0) => "OK",
        Some(1) => "CANCELLED",
        Some(3) => "INVALID_ARGUMENT",
        Some(4) => "DEADLINE_EXCEEDED",
        Some(5) => "NOT_FOUND",
        Some(6) => "ALREADY_EXISTS",
        Some(7) => "PERMISSION_DENIED",
        Some(8) => "RESOURCE_EXHAUSTED",
        Some(9) => "FAILED_PRECONDITION",
        Some(10) => "ABORTED",
        Some(11) => "OUT_OF_RANGE",
        Some(12) => "UNIMPLEMENTED",
        Some(13) => "INTERNAL",
        Some(14) => "UNAVAILABLE",
        Some(15) => "DATA_LOSS",
        Some(16) => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: http::StatusCode, grpc: Option<&str>) -> http::Response<()> {
        let mut b = http::Response::builder().status(status);
        if let Some(g) = grpc {
            b = b.header("grpc-status", g);
        }
        b.body(()).expect("a response")
    }

    #[test]
    fn codes_come_from_the_headers() {
        use http::StatusCode;
        assert_eq!(code_of(&response(StatusCode::OK, None)), "OK");
        assert_eq!(code_of(&response(StatusCode::OK, Some("5"))), "NOT_FOUND");
        assert_eq!(
            code_of(&response(StatusCode::OK, Some("16"))),
            "UNAUTHENTICATED"
        );
        assert_eq!(code_of(&response(StatusCode::OK, Some("x"))), "UNKNOWN");
        assert_eq!(code_of(&response(StatusCode::NOT_FOUND, None)), "UNKNOWN");
    }
}
