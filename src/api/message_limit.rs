//! The gRPC message size limit (`MN_GRPC_MAX_MESSAGE_BYTES`), shared by the server and our
//! CLI client. Bundles travel inside requests, so an upload is what usually meets it; both
//! sides say so in words that name the setting, rather than as a transport error.

use tonic::{Code, Status};

/// The setting that sets the limit, for the server and for our client.
pub const ENV: &str = "MN_GRPC_MAX_MESSAGE_BYTES";
/// Default limit: bundles travel inside requests.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The limit from `MN_GRPC_MAX_MESSAGE_BYTES`, else the default.
pub fn from_env() -> Result<usize, crate::config::ConfigError> {
    let bytes = crate::config::u64_var(ENV, DEFAULT_MAX_MESSAGE_BYTES as u64)?;
    Ok(usize::try_from(bytes).unwrap_or(usize::MAX))
}

/// Refuses a request of `bytes` (its encoded size) before it is sent: tonic would otherwise
/// fail it half way through the stream, and the caller would see only an h2 protocol error.
pub fn check_request(what: &str, bytes: usize, limit: usize) -> Result<(), Status> {
    if bytes <= limit {
        return Ok(());
    }
    Err(Status::out_of_range(format!(
        "{what} is {bytes} bytes, over the gRPC message limit of {limit} bytes; \
         make it smaller, or raise {ENV} (on the server, and for this client)"
    )))
}

/// Whether `status` is tonic's refusal of a message over a size limit (ours or the peer's).
fn is_size_refusal(status: &Status) -> bool {
    matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted)
        && status.message().contains("message length too large")
}

/// The status with a message that names the setting, when it is a size refusal; otherwise
/// the status unchanged.
pub fn explain(status: Status) -> Status {
    if !is_size_refusal(&status) {
        return status;
    }
    Status::new(
        status.code(),
        format!(
            "a gRPC message is over the size limit ({}); the limit is {ENV} \
             (default {DEFAULT_MAX_MESSAGE_BYTES} bytes), on the server and for this client",
            status.message()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_request_is_refused_naming_the_setting() {
        assert!(check_request("the upload", 10, 10).is_ok());
        let s = check_request("the upload", 11, 10).expect_err("over the limit");
        assert_eq!(s.code(), Code::OutOfRange);
        assert!(s.message().contains("11 bytes"), "{}", s.message());
        assert!(s.message().contains("limit of 10 bytes"), "{}", s.message());
        assert!(s.message().contains(ENV), "{}", s.message());
    }

    #[test]
    fn tonic_size_refusals_are_explained_and_others_kept() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 200 bytes, the limit is: 100 bytes",
        );
        let s = explain(tonic);
        assert!(s.message().contains(ENV), "{}", s.message());
        assert!(s.message().contains("found 200 bytes"), "{}", s.message());
        let other = explain(Status::out_of_range("page token past the end"));
        assert_eq!(other.message(), "page token past the end");
    }
}
