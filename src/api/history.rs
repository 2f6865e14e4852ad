//! `mirrorneuron.history.v1.HistoryService`: `StreamJobHistory`, a job's raw stored entries in
//! pages, hot or archived (what `job history|replay|export --target` read). A bounded channel
//! of two pages sits between the reader and the client, so the server holds at most a few
//! pages of a history, however long, and a slow client slows the reader instead.

use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::context::ApiContext;
use super::pb::history::history_service_server::HistoryService;
use super::pb::history::{HistoryEntry, HistoryPage, StreamJobHistoryRequest};
use super::status;
use crate::runtime::blobs::BlobStore;
use crate::runtime::history::{DEFAULT_PAGE, HistoryPages};
use crate::store::validate_job_id;

/// Largest page a client may ask for (bounds one message and the server's memory).
const MAX_PAGE: usize = 5000;

/// The service implementation.
#[derive(Clone)]
pub struct History {
    ctx: ApiContext,
}

impl History {
    pub fn new(ctx: ApiContext) -> Self {
        History { ctx }
    }
}

type PageStream = Pin<Box<dyn Stream<Item = Result<HistoryPage, Status>> + Send>>;

/// The page size a request asks for, within bounds.
fn page_size(asked: u32) -> usize {
    match asked as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

#[tonic::async_trait]
impl HistoryService for History {
    async fn stream_job_history(
        &self,
        request: Request<StreamJobHistoryRequest>,
    ) -> Result<Response<PageStream>, Status> {
        let req = request.into_inner();
        validate_job_id(&req.job_id).map_err(|e| status::job_id(&e))?;
        if req.to_seq != 0 && req.to_seq < req.from_seq {
            return Err(Status::invalid_argument(format!(
                "to_seq ({}) must not be below from_seq ({})",
                req.to_seq, req.from_seq
            )));
        }
        let to = (req.to_seq != 0).then_some(req.to_seq);
        let pages = HistoryPages::open(
            &self.ctx.store,
            &BlobStore::from_env(),
            &req.job_id,
            req.from_seq,
            to,
            page_size(req.page_size),
        )
        .await
        .map_err(|e| status::history(&e))?
        .ok_or_else(|| Status::not_found(format!("job {} was not found", req.job_id)))?;
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(pump(pages, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Sends pages until the end, an error, or the client going away.
async fn pump(mut pages: HistoryPages, tx: mpsc::Sender<Result<HistoryPage, Status>>) {
    loop {
        let msg = match pages.next_page().await {
            Ok(None) => return,
            Ok(Some(entries)) => Ok(HistoryPage {
                job_id: pages.job_id().to_string(),
                entries: entries
                    .into_iter()
                    .map(|e| HistoryEntry {
                        seq: e.seq,
                        event: e.bytes,
                    })
                    .collect(),
                last_seq: pages.last_seq(),
                archived: pages.archived(),
            }),
            Err(e) => Err(status::history(&e)),
        };
        let failed = msg.is_err();
        if tx.send(msg).await.is_err() || failed {
            return;
        }
    }
}
