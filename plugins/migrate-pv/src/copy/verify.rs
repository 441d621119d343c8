//! The copy's measure-copy-verify order, with every pass that can run beside another doing so:
//! the source is listed while it is copied (a quiesced source does not change, and a listing
//! reads no file contents); once the copy ends, the destination is listed and, with
//! `--verify=checksum`, archived again into its digest at the same time. The source's digest
//! comes from the copy's own stream (see [`crate::tree::archive`]): the source is read once.
//! When the two digests differ, or one is missing, every file is hashed on both sides (also at
//! the same time) to name what differs. Each pass shows its progress on one board.

use std::cell::Cell;

use upgrade_shared::progress::{Board, Progress};

use super::pod::{Side, start_pod};
use super::stream::{Watch, claim_bytes, exec_ok, file_sha256, pipe_copy, run_in};
use super::{CopyArgs, Verify, human};
use crate::{Args, tree};

/// Set to `separate` to check contents the way copies did before the archive was digested as
/// it streams: the copy, then a pass hashing every file on both sides. The benchmark compares
/// the two ways with it.
pub const CHECKSUMS_ENV: &str = "MIGRATE_PV_CHECKSUMS";

/// How the contents of a `--verify=checksum` copy were compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentCheck {
    /// The digest of the archive the copy streamed against the destination archived again.
    Archive,
    /// The sha256 of every regular file on both sides.
    PerFile,
}

impl ContentCheck {
    /// How the plain report names it.
    pub fn describe(self) -> &'static str {
        match self {
            ContentCheck::Archive => "archive digest taken as it streamed",
            ContentCheck::PerFile => "sha256 of every file",
        }
    }
}

/// What the passes found.
pub(super) struct Proven {
    pub verification: tree::Verification,
    /// sha256 of the source's listing, for the journal's proof.
    pub digest: String,
    /// How contents were compared; `None` with `--verify=manifest`.
    pub content: Option<ContentCheck>,
}

fn separate_pass() -> bool {
    std::env::var(CHECKSUMS_ENV).is_ok_and(|v| v == "separate")
}

/// A watch that counts NUL-terminated records on stdout into `progress` and ignores stderr.
async fn counted(
    side: &Side,
    argv: Vec<String>,
    what: &str,
    progress: Progress,
) -> anyhow::Result<(tempfile::NamedTempFile, u64)> {
    let mut records = 0u64;
    let watch = Watch {
        stdout: &mut |chunk: &[u8]| {
            records += chunk.iter().filter(|b| **b == 0).count() as u64;
            progress.set(records);
        },
        stderr: &mut |_| {},
    };
    let out = exec_ok(side, argv, what, watch).await?;
    progress.finish();
    Ok((out, records))
}

/// Lists `root` in `side`'s pod; returns the listing and its number of entries.
async fn list(
    board: &Board,
    side: &Side,
    root: &str,
    total: Option<u64>,
) -> anyhow::Result<(tempfile::NamedTempFile, u64)> {
    let what = format!("listing {root}");
    let progress = board.items(&what, total, "entries");
    counted(side, tree::manifest_command(root), &what, progress).await
}

/// Hashes every regular file under `root` in `side`'s pod.
async fn hash_files(
    board: &Board,
    side: &Side,
    root: &str,
    files: u64,
) -> anyhow::Result<tempfile::NamedTempFile> {
    let what = format!("hashing every file in {root}");
    let progress = board.items(&what, Some(files), "files");
    Ok(counted(side, tree::checksum_command(root), &what, progress)
        .await?
        .0)
}

/// Archives `root` in `side`'s pod again and returns the digest it printed (`None` when it
/// printed none).
async fn digest_tree(
    board: &Board,
    side: &Side,
    root: &str,
    bytes: u64,
) -> anyhow::Result<Option<String>> {
    let what = format!("hashing {root}");
    let progress = board.bytes(&what, Some(bytes));
    let mut digest = None;
    let watch = Watch {
        stdout: &mut |_| {},
        stderr: &mut |line: &str| {
            if let Some(done) = tree::progress_line(line) {
                progress.set(done.min(bytes));
            }
            digest = digest.take().or_else(|| tree::digest_line(line));
        },
    };
    exec_ok(side, tree::digest_command(root), &what, watch).await?;
    progress.finish();
    Ok(digest)
}

/// Copies `/source` into `/dest`, showing progress; returns the digest of the archive when
/// `digest` asked for one and the copy printed it.
async fn copy(
    board: &Board,
    src: &Side,
    dst: &Side,
    same: bool,
    used: u64,
    digest: bool,
) -> anyhow::Result<Option<String>> {
    let progress = board.bytes("copying", Some(used));
    let mut sent = None;
    let mut on_line = |line: &str| {
        if let Some(done) = tree::progress_line(line) {
            progress.set(done);
        }
        sent = sent.take().or_else(|| tree::digest_line(line));
    };
    if same {
        let argv = if digest {
            tree::copy_and_digest_command("/source", "/dest")
        } else {
            tree::copy_command("/source", "/dest")
        };
        let watch = Watch {
            stdout: &mut |_| {},
            stderr: &mut on_line,
        };
        exec_ok(src, argv, "the copy", watch).await?;
    } else {
        pipe_copy(src, dst, digest, &mut on_line).await?;
    }
    progress.finish();
    Ok(sent)
}

/// Measures, copies and verifies, with one pod (same namespace) or two (across namespaces).
pub(super) async fn copy_in_pods(
    args: &Args,
    c: &CopyArgs,
    src: &Side,
    dst: &Side,
) -> anyhow::Result<Proven> {
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

    let checksum = c.verify == Verify::Checksum;
    let streamed = checksum && !separate_pass();
    let board = Board::for_stderr(args.output.format);
    let source_entries = Cell::new(None);
    let listing_src = async {
        let listed = list(&board, src, "/source", None).await?;
        source_entries.set(Some(listed.1));
        Ok::<_, anyhow::Error>(listed)
    };
    let copied_then_dest = async {
        let sent = copy(&board, src, dst, same, used, streamed).await?;
        let listing_dst = list(&board, dst, "/dest", source_entries.get());
        let digest_dst = async {
            match streamed {
                true => digest_tree(&board, dst, "/dest", used).await,
                false => Ok(None),
            }
        };
        let (listed, received) = tokio::try_join!(listing_dst, digest_dst)?;
        Ok::<_, anyhow::Error>((sent, listed, received))
    };
    let ((listed_src, _), (sent, (listed_dst, _), received)) =
        tokio::try_join!(listing_src, copied_then_dest)?;

    let open = |f: &tempfile::NamedTempFile| -> anyhow::Result<std::io::BufReader<std::fs::File>> {
        Ok(std::io::BufReader::new(f.reopen()?))
    };
    let digest = file_sha256(&listed_src)?;
    let mut verification = tree::compare(
        tree::entries(open(&listed_src)?),
        tree::entries(open(&listed_dst)?),
    )?;
    let content = if !checksum {
        None
    } else if streamed && sent.is_some() && sent == received {
        Some(ContentCheck::Archive)
    } else {
        let files = verification.files;
        let (summed_src, summed_dst) = tokio::try_join!(
            hash_files(&board, src, "/source", files),
            hash_files(&board, dst, "/dest", files)
        )?;
        tree::compare_checksums(
            tree::checksums(open(&summed_src)?),
            tree::checksums(open(&summed_dst)?),
            &mut verification,
        )?;
        Some(ContentCheck::PerFile)
    };
    Ok(Proven {
        verification,
        digest,
        content,
    })
}
