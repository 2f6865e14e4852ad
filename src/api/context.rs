//! What every RPC handler can reach: the store (views, commands) and the local node.

use std::path::PathBuf;
use std::sync::Arc;

use crate::runtime::node::Node;
use crate::store::Store;

/// Shared by all services; cheap to clone.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    /// The node this server runs in: it owns jobs submitted here at once.
    pub node: Arc<Node>,
    /// Where bundles uploaded over gRPC are materialised (`$MN_HOME/bundles`).
    pub bundles_dir: PathBuf,
}
