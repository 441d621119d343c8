//! Commands in the migration pods: exec with stdout saved to a file (and watched as it comes)
//! and stderr read for progress, and the archive streamed between two pods.

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::pod::{Side, start_pod};
use crate::tree;
use upgrade_shared::cluster::describe;

/// How long the readers of a finished exec may take to drain what already arrived.
pub(super) const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads stderr lines, handing each to `on_line`; returns the last one that is not the
/// command's report of its own work (progress, digest), the line that explains a failure.
async fn stderr_lines(
    stderr: impl tokio::io::AsyncRead + Unpin,
    on_line: &mut dyn FnMut(&str),
) -> String {
    let mut last = String::new();
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        on_line(&line);
        if !line.trim().is_empty() && !tree::is_report_line(&line) {
            last = line;
        }
    }
    last
}

/// Waits for an exec's stream readers. When the connection breaks, kube's readers never see
/// the end of their streams, so the connection is watched too: once it ends, the readers get
/// [`DRAIN`] to finish what already arrived. Returns the readers' output (`None` when they did
/// not finish) and whether the connection ended first.
async fn read_until_closed<T>(
    readers: impl Future<Output = T>,
    connection: impl Future + Unpin,
) -> (Option<T>, bool) {
    tokio::pin!(readers);
    tokio::select! {
        out = &mut readers => (Some(out), false),
        _ = connection => (tokio::time::timeout(DRAIN, readers).await.ok(), true),
    }
}

/// The error for readers cut off by a broken connection.
fn cut() -> std::io::Error {
    std::io::Error::other("the exec stream was cut before it ended")
}

pub(super) struct Exec {
    stdout: tempfile::NamedTempFile,
    success: bool,
    message: String,
}

/// What is done with an exec's output as it arrives: stdout chunks (before they are saved) and
/// stderr lines.
pub(super) struct Watch<'a> {
    pub stdout: &'a mut dyn FnMut(&[u8]),
    pub stderr: &'a mut dyn FnMut(&str),
}

/// Runs argv in the pod, saving stdout to a temp file and handing its output to `watch`.
pub(super) async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    argv: Vec<String>,
    watch: Watch<'_>,
) -> anyhow::Result<Exec> {
    let params = upgrade_shared::exec::attach_params()
        .container("migrate")
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut process = pods
        .exec(pod, argv, &params)
        .await
        .map_err(|e| anyhow::anyhow!("cannot exec in pod/{pod}: {}", describe(&e)))?;
    let file = tempfile::NamedTempFile::new()?;
    let mut out = tokio::fs::File::from_std(file.reopen()?);
    let mut stdout = process
        .stdout()
        .ok_or_else(|| anyhow::anyhow!("no stdout from pod/{pod}"))?;
    let stderr = process
        .stderr()
        .ok_or_else(|| anyhow::anyhow!("no stderr from pod/{pod}"))?;
    let status = process.take_status();
    let on_stdout = watch.stdout;
    let copy_out = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stdout.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            on_stdout(&buf[..n]);
            out.write_all(&buf[..n]).await?;
        }
        out.flush().await?;
        Ok::<_, std::io::Error>(())
    };
    let join = process.join();
    tokio::pin!(join);
    let readers = async { tokio::join!(copy_out, stderr_lines(stderr, watch.stderr)) };
    let (read, joined) = read_until_closed(readers, join.as_mut()).await;
    let (copied, last_err) = read.unwrap_or_else(|| (Err(cut()), String::new()));
    copied?;
    let status = match status {
        Some(s) if joined => tokio::time::timeout(DRAIN, s).await.ok().flatten(),
        Some(s) => s.await,
        None => None,
    };
    if !joined {
        let _ = tokio::time::timeout(DRAIN, join).await;
    }
    let (success, message) = match status {
        Some(s) if s.status.as_deref() == Some("Success") => (true, String::new()),
        Some(s) => (false, s.message.unwrap_or_default()),
        None => (false, "the exec stream ended without an exit status".into()),
    };
    Ok(Exec {
        stdout: file,
        success,
        message: if last_err.is_empty() {
            message
        } else {
            format!("{message}: {last_err}")
        },
    })
}

/// [`exec`] that fails unless the command succeeded, naming `what` failed where.
pub(super) async fn exec_ok(
    side: &Side,
    argv: Vec<String>,
    what: &str,
    watch: Watch<'_>,
) -> anyhow::Result<tempfile::NamedTempFile> {
    let (pods, pod) = (side.cluster.pods(), side.pod.as_str());
    let r = exec(&pods, pod, argv, watch).await?;
    if !r.success {
        anyhow::bail!("{what} failed in pod/{pod}: {}", r.message);
    }
    Ok(r.stdout)
}

pub(super) async fn run_in(
    side: &Side,
    argv: Vec<String>,
    what: &str,
) -> anyhow::Result<tempfile::NamedTempFile> {
    let watch = Watch {
        stdout: &mut |_| {},
        stderr: &mut |_| {},
    };
    exec_ok(side, argv, what, watch).await
}

/// Streams a tar archive from the source pod into the destination pod through this process,
/// in constant memory. Both ends must report success. With `digest` the source pod also
/// digests the archive it sends (a line for `on_line`), before it crosses any network.
pub(super) async fn pipe_copy(
    src: &Side,
    dst: &Side,
    digest: bool,
    on_line: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let out_params = upgrade_shared::exec::attach_params()
        .container("migrate")
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let in_params = upgrade_shared::exec::attach_params()
        .container("migrate")
        .stdin(true)
        .stdout(false)
        .stderr(true);
    let (src_pods, dst_pods) = (src.cluster.pods(), dst.cluster.pods());
    let mut pack = src_pods
        .exec(
            &src.pod,
            if digest {
                tree::pack_and_digest_command("/source")
            } else {
                tree::pack_command("/source")
            },
            &out_params,
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot exec in pod/{}: {}", src.pod, describe(&e)))?;
    let mut unpack = dst_pods
        .exec(&dst.pod, tree::unpack_command("/dest"), &in_params)
        .await
        .map_err(|e| anyhow::anyhow!("cannot exec in pod/{}: {}", dst.pod, describe(&e)))?;
    let mut archive = pack
        .stdout()
        .ok_or_else(|| anyhow::anyhow!("no stdout from pod/{}", src.pod))?;
    let mut sink = unpack
        .stdin()
        .ok_or_else(|| anyhow::anyhow!("no stdin to pod/{}", dst.pod))?;
    let pack_err = pack
        .stderr()
        .ok_or_else(|| anyhow::anyhow!("no stderr from pod/{}", src.pod))?;
    let unpack_err = unpack
        .stderr()
        .ok_or_else(|| anyhow::anyhow!("no stderr from pod/{}", dst.pod))?;
    let (pack_status, unpack_status) = (pack.take_status(), unpack.take_status());
    let stream = async {
        tokio::io::copy(&mut archive, &mut sink).await?;
        // Dropping the writer does not end the remote command's input; shutting it down does.
        sink.shutdown().await?;
        Ok::<_, std::io::Error>(())
    };
    // The unpacking side prints no progress, only what explains a failure.
    let mut quiet = |_: &str| {};
    let readers = async {
        tokio::join!(
            stream,
            stderr_lines(pack_err, on_line),
            stderr_lines(unpack_err, &mut quiet)
        )
    };
    let pack_join = pack.join();
    tokio::pin!(pack_join);
    let (read, _) = read_until_closed(readers, pack_join.as_mut()).await;
    let (streamed, pack_last, unpack_last) =
        read.unwrap_or_else(|| (Err(cut()), String::new(), String::new()));
    let verdict = |status: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
                   pod: &str,
                   last: &str| match status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(()),
        Some(s) => Err(anyhow::anyhow!(
            "the copy failed in pod/{pod}: {} {last}",
            s.message.unwrap_or_default()
        )),
        None => Err(anyhow::anyhow!(
            "the copy's stream to pod/{pod} ended without an exit status {last}"
        )),
    };
    let pack_status = match pack_status {
        Some(s) => tokio::time::timeout(DRAIN, s).await.ok().flatten(),
        None => None,
    };
    let unpack_status = match unpack_status {
        Some(s) => tokio::time::timeout(DRAIN * 6, s).await.ok().flatten(),
        None => None,
    };
    streamed.map_err(|e| {
        anyhow::anyhow!(
            "the copy stream from pod/{} to pod/{} broke: {e}",
            src.pod,
            dst.pod
        )
    })?;
    verdict(pack_status, &src.pod, &pack_last)?;
    verdict(unpack_status, &dst.pod, &unpack_last)?;
    let _ = tokio::time::timeout(DRAIN, unpack.join()).await;
    Ok(())
}

/// A claim's size in bytes: its bound capacity, else what it requests.
pub(super) fn claim_bytes(
    claim: &k8s_openapi::api::core::v1::PersistentVolumeClaim,
) -> Option<u64> {
    let from_status = claim
        .status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|cap| cap.get("storage"));
    let requested = claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"));
    from_status
        .or(requested)
        .and_then(crate::statefulset::bytes)
        .map(|b| u64::try_from(b).unwrap_or(u64::MAX))
}

/// The bytes `/source` uses, measured through `side`'s pod (started here and removed after).
pub(super) async fn measure_source(
    timeout: std::time::Duration,
    side: &Side,
) -> anyhow::Result<u64> {
    let measured = async {
        start_pod(timeout, side).await?;
        let used = run_in(side, tree::used_command("/source"), "measuring /source").await?;
        let text = std::fs::read_to_string(used.path())?;
        text.trim()
            .parse::<u64>()
            .map_err(|_| anyhow::anyhow!("cannot read the bytes /source uses from {text:?}"))
    }
    .await;
    super::remove_pod(timeout, side).await;
    measured
}

/// sha256 (hex) of a file's contents.
pub(super) fn file_sha256(f: &tempfile::NamedTempFile) -> anyhow::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut f.reopen()?, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}
