//! `mirror-neuron serve`: run a node and its gRPC API until SIGINT or SIGTERM, then stop
//! taking calls, hand the node's jobs back (leases released), and exit.

use std::sync::Arc;

use crate::api::context::ApiContext;
use crate::api::server::{self, ServerConfig};
use crate::runtime::Backend;
use crate::runtime::node::{Node, NodeConfig};

/// The node name: `MN_NODE_NAME`, else `<hostname>-<short id>`.
pub fn node_name() -> String {
    crate::config::var("MN_NODE_NAME").unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        let short = &uuid::Uuid::new_v4().simple().to_string()[..6];
        format!("{}-{short}", host.unwrap_or_else(|| "node".into()))
    })
}

/// A server must not die because a peer hung up. `main` restores the default SIGPIPE so that
/// `job list | head` ends quietly, but h2 writes with `writev`, which raises SIGPIPE on a
/// socket the client already closed (the GOAWAY sent at shutdown hit it); ignored, such a
/// write is an ordinary EPIPE error on that one connection.
fn ignore_sigpipe() {
    // SAFETY: signal(2) changes the process-wide disposition of SIGPIPE only; no handler is
    // installed for it anywhere in this program.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

pub async fn run() -> anyhow::Result<i32> {
    ignore_sigpipe();
    let cfg = ServerConfig::from_env()?;
    // A blob or artifact root that is not a usable folder fails here, naming the variable,
    // rather than in every step.
    crate::runtime::artifacts::roots::validate_from_env()?;
    let retention_period = crate::runtime::history::retention::retention_from_env()?;
    let backend = Backend::open().await?;
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.addr))?;
    let name = node_name();
    let _poller = start_metrics(&backend.store)?;
    let node = Arc::new(Node::start(
        backend.store.clone(),
        NodeConfig::from_env(&name)?,
    )?);
    // Schedules are swept by the cluster leader only.
    let (stop_schedules, schedules_stopped) = tokio::sync::watch::channel(false);
    let leading = node.leadership();
    let schedules = tokio::spawn(crate::runtime::schedules::run_schedule_loop(
        backend.store.clone(),
        move || leading.load(std::sync::atomic::Ordering::Relaxed),
        schedules_stopped,
    ));
    // Finished jobs' histories are archived past the retention, by the leader only.
    let retention = crate::runtime::history::retention::run_retention_loop(
        backend.store.clone(),
        crate::runtime::blobs::BlobStore::from_env(),
        node.name().to_string(),
        retention_period,
        {
            let leading = node.leadership();
            move || leading.load(std::sync::atomic::Ordering::Relaxed)
        },
        stop_schedules.subscribe(),
    );
    let retention = tokio::spawn(retention);
    // Rollouts are moved along by the leader only (any node may record requests).
    let deployments = tokio::spawn(crate::runtime::deployments::run_deployment_loop(
        backend.store.clone(),
        {
            let leading = node.leadership();
            move || leading.load(std::sync::atomic::Ordering::Relaxed)
        },
        stop_schedules.subscribe(),
    ));
    let ctx = ApiContext {
        store: backend.store.clone(),
        node: node.clone(),
        bundles_dir: crate::config::home_dir().join("bundles"),
    };
    eprintln!(
        "mirror-neuron node {name} serving gRPC on {} (Ctrl-C to stop)",
        listener.local_addr()?
    );
    let result = server::serve(ctx, cfg, listener, async {
        if let Err(e) = wait_for_signal().await {
            tracing::error!(error = %e, "cannot wait for signals; stopping");
        }
        eprintln!("stopping: finishing calls, handing jobs back");
    })
    .await;
    let _ = stop_schedules.send(true);
    let _ = schedules.await;
    let _ = retention.await;
    let _ = deployments.await;
    node.shutdown().await;
    backend.close().await;
    result.map(|()| 0)
}

/// Serves `/metrics` (unless `MN_METRICS_PORT=0`) and keeps the polled gauges current.
/// A port that is taken turns metrics off with a warning rather than keeping the node down:
/// several nodes on one machine must not fail because they share the default port.
fn start_metrics(
    store: &crate::store::Store,
) -> anyhow::Result<Option<crate::runtime::metrics_poller::Poller>> {
    let Some(addr) = crate::metrics::addr_from_env()? else {
        return Ok(None);
    };
    let pools = crate::runtime::executor::ExecutorPools::from_env()?.names();
    if let Err(e) = crate::metrics::install(addr, &pools) {
        eprintln!("warning: metrics are off: {e:#} (set MN_METRICS_PORT to a free port, or 0)");
        return Ok(None);
    }
    eprintln!("metrics on http://{addr}/metrics");
    Ok(Some(crate::runtime::metrics_poller::Poller::start(
        store.clone(),
        crate::runtime::metrics_poller::interval_from_env()?,
    )))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
