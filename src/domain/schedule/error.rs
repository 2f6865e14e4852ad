//! Errors of the schedule aggregate. Spec errors name the JSON path of the offending field
//! (`schedule.cron[1]`, `trigger.filters.amount`) so an author can fix it without guessing.

/// A schedule spec field that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl SpecError {
    pub fn new(field: &str, message: impl Into<String>) -> SpecError {
        SpecError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Why a schedule command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule was not found")]
    NotFound,
    #[error("schedule already exists")]
    AlreadyExists,
    #[error("cannot {action} a schedule that is {status}")]
    WrongStatus {
        action: &'static str,
        status: &'static str,
    },
    #[error(transparent)]
    Invalid(#[from] SpecError),
}
