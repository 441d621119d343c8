//! The manifest written beside every dump (`FILE.manifest.json`): what was dumped, from where,
//! how, and what proves the file whole. `kubectl upgrade-backup` writes it; `verify`,
//! `restore`, `list`, `upgrade-migrate-db apply --backup` and `upgrade-verify` read it.
//!
//! What a reader may rely on:
//! - `sha256` and `bytes` are of the file exactly as stored (compressed when `compression` is
//!   set); `sql_sha256` and `sql_bytes` of the SQL text inside it, which is what the pod
//!   produced (its own in-pod sha256 agreed, or the dump was not kept).
//! - `verified` is true only when every check of the dump passed: the dump process's own exit
//!   status 0, the `-- Dump completed` trailer, the local and in-pod digests equal, and every
//!   table's rows counted. A dump that fails any of them is kept only as `FILE.partial`, so a
//!   manifest with `verified: false` is not expected beside a final file.
//! - Row counts (`tables[].rows`) are the rows of the dump's own `INSERT` statements, so they
//!   belong to the dump's consistent snapshot (`rows_from: dump`). `checksum` is MySQL's
//!   `CHECKSUM TABLE` when the table was the same in a snapshot taken before the dump's own and
//!   in one taken after it (then it is the dump's too), and absent when it changed or could
//!   not be taken.
//!
//! [`Manifest::check_file`] recomputes size and sha256 of a file against its manifest; the
//! content checks of a dump (trailer, decompression) live in the backup plugin.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::mysql::ServerInfo;

/// The manifest format this code writes.
pub const FORMAT: u32 = 1;

/// What a dump holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Schema, data, routines, events and triggers: restores into an empty database.
    Full,
    /// Rows only (`--no-create-info`), some tables left out: loads into an existing schema.
    DataOnly,
}

/// How the file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    /// The file name suffix (`.gz`, `.zst`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }
}

/// One table of a dumped database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    /// Rows in the dump.
    pub rows: u64,
    /// `CHECKSUM TABLE` of the unchanged table (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<u64>,
}

/// One dumped database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    pub name: String,
    pub tables: Vec<Table>,
}

/// Where the dump file lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// A file on the machine that ran the dump (`--output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// A file inside the database pod, on its own volume (`--to-volume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
}

/// The program versions that made the dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// `kubectl-upgrade-backup`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The dump program in the pod (`mariadb-dump`, `mysqldump`).
    pub dump: String,
    /// Its `--version` line.
    pub dump_version: String,
}

/// The results of the checks made while dumping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checks {
    /// The dump process's own exit status, as the pod reported it.
    pub exit_status: i32,
    /// The `-- Dump completed` trailer was the last line.
    pub trailer: bool,
    /// The pod's own sha256 of what it sent (and of the file on its volume) equals ours.
    pub pod_sha256: bool,
    /// Every table's rows were counted.
    pub rows_counted: bool,
}

/// `FILE.manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The dump's file name (no directory).
    pub file: String,
    pub location: Location,
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Size of the file as stored.
    pub bytes: u64,
    /// sha256 (hex) of the file as stored.
    pub sha256: String,
    /// Size of the SQL text.
    pub sql_bytes: u64,
    /// sha256 (hex) of the SQL text.
    pub sql_sha256: String,
    pub server: ServerInfo,
    pub databases: Vec<Database>,
    /// `db.table` names left out (`--ignore-table`).
    #[serde(default)]
    pub ignored_tables: Vec<String>,
    /// The dump program's options (never credentials).
    pub flags: Vec<String>,
    /// `dump` (rows counted in the dump's statements, its consistent snapshot) or
    /// `writers-stopped`.
    pub rows_from: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// RFC 3339 times.
    pub started: String,
    pub finished: String,
    pub tool: Tool,
    pub checks: Checks,
    /// Every check passed (see the module docs).
    pub verified: bool,
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The JSON is not a manifest.
    #[error("{path}: not a backup manifest: {message}")]
    Parse { path: String, message: String },
    /// A format newer than this program knows.
    #[error("{path}: manifest format {format} is newer than this program reads ({FORMAT})")]
    Format { path: String, format: u32 },
}

/// Where the manifest of a dump file lives: `FILE.manifest.json`.
pub fn manifest_path(dump: &Path) -> PathBuf {
    let mut name = dump.as_os_str().to_os_string();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// Where an unverified dump is kept: `FILE.partial`.
pub fn partial_path(dump: &Path) -> PathBuf {
    let mut name = dump.as_os_str().to_os_string();
    name.push(".partial");
    PathBuf::from(name)
}

/// Size and lower-case hex sha256 of a reader's bytes.
pub fn sha256_of(mut r: impl Read) -> std::io::Result<(u64, String)> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex(&hasher.finalize())))
}

/// Lower-case hex of bytes (a digest).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A difference between a file and its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    Size { manifest: u64, file: u64 },
    Sha256 { manifest: String, file: String },
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileProblem::Size { manifest, file } => {
                write!(f, "the file has {file} bytes, the manifest says {manifest}")
            }
            FileProblem::Sha256 { manifest, file } => write!(
                f,
                "the file's sha256 is {file}, the manifest says {manifest}"
            ),
        }
    }
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn read(path: &Path) -> Result<Manifest, ManifestError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: shown.clone(),
            source,
        })?;
        Manifest::from_json(&shown, &text)
    }

    /// Parses a manifest; `origin` names it in errors.
    pub fn from_json(origin: &str, text: &str) -> Result<Manifest, ManifestError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ManifestError::Parse {
                path: origin.to_string(),
                message: e.to_string(),
            })?;
        let format = value.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
        if format > u64::from(FORMAT) {
            return Err(ManifestError::Format {
                path: origin.to_string(),
                format: u32::try_from(format).unwrap_or(u32::MAX),
            });
        }
        serde_json::from_value(value).map_err(|e| ManifestError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })
    }

    /// Writes the manifest atomically (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        let io = |source| ManifestError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = self.to_json();
        let mut tmp = path.as_os_str().to_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Total rows over every table.
    pub fn total_rows(&self) -> u64 {
        self.databases
            .iter()
            .flat_map(|d| &d.tables)
            .map(|t| t.rows)
            .sum()
    }

    /// A table by database and name.
    pub fn table(&self, database: &str, table: &str) -> Option<&Table> {
        self.databases
            .iter()
            .find(|d| d.name == database)?
            .tables
            .iter()
            .find(|t| t.name == table)
    }

    /// Recomputes size and sha256 of `file` and compares them with the manifest.
    pub fn check_file(&self, file: &Path) -> Result<Vec<FileProblem>, ManifestError> {
        let f = std::fs::File::open(file).map_err(|source| ManifestError::Io {
            path: file.display().to_string(),
            source,
        })?;
        let (bytes, sha) =
            sha256_of(std::io::BufReader::new(f)).map_err(|source| ManifestError::Io {
                path: file.display().to_string(),
                source,
            })?;
        Ok(self.compare(bytes, &sha))
    }

    /// How a file of `bytes` bytes with sha256 `sha256` differs from what the manifest says.
    pub fn compare(&self, bytes: u64, sha256: &str) -> Vec<FileProblem> {
        let mut problems = Vec::new();
        if bytes != self.bytes {
            problems.push(FileProblem::Size {
                manifest: self.bytes,
                file: bytes,
            });
        }
        if sha256 != self.sha256 {
            problems.push(FileProblem::Sha256 {
                manifest: self.sha256.clone(),
                file: sha256.to_string(),
            });
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            format: FORMAT,
            file: "fate-9999-v1.8.0.sql".into(),
            location: Location {
                local: Some("/backups/fate-9999-v1.8.0.sql".into()),
                volume: None,
            },
            mode: Mode::Full,
            compression: None,
            bytes: 11,
            sha256: "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9".into(),
            sql_bytes: 11,
            sql_sha256: "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9".into(),
            server: ServerInfo {
                version: "10.11.6-MariaDB".into(),
                comment: "Debian 12".into(),
                mariadb: true,
                gtid_mode: None,
            },
            databases: vec![Database {
                name: "eggroll_meta".into(),
                tables: vec![
                    Table {
                        name: "server_node".into(),
                        rows: 3,
                        checksum: Some(1234),
                    },
                    Table {
                        name: "t_engine_registry".into(),
                        rows: 0,
                        checksum: None,
                    },
                ],
            }],
            ignored_tables: vec![],
            flags: vec!["--single-transaction".into()],
            rows_from: "dump".into(),
            namespace: "fate-9999".into(),
            pod: "mysql-77f95d4844-8dfjj".into(),
            container: "mysql".into(),
            started: "2026-12-01T09:00:00Z".into(),
            finished: "2026-12-01T09:00:05Z".into(),
            tool: Tool {
                name: "kubectl-upgrade-backup".into(),
                version: "0.1.0".into(),
                dump: "mariadb-dump".into(),
                dump_version: "mariadb-dump Ver 10.19".into(),
            },
            checks: Checks {
                exit_status: 0,
                trailer: true,
                pod_sha256: true,
                rows_counted: true,
            },
            verified: true,
        }
    }

    #[test]
    fn manifests_round_trip_and_name_their_files() {
        let m = sample();
        let back = Manifest::from_json("m.json", &m.to_json()).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.total_rows(), 3);
        assert_eq!(m.table("eggroll_meta", "server_node").unwrap().rows, 3);
        assert!(m.table("eggroll_meta", "nope").is_none());
        assert_eq!(
            manifest_path(Path::new("/b/x.sql.gz")),
            Path::new("/b/x.sql.gz.manifest.json")
        );
        assert_eq!(partial_path(Path::new("x.sql")), Path::new("x.sql.partial"));
    }

    #[test]
    fn newer_formats_and_garbage_are_refused_with_the_file_name() {
        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["format"] = 2.into();
        let e = Manifest::from_json("x.manifest.json", &v.to_string()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.manifest.json: manifest format 2")
        );
        let e = Manifest::from_json("y.json", "{\"format\": 1}").unwrap_err();
        assert!(
            e.to_string().starts_with("y.json: not a backup manifest"),
            "{e}"
        );
    }

    #[test]
    fn files_are_checked_against_size_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.sql");
        std::fs::write(&file, b"hello world").unwrap();
        let m = sample();
        assert_eq!(m.check_file(&file).unwrap(), vec![]);
        std::fs::write(&file, b"hello_world").unwrap();
        let problems = m.check_file(&file).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().starts_with("the file's sha256 is"));
        let path = dir.path().join("d.sql.manifest.json");
        m.write(&path).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), m);
    }
}
