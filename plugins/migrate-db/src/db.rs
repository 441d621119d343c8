//! The database the scripts run in: found through the profile's component, logged into with
//! `shared::mysql` (credentials over exec stdin, never argv), and talked to either by one-shot
//! queries or by one long-lived client session ([`with_session`]) that holds the migration
//! lock for as long as it runs.

use anyhow::Context as _;
use tokio::sync::mpsc::unbounded_channel;
use upgrade_shared::exec::ExecError;
use upgrade_shared::mysql::{self, DbPod, MysqlError, Session, Source};

use crate::client::{Client, session_args};
use crate::commands::Setup;

/// A logged-in database.
pub struct Db {
    pub session: Session,
    pub database: String,
}

impl Db {
    /// Finds the database pod of the profile's component and logs in.
    pub async fn connect(
        kube: &kube::Client,
        namespace: &str,
        setup: &Setup,
    ) -> anyhow::Result<Db> {
        let component = setup
            .profile
            .component(&setup.component)
            .context("the profile's sql component is missing")?;
        let source = Source::Component(Box::new(component.clone()));
        let pod: DbPod = mysql::locate(kube, namespace, &source, None).await?;
        // Logging in only reads (the container's env, a Secret, which client it has), so a
        // connection cut on the way is tried again, a bounded number of times.
        let mut attempt = 1;
        let session = loop {
            match Session::open(kube, pod.clone()).await {
                Ok(s) => break s,
                Err(MysqlError::Exec(ExecError::Cut { .. })) if attempt < 3 => attempt += 1,
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Db {
            session,
            database: setup.database.clone(),
        })
    }

    /// Where the database runs, for messages.
    pub fn place(&self) -> String {
        format!(
            "pod/{} (container {}) in namespace {}",
            self.session.db.pod, self.session.db.container, self.session.db.namespace
        )
    }

    /// The history table's rows, oldest first, with one short-lived client per query; `None`
    /// while the table does not exist (a command that writes it reads it under the lock
    /// instead: `commands::with_locked_history`).
    pub async fn history(&self) -> anyhow::Result<Option<Vec<crate::history::Row>>> {
        use crate::history;
        let exists = self
            .query(&history::exists(&self.database))
            .await?
            .first()
            .is_some_and(|c| c != "0");
        if !exists {
            return Ok(None);
        }
        let rows = self
            .query(&history::select(&history::table(&self.database)))
            .await?;
        Ok(Some(history::parse_rows(&rows.join("\n"))?))
    }

    /// One query with its own short-lived client; rows as raw batch lines (`NULL` for NULL).
    pub async fn query(&self, sql: &str) -> anyhow::Result<Vec<String>> {
        let rows = self
            .session
            .query(&format!(
                "USE {};\n{sql};\n",
                mysql::quote_ident(&self.database)
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|f| f.unwrap_or_else(|| "NULL".to_string()))
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .collect())
    }
}

/// Runs `work` on one client session in the database pod: the client starts, `work` feeds it
/// step by step, and the session ends (releasing every lock it held) when `work` returns.
pub async fn with_session<T>(
    db: &Db,
    work: impl AsyncFnOnce(&mut Client) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let (stdin_w, stdin_r) = tokio::io::duplex(1 << 16);
    let (stdout_w, stdout_r) = tokio::io::duplex(1 << 16);
    let (tx, rx) = unbounded_channel::<String>();
    let args = session_args(&db.database);
    let tool = db.session.tools.client.clone();
    let exec = async move {
        let mut stdout_w = stdout_w;
        let mut on_stderr = move |line: &str| {
            let _ = tx.send(line.to_string());
        };
        let input: Box<dyn tokio::io::AsyncRead + Send + Unpin> = Box::new(stdin_r);
        let finished = db
            .session
            .run(&tool, &args, Some(input), &mut stdout_w, &mut on_stderr)
            .await;
        drop(stdout_w);
        finished
    };
    let drive = async move {
        let mut client = Client::start(Box::new(stdin_w), Box::new(stdout_r), rx).await?;
        let result = work(&mut client).await;
        let closed = client.close().await;
        match (result, closed) {
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) => Err(anyhow::Error::new(e).context("closing the database session")),
            (Err(e), _) => Err(e),
        }
    };
    let (finished, result) = tokio::join!(exec, drive);
    match (result, finished) {
        (Ok(v), Ok(_)) => Ok(v),
        (Ok(v), Err(e)) => {
            // The work is done and confirmed statement by statement; a session that then
            // ends badly changes nothing that was recorded.
            eprintln!("warning: the database session ended with an error: {e}");
            Ok(v)
        }
        (Err(e), Err(exec)) => {
            Err(e.context(format!("the database client in {}: {exec}", db.place())))
        }
        (Err(e), Ok(_)) => Err(e),
    }
}
