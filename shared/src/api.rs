//! Errors from the API server and the client, each on one line: the server's own message and
//! reason for API errors, the cause chain for transport errors — never a debug dump, and never
//! the same cause twice.

/// Describes a client error in one line.
pub fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        // kube prefixes a middleware's error with "ServiceError: "; the error says enough.
        kube::Error::Service(inner) => chain(inner.as_ref()),
        other => chain(other),
    }
}

/// An error and its causes joined by `: `, leaving out a cause whose text the line already
/// holds (many errors print their source as part of their own message).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read kubeconfig: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = chain(&Repeats(io));
        assert_eq!(text, "cannot read kubeconfig: entity not found");
        let timed_out = kube::Error::Service(Box::new(crate::deadline::TimedOut {
            limit: std::time::Duration::from_secs(3),
        }));
        assert_eq!(
            describe(&timed_out),
            "no answer from the API server within 3s (--request-timeout)"
        );
    }
}
