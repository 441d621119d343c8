//! Commands in the migration pods: exec with stdout saved to a file and stderr read for
//! progress, the archive streamed between two pods, and the copy's measure-copy-verify order.

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use upgrade_shared::progress::Progress;

use super::pod::{Side, start_pod};
use super::{CopyArgs, Verify, human};
use crate::{Args, tree};
use upgrade_shared::cluster::describe;

/// How long the readers of a finished exec may take to drain what already arrived.
pub(super) const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads stderr lines, handing each to `on_line`; returns the last one that is not progress,
/// the line that explains a failure.
async fn stderr_lines(
    stderr: impl tokio::io::AsyncRead + Unpin,
    on_line: &mut dyn FnMut(&str),
) -> String {
    let mut last = String::new();
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        on_line(&line);
        if !line.trim().is_empty() && tree::progress_line(&line).is_none() {
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

/// Runs argv in the pod, saving stdout to a temp file and feeding stderr lines to `on_line`.
pub(super) async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    argv: Vec<String>,
    on_line: &mut dyn FnMut(&str),
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
    let copy_out = async {
        tokio::io::copy(&mut stdout, &mut out).await?;
        out.flush().await?;
        Ok::<_, std::io::Error>(())
    };
    let join = process.join();
    tokio::pin!(join);
    let readers = async { tokio::join!(copy_out, stderr_lines(stderr, on_line)) };
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

pub(super) async fn exec_ok(
    pods: &Api<Pod>,
    pod: &str,
    argv: Vec<String>,
    what: &str,
    on_line: &mut dyn FnMut(&str),
) -> anyhow::Result<tempfile::NamedTempFile> {
    let r = exec(pods, pod, argv, on_line).await?;
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
    exec_ok(&side.cluster.pods(), &side.pod, argv, what, &mut |_| {}).await
}

/// Streams a tar archive from the source pod into the destination pod through this process,
/// in constant memory. Both ends must report success.
pub(super) async fn pipe_copy(
    src: &Side,
    dst: &Side,
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
        .exec(&src.pod, tree::pack_command("/source"), &out_params)
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

/// Measures, copies and verifies, with one pod (same namespace) or two (across namespaces).
pub(super) async fn copy_in_pods(
    args: &Args,
    c: &CopyArgs,
    src: &Side,
    dst: &Side,
) -> anyhow::Result<(tree::Verification, String)> {
    let same = src.pod == dst.pod && src.cluster.namespace == dst.cluster.namespace;
    start_pod(args.timeouts().bind, src).await?;
    if !same {
        start_pod(args.timeouts().bind, dst).await?;
    }
    let (used, free) = if same {
        let space = run_in(
            src,
            tree::space_command("/source", "/dest"),
            "measuring space",
        )
        .await?;
        tree::parse_space(&std::fs::read_to_string(space.path())?)?
    } else {
        let used = run_in(src, tree::used_command("/source"), "measuring /source").await?;
        let avail = run_in(dst, tree::avail_command("/dest"), "measuring /dest").await?;
        let text = format!(
            "{} {}",
            std::fs::read_to_string(used.path())?.trim(),
            std::fs::read_to_string(avail.path())?.trim()
        );
        tree::parse_space(&text)?
    };
    // A volume backed by a shared filesystem (hostPath, local-path, NFS exports) shows the
    // whole filesystem's free space; the claim's capacity is the limit the user asked for.
    let capacity = dst
        .cluster
        .claim(&c.dest)
        .await?
        .as_ref()
        .and_then(claim_bytes)
        .unwrap_or(u64::MAX);
    let avail = free.min(capacity);
    if used > avail {
        anyhow::bail!(
            "pvc/{} is too small: /source uses {} but /dest has {} free; nothing was copied",
            c.dest,
            human(used),
            human(avail)
        );
    }
    let progress = Progress::bytes("copying", Some(used), args.output.format);
    let mut on_progress = |line: &str| {
        if let Some(done) = tree::progress_line(line) {
            progress.set(done);
        }
    };
    if same {
        exec_ok(
            &src.cluster.pods(),
            &src.pod,
            tree::copy_command("/source", "/dest"),
            "the copy",
            &mut on_progress,
        )
        .await?;
    } else {
        pipe_copy(src, dst, &mut on_progress).await?;
    }
    progress.finish();
    let open = |f: &tempfile::NamedTempFile| -> anyhow::Result<std::io::BufReader<std::fs::File>> {
        Ok(std::io::BufReader::new(f.reopen()?))
    };
    let listed_src = run_in(src, tree::manifest_command("/source"), "listing /source").await?;
    let digest = file_sha256(&listed_src)?;
    let listed_dst = run_in(dst, tree::manifest_command("/dest"), "listing /dest").await?;
    let mut verification = tree::compare(
        tree::entries(open(&listed_src)?),
        tree::entries(open(&listed_dst)?),
    )?;
    if c.verify == Verify::Checksum {
        let summed_src = run_in(src, tree::checksum_command("/source"), "hashing /source").await?;
        let summed_dst = run_in(dst, tree::checksum_command("/dest"), "hashing /dest").await?;
        tree::compare_checksums(
            tree::checksums(open(&summed_src)?),
            tree::checksums(open(&summed_dst)?),
            &mut verification,
        )?;
    }
    Ok((verification, digest))
}

/// sha256 (hex) of a file's contents.
pub(super) fn file_sha256(f: &tempfile::NamedTempFile) -> anyhow::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut f.reopen()?, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}
