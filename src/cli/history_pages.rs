//! Where `job history`, `replay` and `export` get a history from: the local store (hot stream
//! or archive, through `runtime::history`) or a server's `StreamJobHistory`. Both yield the
//! same decoded pages, so the commands have one code path and hold one page at a time.

use crate::api::client::Client;
use crate::api::pb::history::{HistoryPage, StreamJobHistoryRequest};
use crate::runtime::blobs::BlobStore;
use crate::runtime::history::{DEFAULT_PAGE, HistoryPages, decode_item};
use crate::store::{HistoryItem, RawEntry, Store, validate_job_id};

/// A job's history, page by page.
pub enum PageSource {
    Local(Box<HistoryPages>),
    Remote {
        job_id: String,
        stream: Box<tonic::Streaming<HistoryPage>>,
        next_seq: u64,
    },
}

fn not_found(job_id: &str) -> anyhow::Error {
    anyhow::anyhow!("job {job_id} was not found (it has no history)")
}

impl PageSource {
    /// The history of `job_id` in this machine's store, from `from_seq` on.
    pub async fn local_from(
        store: &Store,
        job_id: &str,
        from_seq: u64,
    ) -> anyhow::Result<PageSource> {
        validate_job_id(job_id)?;
        let pages = HistoryPages::open(
            store,
            &BlobStore::from_env(),
            job_id,
            from_seq,
            None,
            DEFAULT_PAGE,
        )
        .await?
        .ok_or_else(|| not_found(job_id))?;
        Ok(PageSource::Local(Box::new(pages)))
    }

    /// The history of `job_id` from `from_seq` on, as the server streams it.
    pub async fn remote_from(
        client: &mut Client,
        job_id: &str,
        from_seq: u64,
    ) -> anyhow::Result<PageSource> {
        validate_job_id(job_id)?;
        let request = StreamJobHistoryRequest {
            job_id: job_id.into(),
            from_seq,
            to_seq: 0,
            page_size: DEFAULT_PAGE as u32,
        };
        let stream = client
            .history
            .stream_job_history(request)
            .await
            .map_err(super::remote::failed)?
            .into_inner();
        Ok(PageSource::Remote {
            job_id: job_id.into(),
            stream: Box::new(stream),
            next_seq: from_seq,
        })
    }

    pub fn job_id(&self) -> &str {
        match self {
            PageSource::Local(p) => p.job_id(),
            PageSource::Remote { job_id, .. } => job_id,
        }
    }

    /// The next page of decoded entries, `Ok(None)` at the end.
    pub async fn next_page(&mut self) -> anyhow::Result<Option<Vec<HistoryItem>>> {
        let (job_id, raw) = match self {
            PageSource::Local(pages) => {
                let raw = pages.next_page().await?;
                (pages.job_id().to_string(), raw)
            }
            PageSource::Remote {
                job_id,
                stream,
                next_seq,
            } => {
                let Some(page) = stream.message().await.map_err(super::remote::failed)? else {
                    return Ok(None);
                };
                let raw = checked(job_id, next_seq, page)?;
                (job_id.clone(), Some(raw))
            }
        };
        Ok(raw.map(|entries| entries.iter().map(|e| decode_item(&job_id, e)).collect()))
    }
}

/// A server's page as raw entries, refusing one of another job or out of order (a confused
/// or hostile server must not make a replay silently wrong).
fn checked(job_id: &str, next_seq: &mut u64, page: HistoryPage) -> anyhow::Result<Vec<RawEntry>> {
    if page.job_id != job_id {
        anyhow::bail!(
            "the server sent a history page of job {:?} for job {job_id}",
            page.job_id
        );
    }
    page.entries
        .into_iter()
        .map(|e| {
            if e.seq < *next_seq {
                anyhow::bail!(
                    "the server sent seq {} after seq {} of job {job_id}",
                    e.seq,
                    *next_seq - 1
                );
            }
            *next_seq = e.seq + 1;
            Ok(RawEntry {
                seq: e.seq,
                bytes: e.event,
            })
        })
        .collect()
}
