//! Ctrl-C (SIGINT) and SIGTERM during a copy: caught from the first change on, so that the
//! copy ends through the same path as a failure — migration pods removed, owners scaled back —
//! instead of dying with the application stopped.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signals being watched.
pub(super) struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Starts catching SIGINT and SIGTERM (their default action, ending the process, is off
    /// from now on).
    pub(super) fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for one and names it.
    pub(super) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "Ctrl-C (SIGINT)",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
