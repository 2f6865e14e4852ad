//! Which failures are worth another attempt, decided where the failure is observed.
//!
//! Transient: a spawn that failed for lack of resources (`EAGAIN`, `ENOMEM`, `EMFILE`, `ENFILE`,
//! `ETXTBSY`), or a non-zero exit whose stdout/stderr mentions a network-flake marker (the list
//! of the original runtime, matched case-insensitively). Timeouts are NOT transient unless the
//! node sets `retry_on_timeout: true`: a command that hung once usually hangs again and each try
//! holds a slot for the full timeout. Staging, pool and bad-output failures are never retried:
//! they are manifest or program bugs. Known limit (spec weakness 13): markers are still substring
//! matches, so a worker that prints "unavailable" in a log line is retried.

use std::time::Duration;

/// Substrings that mark an exit failure as transient.
pub const TRANSIENT_MARKERS: &[&str] = &[
    "h2 protocol error",
    "peer closed connection",
    "status: unknown",
    "error reading a body from connection",
    "tls close_notify",
    "transport error",
    "connection reset",
    "connection refused",
    "timed out",
    "deadline exceeded",
    "unavailable",
];

/// Longest wait between attempts, whatever the configured backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The first transient marker found in the output, if any.
pub fn transient_marker(stdout: &str, stderr: &str) -> Option<&'static str> {
    let (out, err) = (stdout.to_lowercase(), stderr.to_lowercase());
    TRANSIENT_MARKERS
        .iter()
        .copied()
        .find(|m| out.contains(m) || err.contains(m))
}

/// Whether a spawn error is a passing resource shortage.
pub fn transient_spawn_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE | libc::ETXTBSY)
    )
}

/// `base_ms * 2^(attempt-1)`, capped at five minutes.
pub fn backoff(base_ms: u64, attempt: u32) -> Duration {
    let factor = 1u64
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u64::MAX);
    Duration::from_millis(base_ms.saturating_mul(factor)).min(MAX_BACKOFF)
}
