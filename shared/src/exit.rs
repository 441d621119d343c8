//! Exit codes shared by every plugin, so scripts can tell findings from failures:
//! `0` done (or nothing to do), `1` findings, differences, or a refusal by a safety rule (nothing
//! was changed), `2` bad input or the command could not run.

/// The command ran and found nothing that needs attention.
pub const OK: u8 = 0;
/// The command ran and reports findings: an upgrade that is not `safe`, a difference, a step
/// left, or a safety rule that refused to go on (nothing was changed).
pub const FINDINGS: u8 = 1;
/// The command could not do its work: bad input, an unreachable cluster, a failed step.
pub const ERROR: u8 = 2;

/// A safety rule refused the command before it changed anything: exit code [`FINDINGS`].
/// Anywhere in an error's chain, it decides the exit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// An error that exits with [`FINDINGS`]: a refusal with this message.
pub fn refused(message: impl Into<String>) -> anyhow::Error {
    Refused(message.into()).into()
}

/// The exit code of an error: [`FINDINGS`] for a refusal, [`ERROR`] otherwise.
pub fn code_of(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.downcast_ref::<Refused>().is_some()) {
        FINDINGS
    } else {
        ERROR
    }
}

/// Prints an error as kubectl does (`error: …`, causes joined by `: `) and returns its code
/// ([`code_of`]).
///
/// A closed standard output (`| head`) is not an error worth a message.
pub fn report_error(err: &anyhow::Error) -> std::process::ExitCode {
    report_error_code(err, code_of(err))
}

/// An error and its causes on one line, joined by `: `, leaving out a cause whose text the
/// line already holds: many errors (kube's kubeconfig errors, io errors wrapped with a path)
/// print their source as part of their own message.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Prints an error like [`report_error`] and exits with `code`.
pub fn report_error_code(err: &anyhow::Error, code: u8) -> std::process::ExitCode {
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if !broken_pipe {
        eprintln!("error: {}", one_line(err));
    }
    std::process::ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_anywhere_in_the_chain_exits_1() {
        assert_eq!(code_of(&refused("pvc/x is in use")), FINDINGS);
        assert_eq!(
            code_of(&refused("pvc/x is in use").context("cleanup")),
            FINDINGS
        );
        assert_eq!(code_of(&anyhow::anyhow!("cannot connect")), ERROR);
    }

    #[test]
    fn a_cause_the_message_already_holds_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file (os error 2)");
        #[derive(Debug, thiserror::Error)]
        #[error("failed to read kubeconfig: {0}")]
        struct Read(#[source] std::io::Error);
        let err = anyhow::Error::new(Read(io)).context("cannot read kubeconfig /x");
        assert_eq!(
            one_line(&err),
            "cannot read kubeconfig /x: failed to read kubeconfig: No such file (os error 2)"
        );
    }
}
