//! `mirrorneuron.observability.v1.ObservabilityService`: a job's events, replayed from its
//! history and then (with `follow`) live, with heartbeats, closed after the terminal event.

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::context::ApiContext;
use super::event_json;
use super::follow::Follower;
use super::pb::observability::observability_service_server::ObservabilityService;
use super::pb::observability::{EventResponse, StreamEventsRequest};
use super::status;
use crate::runtime::clock::now_ms;
use crate::store::{Store, validate_job_id};

/// Heartbeat interval when the client asks for 0.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// The service implementation.
#[derive(Clone)]
pub struct Observability {
    ctx: ApiContext,
}

impl Observability {
    pub fn new(ctx: ApiContext) -> Self {
        Observability { ctx }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<EventResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ObservabilityService for Observability {
    async fn stream_events(
        &self,
        request: Request<StreamEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let req = request.into_inner();
        validate_job_id(&req.job_id).map_err(|e| status::job_id(&e))?;
        let store = self.ctx.store.clone();
        if crate::runtime::history::version(&store, &req.job_id)
            .await
            .map_err(|e| status::history(&e))?
            == 0
        {
            return Err(Status::not_found(format!(
                "job {} was not found",
                req.job_id
            )));
        }
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(pump(store, req, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Entries read per round trip while streaming a history.
const FOLLOW_PAGE: usize = 500;

/// Sends history, then live events when following, until the terminal event, the limit, or
/// the client going away.
async fn pump(
    store: Store,
    req: StreamEventsRequest,
    tx: mpsc::Sender<Result<EventResponse, Status>>,
) {
    let limit = if req.limit > 0 {
        req.limit as usize
    } else {
        usize::MAX
    };
    let mut follower = Follower::new(req.heartbeat_interval_ms, DEFAULT_HEARTBEAT);
    let mut sent = 0usize;
    let mut next = 1u64;
    let blobs = crate::runtime::blobs::BlobStore::from_env();
    loop {
        // Hot or archived (a finished job's history may have been archived); a page at a
        // time, so following a long job never holds its whole history.
        let batch = match crate::runtime::history::read_page(
            &store,
            &blobs,
            &req.job_id,
            next,
            FOLLOW_PAGE,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.send(Err(status::history(&e))).await;
                return;
            }
        };
        let full = batch.len() == FOLLOW_PAGE;
        for item in batch {
            next = item.seq + 1;
            let Ok(env) = item.event else { continue };
            for json in event_json::to_json_events(&env) {
                if tx
                    .send(Ok(EventResponse {
                        event_json: json.to_string(),
                        version: 1,
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            sent += 1;
            if sent >= limit || (req.follow && env.payload.is_terminal()) {
                return;
            }
        }
        if full {
            continue; // more is already there
        }
        if !req.follow {
            return;
        }
        let beat = || EventResponse {
            event_json: event_json::heartbeat(&req.job_id, now_ms()).to_string(),
            version: 1,
        };
        if !follower.idle(&tx, beat).await {
            return;
        }
    }
}
