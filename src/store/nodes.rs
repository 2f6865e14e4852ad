//! Node histories, node views and liveness leases.

use std::time::Duration;

use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Value};

use super::{Store, StoreError};
use crate::domain::node::{
    NodeCommand, NodeEnvelope, NodeError, NodeState, decide, decode_node_event, encode_node_event,
    evolve,
};

/// Why a node command did not apply.
#[derive(Debug, thiserror::Error)]
pub enum NodeCommandError {
    #[error(transparent)]
    Refused(#[from] NodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("node {0}: too many concurrent writers, gave up after retries")]
    Contended(String),
}

impl Store {
    /// Events of `node` with seq greater than `after`.
    pub async fn node_history(
        &self,
        node: &str,
        after: u64,
    ) -> Result<Vec<NodeEnvelope>, StoreError> {
        let reply: StreamRangeReply = self
            .conn()
            .xrange(self.keys().node_events(node), format!("({after}-0"), "+")
            .await?;
        let mut out = Vec::with_capacity(reply.ids.len());
        for entry in reply.ids {
            if let Some(Value::BulkString(bytes)) = entry.map.get("e") {
                match decode_node_event(bytes) {
                    Ok(env) => out.push(env),
                    Err(e) => {
                        tracing::warn!(node, stream_id = %entry.id, error = %e, "skipping undecodable node event")
                    }
                }
            }
        }
        Ok(out)
    }

    /// Folds `node`'s history from `from` onwards.
    pub async fn fold_node(&self, from: NodeState) -> Result<NodeState, StoreError> {
        let name = from.name.clone();
        let events = self.node_history(&name, from.version).await?;
        Ok(events.iter().fold(from, evolve))
    }

    /// Loads a node's state from its history (the write path; reads use [`Store::node_view`]).
    pub async fn load_node(&self, node: &str) -> Result<NodeState, StoreError> {
        self.fold_node(NodeState::new(node)).await
    }

    /// Decides `command` against the node's history and appends the result, retrying when
    /// another writer got there first. Returns the state after the command.
    pub async fn node_command(
        &self,
        node: &str,
        command: &NodeCommand,
        now_ms: i64,
    ) -> Result<NodeState, NodeCommandError> {
        for _ in 0..16 {
            let state = self.load_node(node).await?;
            let events = decide(&state, command)?;
            if events.is_empty() {
                return Ok(state);
            }
            let envs: Vec<NodeEnvelope> = events
                .into_iter()
                .enumerate()
                .map(|(i, event)| NodeEnvelope {
                    node: node.to_string(),
                    seq: state.version + 1 + i as u64,
                    at_ms: now_ms,
                    event,
                })
                .collect();
            let k = self.keys();
            let (stream, feed, registry) = (
                k.node_events(node),
                k.nodes_feed(k.shard_of(node)),
                k.nodes_registry(k.shard_of(node)),
            );
            let mut cmd = self
                .scripts()
                .node_append
                .evalsha(&[&stream, &feed, &registry]);
            cmd.arg(node).arg(state.version).arg(envs.len());
            for env in &envs {
                cmd.arg(encode_node_event(env));
            }
            let reply: Vec<Value> = self.eval(&cmd).await?;
            match first_str(&reply).as_deref() {
                Some("OK") => {
                    let after = envs.iter().fold(state, evolve);
                    // Keep the view current right away for the writer's own reads; the view
                    // workers would get there a moment later anyway.
                    self.put_node_view(&after).await?;
                    return Ok(after);
                }
                Some("CONFLICT") => continue,
                _ => {
                    return Err(StoreError::Protocol {
                        script: "node_append",
                        detail: format!("{reply:?}"),
                    }
                    .into());
                }
            }
        }
        Err(NodeCommandError::Contended(node.to_string()))
    }

    /// Writes a node view unless a newer one is stored.
    pub async fn put_node_view(&self, state: &NodeState) -> Result<bool, StoreError> {
        let key = self.keys().node_view(&state.name);
        let mut cmd = self.scripts().apply_node.evalsha(&[&key]);
        cmd.arg(state.version).arg(state.to_view().to_string());
        let written: i64 = self.eval(&cmd).await?;
        Ok(written == 1)
    }

    /// A node's view.
    pub async fn node_view(&self, node: &str) -> Result<Option<NodeState>, StoreError> {
        let json: Option<String> = self
            .conn()
            .hget(self.keys().node_view(node), "json")
            .await?;
        Ok(json
            .and_then(|j| serde_json::from_str(&j).ok())
            .and_then(|v| NodeState::from_view(&v)))
    }

    /// Every node that ever joined, by name.
    pub async fn node_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = Vec::new();
        for shard in self.keys().shards() {
            let some: Vec<String> = self
                .conn()
                .smembers(self.keys().nodes_registry(shard))
                .await?;
            names.extend(some);
        }
        names.sort();
        Ok(names)
    }

    /// The views of every node, by name.
    pub async fn node_views(&self) -> Result<Vec<NodeState>, StoreError> {
        let names = self.node_names().await?;
        if names.is_empty() {
            return Ok(vec![]);
        }
        let jsons: Vec<Option<String>> = self
            .pipelined(
                &names,
                |n| self.keys().shard_of(n),
                |pipe, n| {
                    pipe.hget(self.keys().node_view(n), "json");
                },
            )
            .await?;
        Ok(names
            .iter()
            .zip(jsons)
            .map(|(name, j)| {
                j.and_then(|j| serde_json::from_str(&j).ok())
                    .and_then(|v| NodeState::from_view(&v))
                    .unwrap_or_else(|| NodeState::new(name))
            })
            .collect())
    }

    /// Renews (or re-takes) the node's liveness lease for `incarnation`.
    pub async fn heartbeat(
        &self,
        node: &str,
        incarnation: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let _: () = redis::cmd("SET")
            .arg(self.keys().node_alive(node))
            .arg(format!("{incarnation}|1"))
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Drops the liveness lease if `incarnation` still holds it (clean shutdown).
    pub async fn drop_heartbeat(&self, node: &str, incarnation: &str) -> Result<(), StoreError> {
        let key = self.keys().node_alive(node);
        let mut cmd = self.scripts().lease_release.evalsha(&[&key]);
        cmd.arg(incarnation).arg(1);
        let _: i64 = self.eval(&cmd).await?;
        Ok(())
    }

    /// The incarnation holding each node's liveness lease.
    pub async fn alive(&self, nodes: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        if nodes.is_empty() {
            return Ok(vec![]);
        }
        let values: Vec<Option<String>> = self
            .pipelined(
                nodes,
                |n| self.keys().shard_of(n),
                |pipe, n| {
                    pipe.get(self.keys().node_alive(n));
                },
            )
            .await?;
        Ok(values
            .into_iter()
            .map(|v| v.and_then(|v| v.rsplit_once('|').map(|(i, _)| i.to_string())))
            .collect())
    }
}

fn first_str(reply: &[Value]) -> Option<String> {
    match reply.first() {
        Some(Value::SimpleString(s)) => Some(s.clone()),
        Some(Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}
