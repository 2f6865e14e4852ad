//! The one place the runtime reads the wall clock; the domain receives time as an argument.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
