//! `mirror-neuron serve`: run a node until SIGINT or SIGTERM, then hand its jobs back.

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

pub async fn run() -> anyhow::Result<i32> {
    let backend = Backend::open().await?;
    let name = node_name();
    let node = Node::start(backend.store.clone(), NodeConfig::from_env(&name)?)?;
    eprintln!("mirror-neuron node {name} serving (Ctrl-C to stop)");
    wait_for_signal().await?;
    eprintln!("stopping: handing jobs back");
    node.shutdown().await;
    backend.close().await;
    Ok(0)
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
