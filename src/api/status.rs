//! One place that maps errors to gRPC status codes, exhaustively.

use tonic::Status;

use crate::domain::job::DomainError;
use crate::runtime::bundle::BundleError;
use crate::runtime::commands::CommandError;
use crate::store::{AppendError, JobIdError, StoreError};

/// Domain refusals: not found, wrong state, conflicts.
pub fn domain(e: &DomainError) -> Status {
    match e {
        DomainError::NotFound => Status::not_found(e.to_string()),
        DomainError::AlreadyExists => Status::already_exists(e.to_string()),
        DomainError::WrongStatus { .. } => Status::failed_precondition(e.to_string()),
        DomainError::StaleLease { .. }
        | DomainError::NotInFlight { .. }
        | DomainError::UnknownAgent(_)
        | DomainError::IncompatibleTopology(_) => Status::failed_precondition(e.to_string()),
        DomainError::UnreadableManifest => Status::internal(e.to_string()),
    }
}

/// Redis trouble: retryable ones are UNAVAILABLE (clients retry), the rest INTERNAL.
pub fn store(e: &StoreError) -> Status {
    if e.is_retryable() {
        Status::unavailable(format!("event store unavailable: {e}"))
    } else {
        Status::internal(e.to_string())
    }
}

/// A write that did not take effect.
pub fn command(e: &CommandError) -> Status {
    match e {
        CommandError::Domain(d) => domain(d),
        CommandError::Contended { .. } => Status::aborted(e.to_string()),
        CommandError::Append(AppendError::Store(s)) | CommandError::Store(s) => store(s),
        CommandError::Append(a) => Status::internal(a.to_string()),
        CommandError::History(h) => history(h),
    }
}

/// A job id that cannot name a job.
pub fn job_id(e: &JobIdError) -> Status {
    Status::invalid_argument(e.to_string())
}

/// An uploaded bundle that cannot run: every validation error, one per line.
pub fn bundle(e: &BundleError) -> Status {
    match e {
        BundleError::Invalid(errors) => {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            Status::invalid_argument(format!("invalid bundle:\n{}", lines.join("\n")))
        }
        BundleError::Io { .. } => Status::internal(e.to_string()),
        other => Status::invalid_argument(other.to_string()),
    }
}

/// A schedule operation that did not take effect.
pub fn schedule(e: &crate::runtime::schedules::ScheduleRunError) -> Status {
    use crate::domain::schedule::ScheduleError;
    use crate::runtime::schedules::ScheduleRunError as E;
    match e {
        E::Schedule(ScheduleError::NotFound) => Status::not_found(e.to_string()),
        E::Schedule(ScheduleError::AlreadyExists) => Status::already_exists(e.to_string()),
        E::Schedule(ScheduleError::WrongStatus { .. }) => {
            Status::failed_precondition(e.to_string())
        }
        E::Schedule(ScheduleError::Invalid(_)) | E::BadId(_) => {
            Status::invalid_argument(e.to_string())
        }
        E::Contended(_) => Status::aborted(e.to_string()),
        E::Store(s) => store(s),
    }
}

/// An RPC of a feature that arrives later: UNIMPLEMENTED, naming the feature.
pub fn later(feature: &str) -> Status {
    Status::unimplemented(format!(
        "{feature} is not available in this mirror-neuron version yet"
    ))
}

/// A history that could not be read: Redis trouble as [`store`]; a missing or damaged
/// archive is DATA_LOSS on this node (the history exists but cannot be served from here).
pub fn history(e: &crate::runtime::history::HistoryError) -> Status {
    use crate::runtime::history::HistoryError as H;
    match e {
        H::Store(s) => store(s),
        H::Blob(_) | H::Format(_) | H::Mismatch(_) => Status::data_loss(e.to_string()),
    }
}

/// A deployment request that did not take effect.
pub fn deployment(e: &crate::runtime::deployments::DeploymentRunError) -> Status {
    use crate::domain::deployment::DeploymentError as D;
    use crate::runtime::deployments::DeploymentRunError as E;
    match e {
        E::Invalid(_) | E::BadKey(_) => Status::invalid_argument(e.to_string()),
        E::NotFound(_) | E::Deployment(D::NotFound { .. }) => Status::not_found(e.to_string()),
        E::Deployment(
            D::Busy { .. }
            | D::WrongStatus { .. }
            | D::NotAwaitingPromotion { .. }
            | D::NoRollbackTarget { .. }
            | D::UnexpectedBatch { .. },
        ) => Status::failed_precondition(e.to_string()),
        E::Deployment(D::UnreadableManifest { .. }) => Status::internal(e.to_string()),
        E::Contended(_) => Status::aborted(e.to_string()),
        E::Job(c) => command(c),
        E::Store(s) => store(s),
    }
}
