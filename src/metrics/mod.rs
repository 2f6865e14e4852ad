//! Prometheus metrics: the exporter (`install`), and the small functions the rest of the
//! runtime calls to record what happened.
//!
//! Why a module of plain functions: instrumented code stays a one-liner
//! (`crate::metrics::lease_renewed("job")`), so instrumentation never obscures the logic it
//! watches and merges cleanly. Without an installed recorder (the CLI, tests) every call is a
//! cheap no-op, which is how the `metrics` facade works. Names, help texts and buckets live
//! in [`names`], the one catalog dashboards and alerts are checked against.

pub mod names;
mod record;

use std::net::{IpAddr, SocketAddr};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use record::*;

use names::{CATALOG, Kind};

/// Default port of the `/metrics` endpoint (`MN_METRICS_PORT`).
pub const DEFAULT_PORT: u16 = 9464;

/// Where `serve` exposes `/metrics`: `MN_METRICS_HOST` (127.0.0.1) : `MN_METRICS_PORT` (9464).
/// `None` when `MN_METRICS_PORT=0` turns the endpoint off.
pub fn addr_from_env() -> anyhow::Result<Option<SocketAddr>> {
    let port = crate::config::u64_var("MN_METRICS_PORT", u64::from(DEFAULT_PORT))?;
    if port == 0 {
        return Ok(None);
    }
    let port = u16::try_from(port)
        .map_err(|_| anyhow::anyhow!("MN_METRICS_PORT must be a port number, got {port}"))?;
    let host = crate::config::var("MN_METRICS_HOST").unwrap_or_else(|| "127.0.0.1".into());
    let ip: IpAddr = match host.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h.parse().map_err(|_| {
            anyhow::anyhow!("MN_METRICS_HOST must be an IP address to bind (got {h:?})")
        })?,
    };
    Ok(Some(SocketAddr::new(ip, port)))
}

fn builder() -> anyhow::Result<PrometheusBuilder> {
    let mut b = PrometheusBuilder::new();
    for m in CATALOG.iter().filter(|m| m.kind == Kind::Histogram) {
        b = b.set_buckets_for_metric(
            Matcher::Full(m.name.to_string()),
            names::buckets_for(m.name),
        )?;
    }
    Ok(b)
}

/// Installs the global recorder and serves `/metrics` on `addr` (from inside the tokio
/// runtime), then describes and registers every metric of the catalog. `pools` are the
/// executor pools of this node, so their series exist before the first run.
pub fn install(addr: SocketAddr, pools: &[String]) -> anyhow::Result<PrometheusHandle> {
    let (recorder, exporter) = builder()?
        .with_http_listener(addr)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
    let handle = recorder.handle();
    ::metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow::anyhow!("a metrics recorder is already installed: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = exporter.await {
            tracing::error!(error = ?e, "metrics endpoint stopped");
        }
    });
    register_all(pools);
    Ok(handle)
}

/// Installs the global recorder without an HTTP endpoint (tests render the handle).
pub fn install_recorder(pools: &[String]) -> anyhow::Result<PrometheusHandle> {
    let handle = builder()?
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
    register_all(pools);
    Ok(handle)
}

/// Gives every catalog metric its help text and an initial series.
fn register_all(pools: &[String]) {
    for m in CATALOG {
        match m.kind {
            Kind::Counter => ::metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => ::metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => {
                ::metrics::describe_histogram!(m.name, ::metrics::Unit::Seconds, m.help)
            }
        }
    }
    record::register_initial(pools);
}
