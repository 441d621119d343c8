//! Exit codes shared by every plugin, so scripts can tell findings from failures.

/// The command ran and found nothing that needs attention.
pub const OK: u8 = 0;
/// The command ran and reports findings: an upgrade that is not `safe`, a difference, a step left.
pub const FINDINGS: u8 = 1;
/// The command could not do its work: bad input, an unreachable cluster, a failed step.
pub const ERROR: u8 = 2;

/// Prints an error as kubectl does (`error: …`, causes joined by `: `) and returns [`ERROR`].
///
/// A closed standard output (`| head`) is not an error worth a message.
pub fn report_error(err: &anyhow::Error) -> std::process::ExitCode {
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if !broken_pipe {
        eprintln!("error: {err:#}");
    }
    std::process::ExitCode::from(ERROR)
}
