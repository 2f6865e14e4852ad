//! `mirrorneuron.operations.v1.OperationsService`: start a bulk operation, read it, and follow
//! its events until it finishes (then the stream closes).

use std::pin::Pin;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::auth::require_admin;
use super::context::ApiContext;
use super::follow::Follower;
use super::operation_run::OperationRun;
use super::pb::operations::operations_service_server::OperationsService;
use super::pb::operations::*;
use super::status;
use crate::domain::view::iso_ms;
use crate::runtime::clock::now_ms;
use crate::store::Store;

const KINDS: &[&str] = &[
    "cancel_all_jobs",
    "clear_jobs",
    "drain_node",
    "reconcile_node",
];

/// The service implementation.
#[derive(Clone)]
pub struct Operations {
    ctx: ApiContext,
}

impl Operations {
    pub fn new(ctx: ApiContext) -> Self {
        Operations { ctx }
    }

    async fn record(&self, id: &str) -> Result<Value, Status> {
        let op = self
            .ctx
            .store
            .operation(id)
            .await
            .map_err(|e| status::store(&e))?;
        op.ok_or_else(|| Status::not_found(format!("operation {id} was not found")))
    }
}

fn finished(record: &Value) -> bool {
    record["status"] != "running"
}

type OpStream = Pin<Box<dyn Stream<Item = Result<OperationEventResponse, Status>> + Send>>;

#[tonic::async_trait]
impl OperationsService for Operations {
    async fn start_operation(
        &self,
        request: Request<StartOperationRequest>,
    ) -> Result<Response<StartOperationResponse>, Status> {
        if matches!(
            request.get_ref().kind.as_str(),
            "cancel_all_jobs" | "clear_jobs"
        ) {
            require_admin(&request)?;
        }
        let req = request.into_inner();
        if !KINDS.contains(&req.kind.as_str()) {
            return Err(Status::invalid_argument(format!(
                "kind must be one of {}; got {:?}",
                KINDS.join(", "),
                req.kind
            )));
        }
        let options = if req.options_json.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str::<Value>(&req.options_json)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| Status::invalid_argument("options_json must be a JSON object"))?
        };
        let id = format!("op-{}", uuid::Uuid::now_v7().simple());
        let run = OperationRun::new(self.ctx.clone(), &id, &req.kind, options);
        let record = run.record.clone();
        self.ctx
            .store
            .put_operation(&id, &record)
            .await
            .map_err(|e| status::store(&e))?;
        tokio::spawn(run.run());
        Ok(Response::new(StartOperationResponse {
            operation_json: record.to_string(),
            version: 1,
        }))
    }

    async fn get_operation(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<GetOperationResponse>, Status> {
        let record = self.record(&request.into_inner().operation_id).await?;
        Ok(Response::new(GetOperationResponse {
            operation_json: record.to_string(),
            version: 1,
        }))
    }

    async fn stream_operation_events(
        &self,
        request: Request<StreamOperationEventsRequest>,
    ) -> Result<Response<OpStream>, Status> {
        let req = request.into_inner();
        self.record(&req.operation_id).await?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(pump(self.ctx.store.clone(), req, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Replays events after `after_sequence`, then (following) new ones until the operation has
/// finished and everything was sent, with heartbeats meanwhile.
async fn pump(
    store: Store,
    req: StreamOperationEventsRequest,
    tx: mpsc::Sender<Result<OperationEventResponse, Status>>,
) {
    let mut follower = Follower::new(req.heartbeat_interval_ms, Duration::from_secs(5));
    let mut after = req.after_sequence.max(0) as u64;
    loop {
        // Read the record before the events: if it was finished then, these events are all.
        let done = match store.operation(&req.operation_id).await {
            Ok(Some(r)) => finished(&r),
            Ok(None) => true,
            Err(e) => {
                let _ = tx.send(Err(status::store(&e))).await;
                return;
            }
        };
        let events = match store.operation_events(&req.operation_id, after).await {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.send(Err(status::store(&e))).await;
                return;
            }
        };
        for event in events {
            after = event["sequence"].as_u64().unwrap_or(after);
            if tx
                .send(Ok(OperationEventResponse {
                    event_json: event.to_string(),
                    version: 1,
                }))
                .await
                .is_err()
            {
                return;
            }
        }
        if done || !req.follow {
            return;
        }
        let beat = || {
            OperationEventResponse {
            event_json: json!({"type": "stream_heartbeat", "operation_id": req.operation_id, "timestamp": iso_ms(now_ms())}).to_string(),
            version: 1,
        }
        };
        if !follower.idle(&tx, beat).await {
            return;
        }
    }
}
