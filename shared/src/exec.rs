//! Commands in a pod's container through the API server's `exec` subresource, with the
//! guarantees a backup or a copy needs and that a bare `kube::Api::exec` does not give:
//!
//! - **stdin** from bytes or any [`AsyncRead`] ([`Input`]); it is closed when the input ends
//!   (the v5 protocol's close frame), so the remote command sees end of file;
//! - **stdout** copied into any [`AsyncWrite`] as it arrives, in constant memory (kube's
//!   per-stream buffer, then ours: nothing is collected unless [`capture`] is asked to);
//! - **stderr** handed line by line to a callback, and its last non-empty line kept to explain
//!   a failure;
//! - the **real exit status** of the command from the status channel (`Success`, or
//!   `NonZeroExitCode` with the `ExitCode` cause), never guessed from the streams;
//! - a **cut connection** (the stream ends without a status) reported as [`ExecError::Cut`],
//!   never as success, and never waited on forever: once the connection is gone the readers
//!   get [`DRAIN`] to deliver what already arrived;
//! - an optional **timeout** for the whole command ([`ExecError::Timeout`]).
//!
//! A command that ran and exited non-zero is not an error of this module: [`Finished`] says
//! how it ended and [`Finished::check`] turns a failure into an [`ExecError::Failed`] whose
//! message is one line (what failed, where, the exit code and the command's last stderr line).
//!
//! Closing the connection (a timeout, a dropped client) ends the command on API servers whose
//! runtime kills exec sessions with their stream; not every runtime does, so commands that must
//! not outlive the plugin should bound themselves too.

use std::pin::Pin;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt};

/// How long the readers of a finished or broken exec may take to deliver what already arrived.
pub const DRAIN: Duration = Duration::from_secs(5);

/// The most [`capture`] keeps in memory; more is an error, not a silent truncation.
pub const CAPTURE_LIMIT: usize = 64 * 1024 * 1024;

/// What the remote command reads on its standard input.
pub enum Input {
    /// Nothing: stdin is not attached.
    None,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
    /// Everything the reader yields, then end of file (chain readers with
    /// [`tokio::io::AsyncReadExt::chain`] to send a prefix first).
    Reader(Pin<Box<dyn AsyncRead + Send>>),
}

impl Input {
    /// Input from any reader.
    pub fn reader(r: impl AsyncRead + Send + 'static) -> Self {
        Input::Reader(Box::pin(r))
    }
}

/// A command to run: the pod, the container (the pod's only or default one when `None`), the
/// argv (no shell unless argv starts one), and how long it may take.
#[derive(Debug, Clone)]
pub struct Command {
    pub pod: String,
    pub container: Option<String>,
    pub argv: Vec<String>,
    pub timeout: Option<Duration>,
}

impl Command {
    /// A command without a timeout.
    pub fn new(pod: &str, container: Option<&str>, argv: Vec<String>) -> Self {
        Command {
            pod: pod.to_string(),
            container: container.map(str::to_string),
            argv,
            timeout: None,
        }
    }

    /// The same command with a time limit.
    pub fn timeout(mut self, limit: Option<Duration>) -> Self {
        self.timeout = limit;
        self
    }
}

/// How a command ended, from its status on the status channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The exit code: 0 for `Success`, the `ExitCode` cause of `NonZeroExitCode`, -1 for a
    /// failure without a code (the command could not be started, for instance).
    pub code: i32,
    /// The status message (empty on success).
    pub message: String,
    /// The last non-empty line the command wrote on stderr.
    pub last_stderr: String,
    /// Whether all of [`Input`] reached the command before it ended.
    pub input_sent: bool,
}

impl Finished {
    /// True when the command exited 0 and read all of its input.
    pub fn success(&self) -> bool {
        self.code == 0 && self.input_sent
    }

    /// `Ok` on success, else [`ExecError::Failed`] naming `what`.
    pub fn check(self, pod: &str, what: &str) -> Result<Finished, ExecError> {
        if self.success() {
            return Ok(self);
        }
        let detail = if self.code == 0 {
            "it ended before reading all of its input".to_string()
        } else if !self.last_stderr.is_empty() {
            format!("exit code {}: {}", self.code, self.last_stderr)
        } else if self.code > 0 {
            format!("exit code {}", self.code)
        } else {
            self.message.clone()
        };
        Err(ExecError::Failed {
            pod: pod.to_string(),
            what: what.to_string(),
            code: self.code,
            detail,
        })
    }
}

/// Why a command's outcome is unknown or a failure.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The API server refused the exec (no such pod or container, container not running).
    #[error("cannot exec in pod/{pod}: {message}")]
    Start { pod: String, message: String },
    /// The connection ended before the command's exit status arrived.
    #[error("the exec stream from pod/{pod} was cut before the command ended")]
    Cut { pod: String },
    /// The command did not finish in time; the connection was closed.
    #[error("the command in pod/{pod} did not finish within {after:?}")]
    Timeout { pod: String, after: Duration },
    /// Writing what the command printed failed on this side (a full disk, a closed pipe).
    #[error("cannot write the output of pod/{pod}: {source}")]
    Output {
        pod: String,
        #[source]
        source: std::io::Error,
    },
    /// Reading the input to send failed on this side.
    #[error("cannot read the input for pod/{pod}: {source}")]
    Input {
        pod: String,
        #[source]
        source: std::io::Error,
    },
    /// [`capture`]'s output went over [`CAPTURE_LIMIT`].
    #[error("the output of pod/{pod} is larger than {limit} bytes")]
    TooLarge { pod: String, limit: usize },
    /// The command ran and failed ([`Finished::check`]).
    #[error("{what} failed in pod/{pod}: {detail}")]
    Failed {
        pod: String,
        what: String,
        code: i32,
        detail: String,
    },
}

/// The exit code a status carries (kubelet's `NonZeroExitCode` with an `ExitCode` cause).
pub fn exit_code(status: &Status) -> i32 {
    if status.status.as_deref() == Some("Success") {
        return 0;
    }
    status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
                .and_then(|c| c.message.as_deref())
        })
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(-1)
}

/// Reads stderr lines into `on_line`; returns the last non-empty one.
async fn stderr_lines(
    stderr: impl AsyncRead + Unpin,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> String {
    let mut last = String::new();
    let mut reader = tokio::io::BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return last,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                on_line(text);
                if !text.trim().is_empty() {
                    last = text.to_string();
                }
            }
        }
    }
}

/// Runs a command, streaming stdin from `input`, stdout into `stdout` and stderr lines into
/// `on_stderr`. Returns how it ended; see the module docs for what is an error.
pub async fn run(
    pods: &Api<Pod>,
    cmd: &Command,
    input: Input,
    stdout: &mut (dyn AsyncWrite + Unpin + Send),
    on_stderr: &mut (dyn FnMut(&str) + Send),
) -> Result<Finished, ExecError> {
    let work = run_unbounded(pods, cmd, input, stdout, on_stderr);
    match cmd.timeout {
        Some(after) => tokio::time::timeout(after, work).await.unwrap_or_else(|_| {
            Err(ExecError::Timeout {
                pod: cmd.pod.clone(),
                after,
            })
        }),
        None => work.await,
    }
}

/// Bytes each exec stream buffers between the connection and its reader. The API client's
/// default is 1 KiB, so that every WebSocket frame is handed over in 1 KiB pieces, one task
/// wake-up each: dumps and copies then ran at a fifth of what the connection carries.
pub const STREAM_BUFFER: usize = 256 * 1024;

/// Exec parameters with [`STREAM_BUFFER`] for stdin, stdout and stderr; memory stays constant
/// (three buffers per exec).
pub fn attach_params() -> AttachParams {
    AttachParams::default()
        .max_stdin_buf_size(STREAM_BUFFER)
        .max_stdout_buf_size(STREAM_BUFFER)
        .max_stderr_buf_size(STREAM_BUFFER)
}

async fn run_unbounded(
    pods: &Api<Pod>,
    cmd: &Command,
    input: Input,
    stdout: &mut (dyn AsyncWrite + Unpin + Send),
    on_stderr: &mut (dyn FnMut(&str) + Send),
) -> Result<Finished, ExecError> {
    let pod = cmd.pod.as_str();
    let has_stdin = !matches!(input, Input::None);
    let mut params = attach_params().stdin(has_stdin).stdout(true).stderr(true);
    if let Some(c) = &cmd.container {
        params = params.container(c.as_str());
    }
    let mut process = pods
        .exec(pod, cmd.argv.clone(), &params)
        .await
        .map_err(|e| ExecError::Start {
            pod: pod.to_string(),
            message: crate::api::describe(&e),
        })?;
    let missing = |what: &str| ExecError::Start {
        pod: pod.to_string(),
        message: format!("the connection has no {what} stream"),
    };
    let mut out = process.stdout().ok_or_else(|| missing("stdout"))?;
    let err = process.stderr().ok_or_else(|| missing("stderr"))?;
    let stdin = if has_stdin {
        Some(process.stdin().ok_or_else(|| missing("stdin"))?)
    } else {
        None
    };
    let status = process.take_status();

    let send = async {
        let Some(mut writer) = stdin else {
            return Ok(());
        };
        match input {
            Input::None => {}
            Input::Bytes(b) => writer.write_all(&b).await?,
            Input::Reader(mut r) => {
                tokio::io::copy(&mut r, &mut writer).await?;
            }
        }
        // Dropping the writer does not end the remote input; shutting it down does.
        writer.shutdown().await
    };
    let receive = async {
        let copied = async {
            // Whole stream buffers at a time, not `copy`'s 8 KiB: a dump's or a copy's sink
            // then takes a few large writes instead of tens of thousands of small ones.
            let mut out = tokio::io::BufReader::with_capacity(STREAM_BUFFER, &mut out);
            tokio::io::copy_buf(&mut out, stdout).await?;
            stdout.flush().await
        };
        tokio::join!(copied, stderr_lines(err, on_stderr))
    };
    // The readers end when the command's status arrives (kube then closes them); the input may
    // still be unsent at that point, when the command stopped reading early.
    let readers = async {
        tokio::pin!(send, receive);
        let mut sent: Option<std::io::Result<()>> = None;
        loop {
            tokio::select! {
                r = &mut send, if sent.is_none() => sent = Some(r),
                (copied, last) = &mut receive => return (copied, last, sent),
            }
        }
    };
    let join = process.join();
    tokio::pin!(join);
    tokio::pin!(readers);
    // When the connection breaks, kube's readers may never see the end of their streams, so the
    // connection is watched too.
    let (read, closed) = tokio::select! {
        r = &mut readers => (Some(r), false),
        _ = &mut join => (tokio::time::timeout(DRAIN, &mut readers).await.ok(), true),
    };
    let Some((copied, last_stderr, sent)) = read else {
        return Err(ExecError::Cut {
            pod: pod.to_string(),
        });
    };
    let status = match status {
        Some(s) if closed => tokio::time::timeout(DRAIN, s).await.ok().flatten(),
        Some(s) => tokio::time::timeout(DRAIN, s).await.ok().flatten(),
        None => None,
    };
    if !closed {
        let _ = tokio::time::timeout(DRAIN, join).await;
    }
    let Some(status) = status else {
        return Err(ExecError::Cut {
            pod: pod.to_string(),
        });
    };
    copied.map_err(|source| ExecError::Output {
        pod: pod.to_string(),
        source,
    })?;
    let input_sent = match sent {
        Some(Ok(())) => true,
        Some(Err(source)) if exit_code(&status) == 0 => {
            return Err(ExecError::Input {
                pod: pod.to_string(),
                source,
            });
        }
        _ => false,
    };
    Ok(Finished {
        code: exit_code(&status),
        message: status.message.clone().unwrap_or_default(),
        last_stderr,
        input_sent,
    })
}

/// Runs a command and collects its stdout in memory (at most [`CAPTURE_LIMIT`] bytes); for
/// small outputs such as query results. Fails unless the command succeeds.
pub async fn capture(
    pods: &Api<Pod>,
    cmd: &Command,
    input: Input,
    what: &str,
) -> Result<Vec<u8>, ExecError> {
    let mut sink = LimitedBuffer::default();
    let finished = run(pods, cmd, input, &mut sink, &mut |_| {}).await?;
    if sink.over {
        return Err(ExecError::TooLarge {
            pod: cmd.pod.clone(),
            limit: CAPTURE_LIMIT,
        });
    }
    finished.check(&cmd.pod, what)?;
    Ok(sink.data)
}

/// A buffer that stops growing at [`CAPTURE_LIMIT`] and remembers that it did.
#[derive(Default)]
struct LimitedBuffer {
    data: Vec<u8>,
    over: bool,
}

impl AsyncWrite for LimitedBuffer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.data.len() + buf.len() > CAPTURE_LIMIT {
            self.over = true;
        } else {
            self.data.extend_from_slice(buf);
        }
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    fn failure(code: &str) -> Status {
        Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            message: Some(format!(
                "command terminated with non-zero exit code: exit code {code}"
            )),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some(code.into()),
                    ..StatusCause::default()
                }]),
                ..StatusDetails::default()
            }),
            ..Status::default()
        }
    }

    #[test]
    fn exit_codes_come_from_the_status_cause() {
        let ok = Status {
            status: Some("Success".into()),
            ..Status::default()
        };
        assert_eq!(exit_code(&ok), 0);
        assert_eq!(exit_code(&failure("137")), 137);
        assert_eq!(exit_code(&failure("2")), 2);
        let internal = Status {
            status: Some("Failure".into()),
            reason: Some("InternalError".into()),
            message: Some("failed to start exec".into()),
            ..Status::default()
        };
        assert_eq!(exit_code(&internal), -1);
    }

    #[test]
    fn failures_explain_themselves_in_one_line() {
        let f = Finished {
            code: 2,
            message: "command terminated".into(),
            last_stderr: "mariadb-dump: Got error: 1045: Access denied".into(),
            input_sent: true,
        };
        let e = f.check("mysql-0", "the dump").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the dump failed in pod/mysql-0: exit code 2: mariadb-dump: Got error: 1045: Access denied"
        );
        let early = Finished {
            code: 0,
            message: String::new(),
            last_stderr: String::new(),
            input_sent: false,
        };
        assert!(!early.success());
        assert!(
            early
                .check("p", "the restore")
                .unwrap_err()
                .to_string()
                .contains("before reading all of its input")
        );
        let ok = Finished {
            code: 0,
            message: String::new(),
            last_stderr: "warning".into(),
            input_sent: true,
        };
        assert!(ok.check("p", "x").is_ok());
    }

    #[tokio::test]
    async fn the_capture_buffer_refuses_to_grow_past_its_limit() {
        let mut b = LimitedBuffer::default();
        b.write_all(&vec![0u8; CAPTURE_LIMIT]).await.unwrap();
        assert!(!b.over);
        b.write_all(b"x").await.unwrap();
        assert!(b.over);
        assert_eq!(b.data.len(), CAPTURE_LIMIT);
    }
}
