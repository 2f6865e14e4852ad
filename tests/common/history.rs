//! Checks the invariants every job history must keep, whatever crashed or was partitioned
//! while it was written: sequences gapless from 1, exactly one terminal event for a finished
//! job and nothing after it, and no event carrying an epoch older than one already written.

use mirror_neuron::domain::event::EventEnvelope;
use mirror_neuron::store::Store;

/// Panics with a description of the first broken invariant. Returns the decoded events.
pub async fn check_history(store: &Store, job_id: &str, finished: bool) -> Vec<EventEnvelope> {
    let items = store.history(job_id, 1, None).await.expect("history");
    let mut events = vec![];
    for (i, item) in items.iter().enumerate() {
        assert_eq!(
            item.seq,
            i as u64 + 1,
            "{job_id}: gap in the history at {}",
            i + 1
        );
        let env = item
            .event
            .as_ref()
            .unwrap_or_else(|e| panic!("{job_id}: undecodable event at {}: {e}", item.seq));
        assert_eq!(
            env.seq, item.seq,
            "{job_id}: envelope seq differs from stream id"
        );
        events.push(env.clone());
    }
    let mut max_epoch = 0;
    let mut terminal_at = None;
    for e in &events {
        assert!(
            e.epoch >= max_epoch,
            "{job_id}: event {} ({}) written with epoch {} after epoch {max_epoch}",
            e.seq,
            e.event_type,
            e.epoch
        );
        max_epoch = e.epoch;
        if let Some(t) = terminal_at {
            panic!(
                "{job_id}: event {} ({}) appended after the terminal event {t}",
                e.seq, e.event_type
            );
        }
        if e.payload.is_terminal() {
            terminal_at = Some(e.seq);
        }
    }
    if finished {
        assert!(
            terminal_at.is_some(),
            "{job_id}: finished job without a terminal event"
        );
    }
    events
}
