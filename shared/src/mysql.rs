//! Talking to a MySQL or MariaDB server inside its own pod, the way a careful person would with
//! `kubectl exec`, without ever putting a password where others can read it.
//!
//! - **Where**: [`locate`] finds the database pod and container from a profile component that
//!   has `database:` ([`Source::Component`]) or from `--target deploy/N|sts/N|pod/N` and `-c`
//!   ([`Source::Target`], parsed by [`TargetRef::parse`]). A Running, Ready pod is preferred;
//!   the container is `-c`, else the one with a MySQL-family image, else the only one.
//! - **Who**: [`login_source`] reads the container's env as the official images do
//!   (`MARIADB_ROOT_PASSWORD`/`MYSQL_ROOT_PASSWORD` and their `_FILE` forms, the
//!   allow-empty-password switches, then `MYSQL_USER`/`MYSQL_PASSWORD` and the `MARIADB_` ones),
//!   literal values and `secretKeyRef`/`configMapKeyRef`/`envFrom` alike; [`resolve_login`]
//!   reads the referenced Secret (or the file in the container) into a [`Login`], whose `Debug`
//!   never shows the password.
//! - **How the password travels**: over exec stdin, never in argv, env, URLs or a file on disk.
//!   Every client runs under [`PRELUDE`], a fixed `sh` script that reads the option text from
//!   stdin up to [`END_OF_OPTIONS`], and serves it through a mode-0600 FIFO in a private
//!   directory passed as `--defaults-extra-file` (the client's first option). The text exists
//!   only in the shell's memory and the pipe; the FIFO is gone when the script ends. The rest of
//!   stdin (SQL to load, for instance) goes on to the client untouched.
//! - **Which tools**: [`Tools::detect`] finds `mariadb`/`mysql` and `mariadb-dump`/`mysqldump`
//!   in the container (MariaDB 11 images no longer ship the `mysql*` names; MySQL images have
//!   only those).
//! - **Asking**: [`Session::query`] runs SQL text and returns rows as TSV fields (batch mode,
//!   unescaped; SQL `NULL` is `None`); [`Session::server`] reads version, flavour and GTID mode;
//!   [`Session::run`] runs any client with streamed stdin/stdout (dumps, restores), and
//!   [`Session::run_script`] a custom script body after the prelude (see its docs).
//!
//! Names that reach a command line are checked first ([`check_identifier`]).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::api::{Api, ListParams};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::exec::{self, Command, ExecError, Finished, Input};
use crate::profile::{Component, Database, Profile};

/// The line that ends the option text on stdin. Option lines are `[client]` or `key="…"`, so
/// no option line can equal it.
pub const END_OF_OPTIONS: &str = "[kubectl-upgrade:end-of-options]";

/// The script every client runs under (`sh -c PRELUDE+BODY kubectl-upgrade TOOL ARGS…`).
///
/// It reads the option text, then defines `new_cnf`, which sets `$cnf` to a fresh FIFO serving
/// that text once (one per client started: a FIFO can be read only once). `$tool` is the
/// client binary, `"$@"` its arguments, `$d` a private directory removed at exit.
pub const PRELUDE: &str = r#"set -u
umask 077
tool=$1
shift
d=$(mktemp -d) || { echo "kubectl-upgrade: cannot create a private directory in the container" >&2; exit 70; }
writers=
cleanup() { for w in $writers; do kill "$w" 2>/dev/null; done; rm -rf "$d"; }
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP
opts=
got=
while IFS= read -r line; do
  if [ "$line" = "[kubectl-upgrade:end-of-options]" ]; then got=1; break; fi
  opts="$opts$line
"
done
[ -n "$got" ] || { echo "kubectl-upgrade: the client options did not arrive on stdin" >&2; exit 70; }
n=0
new_cnf() {
  n=$((n+1))
  cnf="$d/client-$n.cnf"
  mkfifo -m 600 "$cnf" || exit 70
  printf '%s' "$opts" > "$cnf" &
  writers="$writers $!"
}
"#;

/// The body that runs the client once with its arguments and passes its exit status on.
pub const RUN_CLIENT: &str = r#"new_cnf
"$tool" --defaults-extra-file="$cnf" "$@"
"#;

/// Why the database could not be reached or used.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    /// `--target` is not `deploy/N`, `sts/N` or `pod/N`.
    #[error(
        "invalid --target {0:?}: use deploy/NAME, sts/NAME or pod/NAME (statefulset/, deployment/ and po/ too)"
    )]
    BadTarget(String),
    /// A name that cannot be a MySQL identifier of this suite.
    #[error("{0}")]
    BadName(String),
    /// The profile names no component with `database:`.
    #[error("profile {0} names no database component")]
    NoDatabaseComponent(String),
    /// No pod to run in.
    #[error("{0}")]
    NoPod(String),
    /// The container's env does not say how to log in.
    #[error("{0}")]
    NoCredentials(String),
    /// A Secret or ConfigMap the env references is missing or lacks the key.
    #[error("{0}")]
    Reference(String),
    /// Neither MariaDB's nor MySQL's client tools are in the container.
    #[error("{0}")]
    NoTools(String),
    /// An API request failed.
    #[error("{what}: {message}")]
    Api { what: String, message: String },
    /// Running the client failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The client printed something that is not what it should be.
    #[error("{0}")]
    Output(String),
}

type Result<T> = std::result::Result<T, MysqlError>;

fn api_err(what: String) -> impl FnOnce(kube::Error) -> MysqlError {
    move |e| MysqlError::Api {
        what,
        message: crate::api::describe(&e),
    }
}

/// `--target`: the workload or pod that runs the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef {
    Deployment(String),
    StatefulSet(String),
    Pod(String),
}

impl TargetRef {
    /// Parses `deploy/N`, `deployment/N`, `sts/N`, `statefulset/N`, `pod/N` or `po/N`.
    pub fn parse(text: &str) -> Result<TargetRef> {
        let bad = || MysqlError::BadTarget(text.to_string());
        let (kind, name) = text.split_once('/').ok_or_else(bad)?;
        crate::names::check_name("target", name).map_err(MysqlError::BadName)?;
        let name = name.to_string();
        Ok(match kind {
            "deploy" | "deployment" | "deployments" => TargetRef::Deployment(name),
            "sts" | "statefulset" | "statefulsets" => TargetRef::StatefulSet(name),
            "pod" | "po" | "pods" => TargetRef::Pod(name),
            _ => return Err(bad()),
        })
    }
}

impl std::fmt::Display for TargetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetRef::Deployment(n) => write!(f, "deploy/{n}"),
            TargetRef::StatefulSet(n) => write!(f, "sts/{n}"),
            TargetRef::Pod(n) => write!(f, "pod/{n}"),
        }
    }
}

/// Where the database runs, as the user named it.
#[derive(Debug, Clone)]
pub enum Source {
    /// The profile's component with `database:`.
    Component(Box<Component>),
    /// `--target` (and `-c`).
    Target(TargetRef),
}

impl Source {
    /// The profile's database component.
    pub fn from_profile(profile: &Profile) -> Result<Source> {
        database_component(profile)
            .map(|c| Source::Component(Box::new(c.clone())))
            .ok_or_else(|| MysqlError::NoDatabaseComponent(profile.name.clone()))
    }
}

/// The first component of a profile that serves a database.
pub fn database_component(profile: &Profile) -> Option<&Component> {
    profile.components.iter().find(|c| c.database.is_some())
}

/// The database pod and container found by [`locate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbPod {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
    pub image: String,
    /// What the profile says about the database, when it came from a profile.
    pub database: Option<DatabaseInfo>,
}

/// The profile's view of the database (a copy of its `database:` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    pub databases: Vec<String>,
    pub version_specific_tables: Vec<String>,
    pub data_dir: Option<String>,
}

impl From<&Database> for DatabaseInfo {
    fn from(d: &Database) -> Self {
        DatabaseInfo {
            databases: d.databases.clone(),
            version_specific_tables: d.version_specific_tables.clone(),
            data_dir: d.data_dir.clone(),
        }
    }
}

/// Whether an image is of the MySQL family (MySQL, MariaDB, Percona).
pub fn is_mysql_image(image: &str) -> bool {
    let repo = image.rsplit('/').next().unwrap_or_default();
    let repo = repo.split([':', '@']).next().unwrap_or_default();
    matches!(
        repo,
        "mysql" | "mariadb" | "mysql-server" | "percona-server" | "percona" | "percona-xtradb"
    )
}

/// True for a pod that can take an exec: Running and not being deleted.
pub fn is_running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// True when the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Picks the pod to use among candidates: Running and Ready first, then Running; by name for a
/// stable choice.
pub fn pick_pod(mut pods: Vec<Pod>) -> Option<Pod> {
    pods.retain(is_running);
    pods.sort_by(|a, b| {
        is_ready(b)
            .cmp(&is_ready(a))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    pods.into_iter().next()
}

/// The container to use: `wanted`, else the only MySQL-family one, else the only one.
pub fn pick_container(pod: &Pod, wanted: Option<&str>) -> Result<Container> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let names = || {
        containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(w) = wanted {
        return containers
            .iter()
            .find(|c| c.name == w)
            .cloned()
            .ok_or_else(|| {
                MysqlError::NoPod(format!(
                    "pod/{name} has no container {w:?} (it has: {})",
                    names()
                ))
            });
    }
    let family: Vec<&Container> = containers
        .iter()
        .filter(|c| c.image.as_deref().is_some_and(is_mysql_image))
        .collect();
    match (family.as_slice(), containers.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        (_, [only]) => Ok(only.clone()),
        _ => Err(MysqlError::NoPod(format!(
            "pod/{name} has several containers ({}); say which runs the database with -c",
            names()
        ))),
    }
}

fn selector_of(labels: Option<&BTreeMap<String, String>>) -> String {
    labels
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Finds the database pod and container in `namespace` (a profile component's own namespace
/// wins).
pub async fn locate(
    client: &kube::Client,
    namespace: &str,
    source: &Source,
    container: Option<&str>,
) -> Result<DbPod> {
    let (namespace, selector, what, database) = match source {
        Source::Component(c) => (
            c.namespace.clone().unwrap_or_else(|| namespace.to_string()),
            c.selector.clone(),
            format!("component {} (-l {})", c.name, c.selector),
            c.database.as_ref().map(DatabaseInfo::from),
        ),
        Source::Target(TargetRef::Pod(name)) => {
            let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let pod = read(&format!("cannot read pod/{name}"), || api.get_opt(name))
                .await?
                .ok_or_else(|| {
                    MysqlError::NoPod(format!("pod/{name} not found in namespace {namespace}"))
                })?;
            if !is_running(&pod) {
                return Err(MysqlError::NoPod(format!(
                    "pod/{name} is not running; start the database first"
                )));
            }
            return db_pod(namespace.to_string(), pod, container, None);
        }
        Source::Target(t @ TargetRef::Deployment(name)) => {
            let labels = workload_selector(client, namespace, t, name, |d: Deployment| {
                d.spec.and_then(|s| s.selector.match_labels)
            })
            .await?;
            (namespace.to_string(), labels, t.to_string(), None)
        }
        Source::Target(t @ TargetRef::StatefulSet(name)) => {
            let labels = workload_selector(client, namespace, t, name, |s: StatefulSet| {
                s.spec.and_then(|s| s.selector.match_labels)
            })
            .await?;
            (namespace.to_string(), labels, t.to_string(), None)
        }
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let params = ListParams::default().labels(&selector);
    let pods = read(&format!("cannot list the pods of {what}"), || {
        api.list(&params)
    })
    .await?;
    let pod = pick_pod(pods.items).ok_or_else(|| {
        MysqlError::NoPod(format!(
            "no running pod of {what} in namespace {namespace}; start the database first"
        ))
    })?;
    db_pod(namespace, pod, container, database)
}

/// An API read through the suite's retry budget (conflicts, throttling, server errors and
/// dropped connections are tried again), its last failure named after `what`.
async fn read<T, F, Fut>(what: &str, op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, kube::Error>>,
{
    crate::cluster::retry_kube(crate::flags::RetryBudget::default(), op)
        .await
        .map_err(api_err(what.to_string()))
}

/// The label selector of the workload `--target` names, as `-l` text.
async fn workload_selector<K>(
    client: &kube::Client,
    namespace: &str,
    target: &TargetRef,
    name: &str,
    match_labels: impl FnOnce(K) -> Option<BTreeMap<String, String>>,
) -> Result<String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let workload = read(&format!("cannot read {target}"), || api.get_opt(name))
        .await?
        .ok_or_else(|| MysqlError::NoPod(format!("{target} not found in namespace {namespace}")))?;
    Ok(selector_of(match_labels(workload).as_ref()))
}

fn db_pod(
    namespace: String,
    pod: Pod,
    container: Option<&str>,
    database: Option<DatabaseInfo>,
) -> Result<DbPod> {
    let c = pick_container(&pod, container)?;
    Ok(DbPod {
        namespace,
        pod: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        container: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        database,
    })
}

/// Where one value of the login comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFrom {
    /// Written in the pod spec.
    Literal(String),
    /// A key of a Secret in the pod's namespace.
    Secret { name: String, key: String },
    /// A key of a ConfigMap in the pod's namespace.
    ConfigMap { name: String, key: String },
    /// A file inside the container (`*_PASSWORD_FILE`).
    File(String),
}

impl std::fmt::Display for ValueFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueFrom::Literal(_) => write!(f, "the pod spec"),
            ValueFrom::Secret { name, key } => write!(f, "secret/{name} key {key}"),
            ValueFrom::ConfigMap { name, key } => write!(f, "configmap/{name} key {key}"),
            ValueFrom::File(p) => write!(f, "the file {p} in the container"),
        }
    }
}

/// How to log in, before the referenced values are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSource {
    pub user: ValueFrom,
    /// `None`: an empty password (the allow-empty-password switch).
    pub password: Option<(String, ValueFrom)>,
}

/// A password: shown as `***` by `Debug` so it cannot leak into a log by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Password(text.into())
    }
    /// The password itself; only for the option text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A user and password, ready for the option text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: Password,
    /// Where the password came from (for messages; never the value).
    pub origin: String,
}

/// The env of a container as names → where each value comes from (`env` over `envFrom`, as
/// the kubelet does; the last definition of a name wins).
fn env_map(c: &Container) -> BTreeMap<String, ValueFrom> {
    let mut out = BTreeMap::new();
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        // The keys of an envFrom source are unknown until it is read; the credential names are
        // looked up under the prefix.
        for name in CREDENTIAL_NAMES {
            let Some(key) = name.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if let Some(s) = &from.secret_ref {
                out.insert(
                    name.to_string(),
                    ValueFrom::Secret {
                        name: s.name.clone(),
                        key: key.to_string(),
                    },
                );
            } else if let Some(m) = &from.config_map_ref {
                out.insert(
                    name.to_string(),
                    ValueFrom::ConfigMap {
                        name: m.name.clone(),
                        key: key.to_string(),
                    },
                );
            }
        }
    }
    for e in c.env.iter().flatten() {
        let v = if let Some(v) = &e.value {
            ValueFrom::Literal(v.clone())
        } else if let Some(src) = &e.value_from {
            if let Some(s) = &src.secret_key_ref {
                ValueFrom::Secret {
                    name: s.name.clone(),
                    key: s.key.clone(),
                }
            } else if let Some(m) = &src.config_map_key_ref {
                ValueFrom::ConfigMap {
                    name: m.name.clone(),
                    key: m.key.clone(),
                }
            } else {
                continue;
            }
        } else {
            ValueFrom::Literal(String::new())
        };
        out.insert(e.name.clone(), v);
    }
    out
}

/// The env names the official MySQL and MariaDB images read for their accounts.
const CREDENTIAL_NAMES: &[&str] = &[
    "MARIADB_ROOT_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "MARIADB_ROOT_PASSWORD_FILE",
    "MYSQL_ROOT_PASSWORD_FILE",
    "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD",
    "MYSQL_ALLOW_EMPTY_PASSWORD",
    "MARIADB_USER",
    "MYSQL_USER",
    "MARIADB_PASSWORD",
    "MYSQL_PASSWORD",
    "MARIADB_PASSWORD_FILE",
    "MYSQL_PASSWORD_FILE",
];

/// Reads how to log in from a container's env, preferring root (dumps of routines, events and
/// every database need it): a root password, else root without one when the image was told to
/// allow that, else the application user. Pure: the referenced values are read later.
pub fn login_source(c: &Container) -> Result<LoginSource> {
    let env = env_map(c);
    let first = |names: &[&str]| -> Option<(String, ValueFrom)> {
        names
            .iter()
            .find_map(|n| env.get(*n).map(|v| (n.to_string(), v.clone())))
    };
    let file = |(n, v): (String, ValueFrom)| match v {
        ValueFrom::Literal(path) => (n, ValueFrom::File(path)),
        other => (n, other),
    };
    let root = ValueFrom::Literal("root".into());
    if let Some(p) = first(&["MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD"]) {
        return Ok(LoginSource {
            user: root,
            password: Some(p),
        });
    }
    if let Some(p) = first(&["MARIADB_ROOT_PASSWORD_FILE", "MYSQL_ROOT_PASSWORD_FILE"]) {
        return Ok(LoginSource {
            user: root,
            password: Some(file(p)),
        });
    }
    let allows_empty = ["MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "MYSQL_ALLOW_EMPTY_PASSWORD"]
        .iter()
        .any(|n| matches!(env.get(*n), Some(ValueFrom::Literal(v)) if !v.is_empty() && v != "0" && v != "no" && v != "false"));
    if allows_empty {
        return Ok(LoginSource {
            user: root,
            password: None,
        });
    }
    if let Some(user) = first(&["MARIADB_USER", "MYSQL_USER"]) {
        let password = first(&["MARIADB_PASSWORD", "MYSQL_PASSWORD"])
            .or_else(|| first(&["MARIADB_PASSWORD_FILE", "MYSQL_PASSWORD_FILE"]).map(file));
        if let Some(p) = password {
            return Ok(LoginSource {
                user: user.1,
                password: Some(p),
            });
        }
    }
    Err(MysqlError::NoCredentials(format!(
        "container {:?} does not say how to log in: none of MYSQL_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD (or their _FILE forms), MYSQL_ALLOW_EMPTY_PASSWORD, or MYSQL_USER with MYSQL_PASSWORD is set",
        c.name
    )))
}

/// Reads the values a [`LoginSource`] references.
pub async fn resolve_login(
    client: &kube::Client,
    pods: &Api<Pod>,
    db: &DbPod,
    source: &LoginSource,
) -> Result<Login> {
    let read = |v: ValueFrom| {
        let client = client.clone();
        let ns = db.namespace.clone();
        async move {
            match v {
                ValueFrom::Literal(s) => Ok(s),
                ValueFrom::Secret { name, key } => {
                    let api: Api<Secret> = Api::namespaced(client, &ns);
                    let s = read(&format!("cannot read secret/{name}"), || api.get_opt(&name))
                        .await?
                        .ok_or_else(|| {
                            MysqlError::Reference(format!(
                                "secret/{name}, which the database container's env references, does not exist"
                            ))
                        })?;
                    let bytes = s
                        .data
                        .and_then(|d| d.get(&key).map(|b| b.0.clone()))
                        .or_else(|| {
                            s.string_data
                                .and_then(|d| d.get(&key).map(|t| t.as_bytes().to_vec()))
                        })
                        .ok_or_else(|| {
                            MysqlError::Reference(format!("secret/{name} has no key {key:?}"))
                        })?;
                    String::from_utf8(bytes).map_err(|_| {
                        MysqlError::Reference(format!("secret/{name} key {key:?} is not UTF-8"))
                    })
                }
                ValueFrom::ConfigMap { name, key } => {
                    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
                    let m = read(&format!("cannot read configmap/{name}"), || api.get_opt(&name))
                        .await?
                        .ok_or_else(|| {
                            MysqlError::Reference(format!(
                                "configmap/{name}, which the database container's env references, does not exist"
                            ))
                        })?;
                    m.data.and_then(|d| d.get(&key).cloned()).ok_or_else(|| {
                        MysqlError::Reference(format!("configmap/{name} has no key {key:?}"))
                    })
                }
                ValueFrom::File(path) => {
                    let cmd = Command::new(
                        &db.pod,
                        Some(&db.container),
                        vec!["cat".into(), "--".into(), path.clone()],
                    );
                    let bytes =
                        exec::capture(pods, &cmd, Input::None, &format!("reading {path}")).await?;
                    let text = String::from_utf8(bytes).map_err(|_| {
                        MysqlError::Reference(format!("{path} in the container is not UTF-8"))
                    })?;
                    Ok(text.trim_end_matches(['\n', '\r']).to_string())
                }
            }
        }
    };
    let user = read(source.user.clone()).await?;
    let (password, origin) = match &source.password {
        None => (String::new(), "an empty root password".to_string()),
        Some((name, from)) => (read(from.clone()).await?, format!("{name} from {from}")),
    };
    Ok(Login {
        user,
        password: Password(password),
        origin,
    })
}

/// Quotes an option-file value: inside double quotes, with `\\`, `\"` and the control
/// characters the option parser unescapes (`\n`, `\r`, `\t`, `\b`).
fn option_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The option text for a login: a `[client]` group every MySQL and MariaDB tool reads.
pub fn option_text(login: &Login) -> Result<String> {
    if login.user.contains('\0') || login.password.0.contains('\0') {
        return Err(MysqlError::BadName(
            "the database user or password contains a NUL character".into(),
        ));
    }
    Ok(format!(
        "[client]\nuser={}\npassword={}\n",
        option_value(&login.user),
        option_value(login.password.expose())
    ))
}

/// What precedes the client's own stdin: the option text and [`END_OF_OPTIONS`].
pub fn stdin_prefix(login: &Login) -> Result<Vec<u8>> {
    Ok(format!("{}{END_OF_OPTIONS}\n", option_text(login)?).into_bytes())
}

/// The argv that runs `body` under [`PRELUDE`] with `tool` and `args`.
pub fn script_argv(body: &str, tool: &str, args: &[String]) -> Vec<String> {
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("{PRELUDE}{body}"),
        "kubectl-upgrade".to_string(),
        tool.to_string(),
    ];
    argv.extend(args.iter().cloned());
    argv
}

/// Checks a database or table name before it reaches a command line: letters, digits, `_`,
/// `$` and `-`, at most 64 characters (MySQL's identifier length).
pub fn check_identifier(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(MysqlError::BadName(format!(
            "invalid {kind} name {name:?}: use letters, digits, '_', '$' or '-' (at most 64)"
        )))
    }
}

/// Quotes an identifier for SQL text (backticks, doubled inside).
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes a string literal for SQL text.
pub fn quote_str(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Parses the client's batch output (`-N -B`): tab-separated fields with `\t`, `\n`, `\\` and
/// `\0` escaped; a bare `NULL` field is SQL NULL.
pub fn parse_tsv(text: &str) -> Vec<Vec<Option<String>>> {
    text.lines()
        .map(|line| {
            line.split('\t')
                .map(|f| {
                    if f == "NULL" {
                        return None;
                    }
                    let mut out = String::with_capacity(f.len());
                    let mut chars = f.chars();
                    while let Some(c) = chars.next() {
                        if c != '\\' {
                            out.push(c);
                            continue;
                        }
                        match chars.next() {
                            Some('t') => out.push('\t'),
                            Some('n') => out.push('\n'),
                            Some('0') => out.push('\0'),
                            Some('\\') => out.push('\\'),
                            Some(other) => {
                                out.push('\\');
                                out.push(other);
                            }
                            None => out.push('\\'),
                        }
                    }
                    Some(out)
                })
                .collect()
        })
        .collect()
}

/// The client binaries a container has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// `mariadb` or `mysql`.
    pub client: String,
    /// `mariadb-dump` or `mysqldump`.
    pub dump: String,
}

impl Tools {
    /// Looks the binaries up in the container's PATH.
    pub async fn detect(pods: &Api<Pod>, db: &DbPod) -> Result<Tools> {
        let script = r#"for b in mariadb mysql; do if command -v "$b" >/dev/null 2>&1; then echo "client $b"; break; fi; done
for b in mariadb-dump mysqldump; do if command -v "$b" >/dev/null 2>&1; then echo "dump $b"; break; fi; done"#;
        let cmd = Command::new(
            &db.pod,
            Some(&db.container),
            vec!["sh".into(), "-c".into(), script.into()],
        );
        let out = exec::capture(
            pods,
            &cmd,
            Input::None,
            "looking for the MySQL client tools",
        )
        .await?;
        Tools::from_listing(&String::from_utf8_lossy(&out)).ok_or_else(|| {
            MysqlError::NoTools(format!(
                "container {} of pod/{} has neither mariadb/mariadb-dump nor mysql/mysqldump on its PATH",
                db.container, db.pod
            ))
        })
    }

    /// Reads the detection script's `client NAME` / `dump NAME` lines.
    pub fn from_listing(text: &str) -> Option<Tools> {
        let get = |kind: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(kind)?.strip_prefix(' '))
                .map(|s| s.trim().to_string())
        };
        Some(Tools {
            client: get("client")?,
            dump: get("dump")?,
        })
    }
}

/// What the server says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerInfo {
    /// `@@version` (`10.11.6-MariaDB-0+deb12u1`, `8.0.28`).
    pub version: String,
    /// `@@version_comment` (`Debian 12`, `MySQL Community Server - GPL`).
    pub comment: String,
    /// MariaDB rather than MySQL.
    pub mariadb: bool,
    /// MySQL's `@@global.gtid_mode` (`ON`, `OFF`, …); `None` on MariaDB, whose GTIDs need no
    /// dump option.
    pub gtid_mode: Option<String>,
}

/// A logged-in view of one database server.
pub struct Session {
    pub pods: Api<Pod>,
    pub db: DbPod,
    pub tools: Tools,
    login: Login,
    /// A limit for each client command ([`Session::query`] included).
    pub timeout: Option<std::time::Duration>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("db", &self.db)
            .field("tools", &self.tools)
            .field("login", &self.login)
            .finish()
    }
}

impl Session {
    /// Logs in to the database pod: reads the login from its env, finds the tools.
    pub async fn open(client: &kube::Client, db: DbPod) -> Result<Session> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &db.namespace);
        let pod = pods
            .get(&db.pod)
            .await
            .map_err(api_err(format!("cannot read pod/{}", db.pod)))?;
        let container = pick_container(&pod, Some(&db.container))?;
        let source = login_source(&container)?;
        let login = resolve_login(client, &pods, &db, &source).await?;
        let tools = Tools::detect(&pods, &db).await?;
        Ok(Session::new(pods, db, tools, login))
    }

    /// A session from parts already found.
    pub fn new(pods: Api<Pod>, db: DbPod, tools: Tools, login: Login) -> Session {
        Session {
            pods,
            db,
            tools,
            login,
            timeout: None,
        }
    }

    /// Where the password came from, for messages.
    pub fn login_origin(&self) -> String {
        format!("user {:?}, {}", self.login.user, self.login.origin)
    }

    /// The user the session logs in as.
    pub fn user(&self) -> &str {
        &self.login.user
    }

    /// Runs `body` after [`PRELUDE`] with `tool` and `args`, the option text and then `input`
    /// on stdin, stdout into `stdout`, stderr lines into `on_stderr`. The body starts each
    /// client as `new_cnf; "$tool" --defaults-extra-file="$cnf" …` (or with another binary in
    /// place of `"$tool"`); its exit status is the command's.
    pub async fn run_script(
        &self,
        body: &str,
        tool: &str,
        args: &[String],
        input: Option<Box<dyn AsyncRead + Send + Unpin>>,
        stdout: &mut (dyn AsyncWrite + Unpin + Send),
        on_stderr: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Finished> {
        let prefix = stdin_prefix(&self.login)?;
        let input = match input {
            None => Input::Bytes(prefix),
            Some(r) => Input::reader(std::io::Cursor::new(prefix).chain(r)),
        };
        let cmd = Command::new(
            &self.db.pod,
            Some(&self.db.container),
            script_argv(body, tool, args),
        )
        .timeout(self.timeout);
        Ok(exec::run(&self.pods, &cmd, input, stdout, on_stderr).await?)
    }

    /// Runs `tool` with `args` (see [`Session::run_script`] for the streams).
    pub async fn run(
        &self,
        tool: &str,
        args: &[String],
        input: Option<Box<dyn AsyncRead + Send + Unpin>>,
        stdout: &mut (dyn AsyncWrite + Unpin + Send),
        on_stderr: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Finished> {
        self.run_script(RUN_CLIENT, tool, args, input, stdout, on_stderr)
            .await
    }

    /// Runs SQL text with the client in batch mode and returns the rows. Fails with the
    /// server's own error line (`ERROR 1045 (28000): Access denied …`).
    pub async fn query(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let mut out = Vec::new();
        let args = [
            "--batch",
            "--skip-column-names",
            "--default-character-set=utf8mb4",
        ]
        .map(String::from);
        let input: Box<dyn AsyncRead + Send + Unpin> =
            Box::new(std::io::Cursor::new(sql.as_bytes().to_vec()));
        let finished = self
            .run(
                &self.tools.client.clone(),
                &args,
                Some(input),
                &mut out,
                &mut |_| {},
            )
            .await?;
        finished.check(&self.db.pod, "the SQL query")?;
        let text = String::from_utf8(out)
            .map_err(|_| MysqlError::Output("the query's result is not UTF-8".into()))?;
        Ok(parse_tsv(&text))
    }

    /// Version, flavour and (on MySQL) GTID mode of the server.
    pub async fn server(&self) -> Result<ServerInfo> {
        let rows = self.query("SELECT @@version, @@version_comment;\n").await?;
        let row = rows.first().ok_or_else(|| {
            MysqlError::Output("the server did not say which version it runs".into())
        })?;
        let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let (version, comment) = (field(0), field(1));
        let mariadb = version.to_lowercase().contains("mariadb")
            || comment.to_lowercase().contains("mariadb");
        let gtid_mode = if mariadb {
            None
        } else {
            self.query("SELECT @@global.gtid_mode;\n")
                .await
                .ok()
                .and_then(|r| r.into_iter().next())
                .and_then(|r| r.into_iter().next().flatten())
        };
        Ok(ServerInfo {
            version,
            comment,
            mariadb,
            gtid_mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(yaml: &str) -> Container {
        serde_saphyr::from_str(yaml).expect("container yaml")
    }

    #[test]
    fn targets_parse_kubectl_style() {
        assert_eq!(
            TargetRef::parse("deploy/mysql").unwrap(),
            TargetRef::Deployment("mysql".into())
        );
        assert_eq!(
            TargetRef::parse("statefulset/db").unwrap(),
            TargetRef::StatefulSet("db".into())
        );
        assert_eq!(
            TargetRef::parse("pod/mysql-0").unwrap().to_string(),
            "pod/mysql-0"
        );
        assert!(TargetRef::parse("mysql").is_err());
        assert!(TargetRef::parse("svc/mysql").is_err());
        assert!(TargetRef::parse("pod/$(id)").is_err());
    }

    #[test]
    fn root_password_from_a_secret_wins() {
        let c = container(
            r#"
name: mysql
image: mysql:8.0.28
env:
- {name: MYSQL_USER, value: fate}
- {name: MYSQL_PASSWORD, value: fate_dev}
- name: MYSQL_ROOT_PASSWORD
  valueFrom: {secretKeyRef: {name: mysql-auth, key: root}}
"#,
        );
        let s = login_source(&c).unwrap();
        assert_eq!(s.user, ValueFrom::Literal("root".into()));
        assert_eq!(
            s.password,
            Some((
                "MYSQL_ROOT_PASSWORD".into(),
                ValueFrom::Secret {
                    name: "mysql-auth".into(),
                    key: "root".into()
                }
            ))
        );
    }

    #[test]
    fn empty_root_password_when_the_image_allows_it() {
        // KubeFATE's chart: MYSQL_ALLOW_EMPTY_PASSWORD plus an application user.
        let c = container(
            r#"
name: mysql
image: mysql:8.0.28
env:
- {name: MYSQL_ALLOW_EMPTY_PASSWORD, value: "1"}
- {name: MYSQL_USER, value: fate}
- {name: MYSQL_PASSWORD, value: fate_dev}
"#,
        );
        let s = login_source(&c).unwrap();
        assert_eq!(s.user, ValueFrom::Literal("root".into()));
        assert_eq!(s.password, None);
    }

    #[test]
    fn application_user_and_files_and_env_from() {
        let c = container(
            r#"
name: db
image: mariadb:11
env:
- {name: MARIADB_USER, value: app}
- {name: MARIADB_PASSWORD_FILE, value: /run/secrets/pw}
"#,
        );
        let s = login_source(&c).unwrap();
        assert_eq!(s.user, ValueFrom::Literal("app".into()));
        assert_eq!(
            s.password,
            Some((
                "MARIADB_PASSWORD_FILE".into(),
                ValueFrom::File("/run/secrets/pw".into())
            ))
        );
        let c = container(
            r#"
name: db
image: mariadb:11
envFrom:
- secretRef: {name: db-env}
"#,
        );
        let s = login_source(&c).unwrap();
        assert_eq!(
            s.password,
            Some((
                "MARIADB_ROOT_PASSWORD".into(),
                ValueFrom::Secret {
                    name: "db-env".into(),
                    key: "MARIADB_ROOT_PASSWORD".into()
                }
            ))
        );
        let none = container("{name: db, image: mysql:8}");
        let e = login_source(&none).unwrap_err().to_string();
        assert!(e.contains("does not say how to log in"), "{e}");
    }

    #[test]
    fn option_text_quotes_every_character_the_parser_would_eat() {
        let login = Login {
            user: "root".into(),
            password: Password::new("p\"w #x\\y\nz; $(id)"),
            origin: "test".into(),
        };
        let text = option_text(&login).unwrap();
        assert_eq!(
            text,
            "[client]\nuser=\"root\"\npassword=\"p\\\"w #x\\\\y\\nz; $(id)\"\n"
        );
        // One line per option: the prelude reads line by line.
        assert_eq!(text.lines().count(), 3);
        assert!(!text.lines().any(|l| l == END_OF_OPTIONS));
        assert!(format!("{login:?}").contains("***"));
        assert!(!format!("{login:?}").contains("p\\\"w"));
        let nul = Login {
            password: Password::new("a\0b"),
            ..login
        };
        assert!(option_text(&nul).is_err());
    }

    #[test]
    fn the_script_carries_no_secret_and_passes_arguments_apart() {
        let argv = script_argv(
            RUN_CLIENT,
            "mariadb-dump",
            &["--hex-blob".into(), "db".into()],
        );
        assert_eq!(argv[0], "sh");
        assert_eq!(argv[1], "-c");
        assert!(argv[2].starts_with(PRELUDE));
        assert!(argv[2].contains(END_OF_OPTIONS));
        assert_eq!(
            &argv[3..],
            ["kubectl-upgrade", "mariadb-dump", "--hex-blob", "db"]
        );
    }

    #[test]
    fn tsv_fields_are_unescaped_and_null_is_none() {
        let rows = parse_tsv("eggroll_meta\tserver_node\t3\nx\\ty\tNULL\ta\\\\b\\nc\n");
        assert_eq!(
            rows,
            vec![
                vec![
                    Some("eggroll_meta".into()),
                    Some("server_node".into()),
                    Some("3".into())
                ],
                vec![Some("x\ty".into()), None, Some("a\\b\nc".into())],
            ]
        );
    }

    #[test]
    fn identifiers_are_checked_and_quoted() {
        assert!(check_identifier("database", "eggroll_meta").is_ok());
        assert!(check_identifier("database", "a;b").is_err());
        assert!(check_identifier("database", "").is_err());
        assert!(check_identifier("table", &"t".repeat(65)).is_err());
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(quote_str("it's \\"), "'it''s \\\\'");
    }

    #[test]
    fn tools_and_containers_are_found() {
        assert_eq!(
            Tools::from_listing("client mariadb\ndump mariadb-dump\n"),
            Some(Tools {
                client: "mariadb".into(),
                dump: "mariadb-dump".into()
            })
        );
        assert_eq!(Tools::from_listing("client mysql\n"), None);
        let pod: Pod = serde_saphyr::from_str(
            r#"
metadata: {name: mysql-0}
spec:
  containers:
  - {name: exporter, image: prom/mysqld-exporter:v0.14.0}
  - {name: mysql, image: "docker.io/library/mysql:8.0.28"}
"#,
        )
        .unwrap();
        assert_eq!(pick_container(&pod, None).unwrap().name, "mysql");
        assert_eq!(
            pick_container(&pod, Some("exporter")).unwrap().name,
            "exporter"
        );
        assert!(pick_container(&pod, Some("nope")).is_err());
    }
}
