//! Ctrl-C and SIGTERM for commands that own a job in this process (`run`, `job recover`).
//! The first signal asks the run to stop and hand the job back; once handlers are installed
//! the default "die at once" is gone, so a second signal restores it by exiting right away
//! (the job's lease then lapses and a serving node adopts the job).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Exit status of a run stopped by a signal (the shell's 128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Installed SIGINT and SIGTERM handlers.
pub struct Interrupts {
    int: Signal,
    term: Signal,
}

impl Interrupts {
    /// Installs the handlers; from here on a signal no longer kills the process by itself.
    pub fn install() -> std::io::Result<Interrupts> {
        Ok(Interrupts {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves on the first signal; a later one ends the process at once.
    pub async fn first(mut self) {
        self.next().await;
        eprintln!(
            "interrupted: stopping the job's steps and handing it back (interrupt again to quit at once)"
        );
        tokio::spawn(async move {
            self.next().await;
            eprintln!(
                "interrupted again: quitting without handing the job back; a serving node adopts it once its lease expires"
            );
            std::process::exit(EXIT_INTERRUPTED);
        });
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// What the user reads after a run handed its job back.
pub fn handed_back_note(job_id: &str) -> String {
    format!(
        "job {job_id} handed back; a serving node will adopt it, or run: mirror-neuron job cancel {job_id}"
    )
}
