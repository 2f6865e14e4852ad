//! Shared checks of executor outcomes for the runner tests (host, sandbox, container).

use mirror_neuron::runtime::executor::{ExecFailure, ExecOutcome, ExecSuccess};

pub fn ok(outcome: ExecOutcome) -> ExecSuccess {
    outcome.unwrap_or_else(|f| panic!("expected success, got {f:?}"))
}

pub fn err(outcome: ExecOutcome) -> ExecFailure {
    match outcome {
        Ok(s) => panic!("expected failure, got {s:?}"),
        Err(f) => f,
    }
}

/// A script that tries to connect to `port` on loopback and says whether it could.
pub fn connect_script(port: u16) -> String {
    format!(
        "if (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; then echo connected; \
         else echo refused; fi"
    )
}
