//! `tcp`: the port accepts a connection.

use serde_json::json;

use super::{Probe_, Target};

pub(super) async fn check(target: &Target) -> Probe_ {
    let addr = target.socket().map_err(|e| (e, json!({})))?;
    match tokio::net::TcpStream::connect(&addr).await {
        Ok(_) => Ok(json!({"address": addr})),
        Err(e) => Err((
            format!("cannot connect to {addr}: {e}"),
            json!({"address": addr}),
        )),
    }
}
