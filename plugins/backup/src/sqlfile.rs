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
use std::task::{Context, Poll};

use sha2::Digest;
use tokio::io::AsyncWrite;
use upgrade_shared::backup_manifest::{Compression, hex};
use upgrade_shared::progress::Progress;

use crate::inspect::{Inspector, Summary};
use crate::sections::{self, Selection};

/// A writer that hashes and counts what goes through it.
pub struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
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

/// Where a dump's bytes go: every byte is inspected; with a file, it is also compressed as
/// asked and written, and the stored bytes hashed.
pub struct DumpSink {
    inspector: Inspector,
    encoder: Option<Encoder>,
    progress: Option<Progress>,
    failed: Option<std::io::Error>,
}

impl DumpSink {
    /// A sink writing to `file` (created or truncated), or only inspecting.
    pub fn new(
        file: Option<&Path>,
        compression: Option<Compression>,
        database: Option<&str>,
        progress: Option<Progress>,
    ) -> std::io::Result<DumpSink> {
        let encoder = match file {
            None => None,
            Some(path) => {
                let out = Hashing {
                    inner: BufWriter::with_capacity(1 << 20, File::create(path)?),
                    hasher: sha2::Sha256::new(),
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
        Ok(DumpSink {
            inspector: Inspector::new(database),
            encoder,
            progress,
            failed: None,
        })
    }

    /// Ends the dump: the inspection's summary and, with a file, what was stored (flushed and
    /// synced to disk).
    pub fn finish(self) -> std::io::Result<(Summary, Option<Stored>)> {
        if let Some(p) = self.progress {
            p.finish();
        }
        if let Some(e) = self.failed {
            return Err(e);
        }
        let stored = match self.encoder {
            None => None,
            Some(enc) => {
                let mut out = enc.finish()?;
                out.flush()?;
                let file = out
                    .inner
                    .into_inner()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                file.sync_all()?;
                Some(Stored {
                    bytes: out.bytes,
                    sha256: hex(&out.hasher.finalize()),
                })
            }
        };
        Ok((self.inspector.finish(), stored))
    }
}

impl AsyncWrite for DumpSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        this.inspector.update(buf);
        if let Some(enc) = this.encoder.as_mut()
            && let Err(e) = enc.write_all(buf)
        {
            let kind = e.kind();
            let message = e.to_string();
            this.failed = Some(e);
            return Poll::Ready(Err(std::io::Error::new(kind, message)));
        }
        if let Some(p) = &this.progress {
            p.set(this.inspector.bytes());
        }
        Poll::Ready(Ok(buf.len()))
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

/// Reads a stored dump through an inspector.
pub fn inspect_file(
    path: &Path,
    compression: Option<Compression>,
    progress: Option<&Progress>,
) -> std::io::Result<Summary> {
    let mut sql = open_sql(path, compression)?;
    let mut inspector = Inspector::new(None);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = sql.read(&mut buf)?;
        if n == 0 {
            break;
        }
        inspector.update(&buf[..n]);
        if let Some(p) = progress {
            p.set(inspector.bytes());
        }
    }
    Ok(inspector.finish())
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
            let mut sink = DumpSink::new(Some(&path), c, Some("db"), None).unwrap();
            use tokio::io::AsyncWriteExt;
            for chunk in text.as_bytes().chunks(777) {
                sink.write_all(chunk).await.unwrap();
            }
            let (summary, stored) = sink.finish().unwrap();
            let stored = stored.unwrap();
            assert_eq!(summary.bytes, text.len() as u64);
            assert_eq!(summary.rows.values().sum::<u64>(), 2000);
            assert!(summary.trailer);
            let (bytes, sha) =
                upgrade_shared::backup_manifest::sha256_of(File::open(&path).unwrap()).unwrap();
            assert_eq!((bytes, sha), (stored.bytes, stored.sha256));
            let back = inspect_file(&path, c, None).unwrap();
            assert_eq!(back.sha256, summary.sha256);
            if c.is_some() {
                assert!(stored.bytes < summary.bytes, "{c:?} compresses");
            }
        }
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
