//! The waiting part shared by the following streams (job events, operation events): send a
//! heartbeat when one is due, then wait for the next poll or for the client to go away.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

/// How often a follower looks for new entries.
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Heartbeat bookkeeping for one following stream.
pub struct Follower {
    every: Duration,
    last_beat: Instant,
}

impl Follower {
    /// Heartbeats every `interval_ms` (`default` when the client sends 0 or less).
    pub fn new(interval_ms: i32, default: Duration) -> Follower {
        let every = if interval_ms > 0 {
            Duration::from_millis(interval_ms as u64)
        } else {
            default
        };
        Follower {
            every,
            last_beat: Instant::now(),
        }
    }

    /// Sends `beat()` if a heartbeat is due, then waits one poll interval. Returns false when
    /// the client has gone away (the stream should end).
    pub async fn idle<T>(
        &mut self,
        tx: &mpsc::Sender<Result<T, Status>>,
        beat: impl FnOnce() -> T,
    ) -> bool {
        if self.last_beat.elapsed() >= self.every {
            if tx.send(Ok(beat())).await.is_err() {
                return false;
            }
            self.last_beat = Instant::now();
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_POLL) => true,
            _ = tx.closed() => false,
        }
    }
}
