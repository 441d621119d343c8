//! One long-lived client session: writes steps (see [`crate::protocol`]) to the client's
//! stdin and reads its stdout up to each step's marker, watching stderr for a lost
//! connection. The streams come from anywhere — an exec session in the database pod, or a
//! local client process (benchmarks) — so nothing here knows about Kubernetes.

use std::collections::VecDeque;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, Lines};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::protocol::{self, Protocol, Step};

/// How many stderr lines are kept to explain a failure.
const TAIL: usize = 8;

/// Why the session cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client lost its connection to the server (client errors 2000-2999).
    #[error("the connection to the database server was lost: {0}")]
    Lost(String),
    /// The client process ended (its stdout closed) before the step's marker.
    #[error("the database client ended before answering{}", tail(.0))]
    Ended(Vec<String>),
    /// Writing to or reading from the client failed.
    #[error("talking to the database client: {0}")]
    Io(#[from] std::io::Error),
    /// One of the tool's own statements failed.
    #[error("{what} failed: {error}")]
    Sql { what: String, error: String },
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join(" / "))
    }
}

/// What a step printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The statement's own output lines (batch format).
    pub output: Vec<String>,
    /// `SHOW ERRORS` rows of the statement.
    pub errors: Vec<String>,
    /// `@@error_count` right after the statement.
    pub error_count: u64,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        self.error_count > 0
    }

    /// The error as one line (`ERROR 1146: Table … doesn't exist`).
    pub fn error(&self) -> String {
        if self.errors.is_empty() {
            format!("{} error(s) without a message", self.error_count)
        } else {
            protocol::error_text(&self.errors)
        }
    }
}

/// A running client session.
pub struct Client {
    stdin: Box<dyn AsyncWrite + Unpin + Send>,
    stdout: Lines<BufReader<Box<dyn AsyncRead + Unpin + Send>>>,
    stderr: UnboundedReceiver<String>,
    proto: Protocol,
    steps: u64,
    stderr_tail: VecDeque<String>,
}

/// True for the client's own errors about the connection (`ERROR 2006 (HY000): MySQL server
/// has gone away`, `ERROR 2013 … Lost connection`), as opposed to a statement's error.
pub fn is_connection_error(line: &str) -> bool {
    line.strip_prefix("ERROR 2")
        .and_then(|rest| rest.get(..3))
        .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

impl Client {
    /// Starts a session over the client's streams: switches the delimiter.
    pub async fn start(
        stdin: Box<dyn AsyncWrite + Unpin + Send>,
        stdout: Box<dyn AsyncRead + Unpin + Send>,
        stderr: UnboundedReceiver<String>,
    ) -> Result<Client, ClientError> {
        Client::start_with(Protocol::new(), stdin, stdout, stderr).await
    }

    /// [`Client::start`] with a given protocol (a known nonce, for tests).
    pub async fn start_with(
        proto: Protocol,
        stdin: Box<dyn AsyncWrite + Unpin + Send>,
        stdout: Box<dyn AsyncRead + Unpin + Send>,
        stderr: UnboundedReceiver<String>,
    ) -> Result<Client, ClientError> {
        let mut client = Client {
            stdin,
            stdout: BufReader::new(stdout).lines(),
            stderr,
            proto,
            steps: 0,
            stderr_tail: VecDeque::new(),
        };
        let opening = client.proto.opening();
        client.stdin.write_all(opening.as_bytes()).await?;
        Ok(client)
    }

    /// True when `text` cannot be sent as one statement of this session.
    pub fn clashes(&self, text: &str) -> bool {
        self.proto.clashes(text)
    }

    /// Runs one step and reads its outcome.
    pub async fn step(&mut self, step: &Step) -> Result<Outcome, ClientError> {
        self.steps += 1;
        let n = self.steps;
        let text = self.proto.render(n, step);
        self.stdin.write_all(text.as_bytes()).await?;
        self.stdin.flush().await?;
        let mut outcome = Outcome::default();
        let mut past_output = false;
        loop {
            tokio::select! {
                biased;
                line = self.stdout.next_line() => {
                    let Some(line) = line? else {
                        return Err(ClientError::Ended(self.drain_tail()));
                    };
                    match self.proto.marker(&line) {
                        Some(m) if m.step == n && m.tag == "out" => past_output = true,
                        Some(m) if m.step == n && m.tag == "done" => {
                            outcome.error_count = m
                                .rest
                                .first()
                                .and_then(|c| c.parse().ok())
                                .unwrap_or(1);
                            return Ok(outcome);
                        }
                        _ if past_output => outcome.errors.push(line),
                        _ => outcome.output.push(line),
                    }
                }
                Some(line) = self.stderr.recv() => {
                    if is_connection_error(&line) {
                        return Err(ClientError::Lost(line));
                    }
                    self.keep(line);
                }
            }
        }
    }

    fn keep(&mut self, line: String) {
        if line.trim().is_empty() || line.starts_with("-----") {
            return;
        }
        if self.stderr_tail.len() == TAIL {
            self.stderr_tail.pop_front();
        }
        self.stderr_tail.push_back(line);
    }

    fn drain_tail(&mut self) -> Vec<String> {
        while let Ok(line) = self.stderr.try_recv() {
            self.keep(line);
        }
        self.stderr_tail.iter().cloned().collect()
    }

    /// Runs one of the tool's own statements and returns its output lines; an SQL error is an
    /// error naming `what`.
    pub async fn query(&mut self, what: &str, sql: &str) -> Result<Vec<String>, ClientError> {
        let outcome = self
            .step(&Step {
                sql: sql.to_string(),
                ..Step::default()
            })
            .await?;
        if outcome.failed() {
            return Err(ClientError::Sql {
                what: what.to_string(),
                error: outcome.error(),
            });
        }
        Ok(outcome.output)
    }

    /// Ends the session: closes stdin, so the client exits and the server drops the
    /// connection (and every lock it held).
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.stdin.shutdown().await?;
        while self.stdout.next_line().await?.is_some() {}
        Ok(())
    }
}

/// The client's arguments for a session on `database` (after the option file).
pub fn session_args(database: &str) -> Vec<String> {
    [
        "--batch",
        "--skip-column-names",
        "--unbuffered",
        "--force",
        "--skip-reconnect",
        "--default-character-set=utf8mb4",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--database={database}")])
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_the_clients_own() {
        assert!(is_connection_error(
            "ERROR 2006 (HY000) at line 9: MySQL server has gone away"
        ));
        assert!(is_connection_error(
            "ERROR 2013 (HY000): Lost connection to server during query"
        ));
        assert!(!is_connection_error(
            "ERROR 1146 (42S02) at line 3: Table 't' doesn't exist"
        ));
        assert!(!is_connection_error("ERROR 20"));
    }

    /// A fake client: answers each step from a script of replies.
    #[tokio::test]
    async fn steps_read_up_to_their_marker() {
        // What the client writes to the fake's stdin, and what the fake prints on stdout.
        let (stdin_w, stdin_r) = tokio::io::duplex(1 << 16);
        let (mut stdout_w, stdout_r) = tokio::io::duplex(1 << 16);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let nonce = "0123456789abcdef";
        let mut client = Client::start_with(
            Protocol::with_nonce(nonce),
            Box::new(stdin_w),
            Box::new(stdout_r),
            rx,
        )
        .await
        .unwrap();
        // Read what the client sent, to learn the nonce.
        let mut sent = BufReader::new(stdin_r).lines();
        let opening = sent.next_line().await.unwrap().unwrap();
        assert_eq!(opening, "DELIMITER $ku0123456789$");
        let replies = format!(
            "row one\n{nonce}\tout\t1\nError\t1146\tTable 't' doesn't exist\n{nonce}\tdone\t1\t1\n"
        );
        stdout_w.write_all(replies.as_bytes()).await.unwrap();
        let outcome = client
            .step(&Step {
                sql: "SELECT * FROM t".into(),
                ..Step::default()
            })
            .await
            .unwrap();
        assert_eq!(outcome.output, ["row one"]);
        assert!(outcome.failed());
        assert_eq!(outcome.error(), "ERROR 1146: Table 't' doesn't exist");

        tx.send("ERROR 2013 (HY000): Lost connection to server during query".into())
            .unwrap();
        let err = client
            .step(&Step {
                sql: "DO 0".into(),
                ..Step::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Lost(_)), "{err}");

        drop(stdout_w);
        let err = client.query("x", "DO 0").await.unwrap_err();
        assert!(matches!(err, ClientError::Ended(_)), "{err}");
    }
}
