//! Dump files on this machine: the sink a dump streams into (inspected, compressed, hashed and
//! written as it arrives) and the readers that stream a file back out (decompressed and, for a
//! restore, filtered to the chosen database).
//!
//! Compression uses flate2 (gzip, pure-Rust backend) and zstd (the reference C library's
//! bindings); both are read back by `verify` and `restore` from the manifest's `compression`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sha2::Digest;
use tokio::io::AsyncWrite;
use upgrade_shared::backup_manifest::{Compression, hex};
use upgrade_shared::progress::Progress;

use crate::inspect::{Inspector, Summary};
use crate::sections::{self, Selection};
use crate::timing::Timings;

/// A writer that counts what goes through it and, unless the bytes are the SQL text itself
/// (already hashed by the inspector), hashes them.
pub struct Hashing<W> {
    inner: W,
    hasher: Option<sha2::Sha256>,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

type FileOut = Hashing<BufWriter<File>>;

enum Encoder {
    Plain(FileOut),
    Gzip(flate2::write::GzEncoder<FileOut>),
    Zstd(zstd::Encoder<'static, FileOut>),
}

impl Encoder {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Plain(w) => w.write_all(buf),
            Encoder::Gzip(w) => w.write_all(buf),
            Encoder::Zstd(w) => w.write_all(buf),
        }
    }

    fn finish(self) -> std::io::Result<FileOut> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(w) => w.finish(),
            Encoder::Zstd(w) => w.finish(),
        }
    }
}

/// Size and sha256 of the file as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub bytes: u64,
    pub sha256: String,
}

/// The most bytes the inspecting thread hands the writing thread at once.
const CHUNK: usize = 1 << 20;
/// Bytes written between two early syncs of the file (see [`write_chunks`]).
const FLUSH_EVERY: u64 = 64 << 20;
/// Chunks queued between the two threads; with the pipe in front of them, the memory a dump
/// holds is a few MiB whatever its size.
const QUEUE: usize = 4;

/// Where a dump's bytes go: every byte is inspected; with a file, it is also compressed as
/// asked and written, and the stored bytes hashed.
///
/// The work runs on two threads of its own, so that the connection keeps being read while a
/// chunk is inspected and the previous one is written: the bytes go through a bounded pipe to
/// the inspecting thread (sha256 of the SQL, rows, trailer), which hands each chunk on
/// through a bounded queue to the writing thread (compression, the stored bytes' sha256 when
/// compressed, the file). A full queue or pipe holds the stream back; nothing grows.
pub struct DumpSink {
    pipe: Option<tokio::io::DuplexStream>,
    inspecting: Option<std::thread::JoinHandle<Inspected>>,
    bytes: u64,
    progress: Option<Progress>,
}

/// What the inspecting thread ends with.
struct Inspected {
    summary: Summary,
    busy: Duration,
    written: Option<std::thread::JoinHandle<std::io::Result<Written>>>,
}

/// What the writing thread ends with.
struct Written {
    /// Bytes written to the file.
    bytes: u64,
    /// Their sha256 when compressed (plain, they are the SQL the inspector hashed).
    sha256: Option<String>,
    busy: Duration,
    fsync: Duration,
}

impl DumpSink {
    /// A sink writing to `file` (created or truncated), or only inspecting. `snapshot` is
    /// notified once the dump's text shows that its consistent snapshot was taken (see
    /// [`Inspector::databases_entered`]).
    pub fn new(
        file: Option<&Path>,
        compression: Option<Compression>,
        database: Option<&str>,
        progress: Option<Progress>,
        snapshot: Option<Arc<tokio::sync::Notify>>,
    ) -> std::io::Result<DumpSink> {
        let mut early = None;
        let encoder = match file {
            None => None,
            Some(path) => {
                let created = File::create(path)?;
                early = created.try_clone().ok();
                let out = Hashing {
                    inner: BufWriter::with_capacity(CHUNK, created),
                    hasher: compression.map(|_| sha2::Sha256::new()),
                    bytes: 0,
                };
                Some(match compression {
                    None => Encoder::Plain(out),
                    Some(Compression::Gzip) => Encoder::Gzip(flate2::write::GzEncoder::new(
                        out,
                        flate2::Compression::fast(),
                    )),
                    Some(Compression::Zstd) => Encoder::Zstd(zstd::Encoder::new(out, 3)?),
                })
            }
        };
        let (pipe, mut reader) = tokio::io::duplex(CHUNK);
        let handle = tokio::runtime::Handle::current();
        let inspector = Inspector::new(database);
        let inspecting = std::thread::Builder::new()
            .name("dump-inspect".into())
            .spawn(move || {
                inspect_chunks(&handle, &mut reader, inspector, encoder, early, snapshot)
            })?;
        Ok(DumpSink {
            pipe: Some(pipe),
            inspecting: Some(inspecting),
            bytes: 0,
            progress,
        })
    }

    /// Ends the dump: the inspection's summary and, with a file, what was stored (flushed and
    /// synced to disk). The time the threads were busy goes into `timings`.
    pub fn finish(mut self, timings: &mut Timings) -> std::io::Result<(Summary, Option<Stored>)> {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
        // The end of the pipe is the end of the dump for the inspecting thread.
        drop(self.pipe.take());
        let inspected = self
            .inspecting
            .take()
            .map(|t| t.join())
            .ok_or_else(|| std::io::Error::other("the dump was already finished"))?
            .map_err(|_| std::io::Error::other("the inspection of the dump panicked"))?;
        timings.part("inspection", inspected.busy);
        let summary = inspected.summary;
        let stored = match inspected.written {
            None => None,
            Some(t) => {
                let w = t
                    .join()
                    .map_err(|_| std::io::Error::other("writing the dump panicked"))??;
                timings.part("writes", w.busy);
                timings.part("fsync", w.fsync);
                let sha256 = match w.sha256 {
                    Some(sha) => sha,
                    // Plain SQL: the file holds exactly the bytes the inspector hashed, so
                    // their digest is the file's; hashing them a second time would prove
                    // nothing more. The count must agree all the same.
                    None if w.bytes == summary.bytes => summary.sha256.clone(),
                    None => {
                        return Err(std::io::Error::other(format!(
                            "{} bytes were written for {} bytes of dump",
                            w.bytes, summary.bytes
                        )));
                    }
                };
                Some(Stored {
                    bytes: w.bytes,
                    sha256,
                })
            }
        };
        Ok((summary, stored))
    }
}

/// The inspecting thread: reads the pipe into chunks, inspects each and hands it to the
/// writing thread (started here when there is a file).
fn inspect_chunks(
    handle: &tokio::runtime::Handle,
    reader: &mut tokio::io::DuplexStream,
    mut inspector: Inspector,
    encoder: Option<Encoder>,
    early: Option<File>,
    snapshot: Option<Arc<tokio::sync::Notify>>,
) -> Inspected {
    use tokio::io::AsyncReadExt;
    let (to_writer, from_inspector) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUE);
    let (give_back, take_back) = std::sync::mpsc::channel::<Vec<u8>>();
    let written = encoder.map(|enc| {
        std::thread::Builder::new()
            .name("dump-write".into())
            .spawn(move || write_chunks(enc, early, from_inspector, give_back))
    });
    let (mut written, mut to_writer) = match written {
        Some(Ok(t)) => (Some(t), Some(to_writer)),
        Some(Err(e)) => {
            // Without a writing thread nothing can be stored: say so where it is read.
            let failed = std::thread::spawn(move || Err(e));
            (Some(failed), None)
        }
        None => (None, None),
    };
    let mut busy = Duration::ZERO;
    let mut signalled = snapshot.is_none();
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        // Read into the chunk's spare room (at least half of it is free), without zeroing.
        let filled = chunk.len();
        let n = handle.block_on(reader.read_buf(&mut chunk)).unwrap_or(0);
        let t = Instant::now();
        inspector.update(&chunk[filled..]);
        busy += t.elapsed();
        if !signalled && inspector.databases_entered() > 0 {
            if let Some(s) = &snapshot {
                s.notify_one();
            }
            signalled = true;
        }
        let end = n == 0;
        if (end && !chunk.is_empty()) || chunk.len() >= CHUNK / 2 {
            let mut next = take_back
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
            next.clear();
            let full = std::mem::replace(&mut chunk, next);
            if let Some(tx) = &to_writer
                && tx.send(full).is_err()
            {
                // The writer stopped (its error is read at the end): stop reading, so the
                // stream fails instead of being thrown away.
                to_writer = None;
                break;
            }
        }
        if end {
            break;
        }
    }
    drop(to_writer);
    Inspected {
        summary: inspector.finish(),
        busy,
        written: written.take(),
    }
}

/// The writing thread: compresses and writes each chunk, then flushes and syncs the file.
///
/// The kernel starts writing a file's dirty pages back only past `vm.dirty_background_ratio`
/// of memory (10% by default) or once they are 30 s old, so a dump of a few GiB would
/// otherwise be written to disk by the final fsync alone while the command waits. Every
/// [`FLUSH_EVERY`] bytes, a third thread syncs what was written so far (on its own handle of
/// the file, never holding the writing back), so the disk works while the dump streams. The
/// final `sync_all` is still what decides.
fn write_chunks(
    mut encoder: Encoder,
    early: Option<File>,
    chunks: std::sync::mpsc::Receiver<Vec<u8>>,
    give_back: std::sync::mpsc::Sender<Vec<u8>>,
) -> std::io::Result<Written> {
    let (kick, kicked) = std::sync::mpsc::sync_channel::<()>(1);
    let flusher = early.and_then(|file| {
        std::thread::Builder::new()
            .name("dump-flush".into())
            .spawn(move || {
                for () in kicked {
                    // Only a head start: errors are the final sync's to report.
                    let _ = file.sync_data();
                }
            })
            .ok()
    });
    let mut busy = Duration::ZERO;
    let mut since_flush = 0;
    for chunk in chunks {
        let t = Instant::now();
        encoder.write_all(&chunk)?;
        busy += t.elapsed();
        since_flush += chunk.len() as u64;
        if since_flush >= FLUSH_EVERY {
            since_flush = 0;
            // A sync still running is enough: never wait for it.
            let _ = kick.try_send(());
        }
        let _ = give_back.send(chunk);
    }
    drop(kick);
    let t = Instant::now();
    let mut out = encoder.finish()?;
    out.flush()?;
    busy += t.elapsed();
    if let Some(f) = flusher {
        let _ = f.join();
    }
    let file = out
        .inner
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let t = Instant::now();
    file.sync_all()?;
    let fsync = t.elapsed();
    Ok(Written {
        bytes: out.bytes,
        sha256: out.hasher.map(|h| hex(&h.finalize())),
        busy,
        fsync,
    })
}

impl AsyncWrite for DumpSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let Some(pipe) = this.pipe.as_mut() else {
            return Poll::Ready(Err(std::io::Error::other("the dump was already finished")));
        };
        match Pin::new(pipe).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.bytes += n as u64;
                if let Some(p) = &this.progress {
                    p.set(this.bytes);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Poll::Ready(Err(std::io::Error::other("writing the dump file stopped")))
            }
            other => other,
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The SQL text of a stored dump.
pub fn open_sql(
    path: &Path,
    compression: Option<Compression>,
) -> std::io::Result<Box<dyn Read + Send>> {
    let file = BufReader::with_capacity(1 << 20, File::open(path)?);
    Ok(match compression {
        None => Box::new(file),
        Some(Compression::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Some(Compression::Zstd) => Box::new(zstd::Decoder::with_buffer(file)?),
    })
}

fn inspect_reader(mut sql: impl Read) -> std::io::Result<Summary> {
    let mut inspector = Inspector::new(None);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = sql.read(&mut buf)?;
        if n == 0 {
            break;
        }
        inspector.update(&buf[..n]);
    }
    Ok(inspector.finish())
}

/// A stored dump read once: the file's size and sha256 as stored, and the inspection of its
/// SQL (or why its SQL could not be read: a compressed file cut or changed).
#[derive(Debug)]
pub struct StoredRead {
    pub bytes: u64,
    pub sha256: String,
    pub sql: std::io::Result<Summary>,
}

/// A reader that counts and hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Reads a stored dump in one pass: the stored bytes are hashed as the decompressor takes
/// them, and the SQL it gives goes through an inspector. A plain file's bytes are its SQL, so
/// the inspector's digest is the file's and nothing is hashed twice. Whatever a decompressor
/// leaves unread (it stopped at an error, or bytes follow its last frame) is still hashed, so
/// the file's size and digest always cover the whole file.
pub fn read_stored(path: &Path, compression: Option<Compression>) -> std::io::Result<StoredRead> {
    let file = BufReader::with_capacity(1 << 20, File::open(path)?);
    let Some(compression) = compression else {
        let summary = inspect_reader(file)?;
        return Ok(StoredRead {
            bytes: summary.bytes,
            sha256: summary.sha256.clone(),
            sql: Ok(summary),
        });
    };
    let mut raw = HashingReader {
        inner: file,
        hasher: sha2::Sha256::new(),
        bytes: 0,
    };
    let sql = match compression {
        Compression::Gzip => inspect_reader(flate2::read::MultiGzDecoder::new(&mut raw)),
        Compression::Zstd => zstd::Decoder::new(&mut raw).and_then(inspect_reader),
    };
    std::io::copy(&mut raw, &mut std::io::sink())?;
    Ok(StoredRead {
        bytes: raw.bytes,
        sha256: hex(&raw.hasher.finalize()),
        sql,
    })
}

/// A writer into an async pipe, from a plain thread.
struct PipeWriter {
    handle: tokio::runtime::Handle,
    inner: tokio::io::DuplexStream,
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use tokio::io::AsyncWriteExt;
        self.handle.block_on(self.inner.write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams the selected SQL of a stored dump as an async reader (a thread decompresses and
/// filters). The thread's result says whether everything was read: a restore must check it
/// before calling itself done, since a cut input looks like a short, successful one.
pub fn sql_stream(
    path: &Path,
    compression: Option<Compression>,
    selection: Selection,
) -> std::io::Result<(
    tokio::io::DuplexStream,
    std::thread::JoinHandle<std::io::Result<()>>,
)> {
    let sql = open_sql(path, compression)?;
    let (reader, writer) = tokio::io::duplex(1 << 20);
    let handle = tokio::runtime::Handle::current();
    let thread = std::thread::spawn(move || {
        let mut out = BufWriter::with_capacity(
            1 << 20,
            PipeWriter {
                handle: handle.clone(),
                inner: writer,
            },
        );
        sections::filter(BufReader::with_capacity(1 << 20, sql), &mut out, selection)?;
        let pipe = out
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        use tokio::io::AsyncWriteExt;
        let mut inner = pipe.inner;
        handle.block_on(inner.shutdown())
    });
    Ok((reader, thread))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_compression_round_trips_and_is_hashed_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let text = "INSERT INTO `t` VALUES (1),(2);\n-- Dump completed on x\n".repeat(1000);
        for c in [None, Some(Compression::Gzip), Some(Compression::Zstd)] {
            let path = dir.path().join(format!("d{c:?}.sql"));
            let mut sink = DumpSink::new(Some(&path), c, Some("db"), None, None).unwrap();
            use tokio::io::AsyncWriteExt;
            for chunk in text.as_bytes().chunks(777) {
                sink.write_all(chunk).await.unwrap();
            }
            let (summary, stored) = sink.finish(&mut Timings::new(false)).unwrap();
            let stored = stored.unwrap();
            assert_eq!(summary.bytes, text.len() as u64);
            assert_eq!(summary.rows.values().sum::<u64>(), 2000);
            assert!(summary.trailer);
            let (bytes, sha) =
                upgrade_shared::backup_manifest::sha256_of(File::open(&path).unwrap()).unwrap();
            assert_eq!((bytes, sha), (stored.bytes, stored.sha256));
            let back = read_stored(&path, c).unwrap().sql.unwrap();
            assert_eq!(back.sha256, summary.sha256);
            if c.is_some() {
                assert!(stored.bytes < summary.bytes, "{c:?} compresses");
            }
        }
    }

    #[tokio::test]
    async fn one_read_of_a_stored_dump_gives_the_file_digest_and_the_sql_inspection() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let text = big_dump();
        for c in [None, Some(Compression::Gzip), Some(Compression::Zstd)] {
            let path = dir.path().join(format!("r{c:?}.sql"));
            let mut sink = DumpSink::new(Some(&path), c, None, None, None).unwrap();
            sink.write_all(text.as_bytes()).await.unwrap();
            let (summary, stored) = sink.finish(&mut Timings::new(false)).unwrap();
            let stored = stored.unwrap();
            let read = read_stored(&path, c).unwrap();
            assert_eq!((read.bytes, &read.sha256), (stored.bytes, &stored.sha256));
            assert_eq!(read.sql.unwrap(), summary, "{c:?}");

            // Bytes after the last compressed frame, or a byte changed inside one: the file's
            // size and digest still cover every byte, whatever the decompressor made of it.
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend_from_slice(b"tail");
            let at = bytes.len() / 2;
            bytes[at] ^= 0x55;
            std::fs::write(&path, &bytes).unwrap();
            let read = read_stored(&path, c).unwrap();
            let (n, sha) = upgrade_shared::backup_manifest::sha256_of(&bytes[..]).unwrap();
            assert_eq!((read.bytes, read.sha256), (n, sha), "{c:?}");
        }
        let missing = read_stored(&dir.path().join("none.sql"), None).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }

    /// A dump many times larger than the pipe and the queue between the threads.
    fn big_dump() -> String {
        let mut text = String::from("-- MariaDB dump\nUSE `shop`;\n");
        let row = format!("(1,'{}',0x{})", "it''s (x); ".repeat(20), "AB".repeat(1000));
        for _ in 0..3000 {
            text.push_str("INSERT INTO `items` VALUES\n");
            text.push_str(&[row.as_str(); 2].join(",\n"));
            text.push_str(";\n");
        }
        text.push_str("-- Dump completed on 2026-12-01\n");
        text
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_dump_streams_through_both_threads_whole_and_in_order() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let text = big_dump();
        assert!(text.len() > 12 * CHUNK, "{}", text.len());
        for c in [None, Some(Compression::Zstd)] {
            let path = dir.path().join(format!("big{c:?}.sql"));
            let mut sink = DumpSink::new(Some(&path), c, None, None, None).unwrap();
            for piece in text.as_bytes().chunks(300_007) {
                sink.write_all(piece).await.unwrap();
            }
            let (summary, stored) = sink.finish(&mut Timings::new(false)).unwrap();
            let stored = stored.unwrap();
            assert_eq!(summary.bytes, text.len() as u64);
            assert_eq!(
                summary.rows.get(&("shop".into(), "items".into())),
                Some(&6000)
            );
            assert!(summary.trailer && summary.complete);
            let (bytes, sha) =
                upgrade_shared::backup_manifest::sha256_of(File::open(&path).unwrap()).unwrap();
            assert_eq!((bytes, sha), (stored.bytes, stored.sha256));
            let back = read_stored(&path, c).unwrap().sql.unwrap();
            assert_eq!(back, summary, "{c:?}: the file holds what was inspected");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_that_cannot_be_written_fails_the_stream_and_names_the_cause() {
        use tokio::io::AsyncWriteExt;
        let text = big_dump();
        // Every write to /dev/full fails with ENOSPC, as on a full disk.
        let mut sink = DumpSink::new(Some(Path::new("/dev/full")), None, None, None, None).unwrap();
        let mut refused = false;
        for piece in text.as_bytes().chunks(65_536) {
            if sink.write_all(piece).await.is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "the stream stops once the file cannot be written");
        let err = sink.finish(&mut Timings::new(false)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_snapshot_is_announced_by_the_first_use_line_only() {
        use tokio::io::AsyncWriteExt;
        let notify = Arc::new(tokio::sync::Notify::new());
        let mut sink = DumpSink::new(None, None, None, None, Some(notify.clone())).unwrap();
        sink.write_all(b"-- MariaDB dump 10.19\n/*!40101 SET NAMES utf8mb4 */;\n")
            .await
            .unwrap();
        let early = tokio::time::timeout(Duration::from_millis(300), notify.notified()).await;
        assert!(
            early.is_err(),
            "the header alone says nothing of the snapshot"
        );
        sink.write_all(b"USE `shop`;\n").await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), notify.notified())
            .await
            .expect("announced once USE went through the inspector");
        sink.write_all(b"-- Dump completed\n").await.unwrap();
        let (summary, stored) = sink.finish(&mut Timings::new(false)).unwrap();
        assert!(summary.trailer);
        assert_eq!(stored, None);
    }

    #[tokio::test]
    async fn a_stream_delivers_the_selected_text() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sql");
        std::fs::write(&path, "USE `a`;\nINSERT 1;\nUSE `b`;\nINSERT 2;\n").unwrap();
        let (mut r, t) = sql_stream(
            &path,
            None,
            Selection {
                only: Some("b".into()),
                into: Some("c".into()),
            },
        )
        .unwrap();
        let mut out = String::new();
        r.read_to_string(&mut out).await.unwrap();
        t.join().unwrap().unwrap();
        assert_eq!(out, "USE `c`;\nINSERT 2;\n");
    }
}
