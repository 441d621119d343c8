//! The object store: every object as JSON, one cluster-wide increasing resourceVersion, and a
//! bounded event history that watches resume from (like etcd plus the watch cache).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use super::errors::ApiError;
use super::meta;
use super::resources::{self, ResourceInfo};
use super::selectors::{FieldSelector, LabelSelector};
use super::{defaults, validation};

mod admission;
mod delete;
mod list;

use admission::{is_builtin, resize_admission, strip_nulls};

/// How many events watches can resume from; older resourceVersions get 410 `Expired`.
pub const HISTORY: usize = 20_000;

/// One change, as a watch reports it.
#[derive(Debug, Clone)]
pub struct Event {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Storage key of the resource (`group/plural`).
    pub key: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object after the change (the last state for `DELETED`).
    pub object: Value,
}

/// Which part of an object an update writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: status changes are dropped when a status subresource exists.
    Main,
    /// The `status` subresource: only status changes are kept.
    Status,
}

/// Options of a delete request (`metav1.DeleteOptions`).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub rv: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// Options of a list request.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit`, 0 for all.
    pub limit: usize,
    /// `continue`.
    pub cont: Option<String>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) rv: u64,
    objects: HashMap<String, BTreeMap<(String, String), Value>>,
    history: VecDeque<Arc<Event>>,
    crds: BTreeMap<String, Vec<ResourceInfo>>,
}

/// The store shared by the API server and the controllers.
pub struct Store {
    state: Mutex<State>,
    history_limit: std::sync::atomic::AtomicUsize,
    events: broadcast::Sender<Arc<Event>>,
    /// Notified after every committed change (controllers wake on it).
    pub changed: Notify,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

type Result<T> = std::result::Result<T, ApiError>;

/// The events to replay and the live feed of a new watch.
pub type WatchStart = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(65_536);
        Self {
            state: Mutex::new(State::default()),
            history_limit: HISTORY.into(),
            events,
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many events watches can resume from (tests shrink it to reach 410 `Expired`).
    pub fn set_history_limit(&self, n: usize) {
        self.history_limit
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// All served resources: built-ins, then those of established CRDs.
    pub fn resources(&self) -> Vec<ResourceInfo> {
        let mut all = resources::builtins();
        all.extend(self.lock().crds.values().flatten().cloned());
        all
    }

    /// A served resource by group, version and plural.
    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        self.resources()
            .into_iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// A served resource by apiVersion and kind.
    pub fn resolve_kind(&self, api_version: &str, kind: &str) -> Option<ResourceInfo> {
        self.resources()
            .into_iter()
            .find(|r| r.api_version() == api_version && r.kind == kind)
    }

    /// One object.
    pub fn get(&self, ri: &ResourceInfo, ns: &str, name: &str) -> Result<Value> {
        let st = self.lock();
        get_in(&st, ri, ns, name)
            .cloned()
            .map(|o| with_version(o, ri))
    }

    /// Creates an object (admission defaults, validation, then storage).
    pub fn create(
        &self,
        ri: &ResourceInfo,
        ns: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value> {
        let mut st = self.lock();
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not an object",
            ));
        }
        if obj["metadata"].is_null() {
            obj["metadata"] = json!({});
        }
        let generate = obj["metadata"]["generateName"].as_str().map(String::from);
        if meta::name(&obj).is_empty()
            && let Some(prefix) = generate.filter(|p| !p.is_empty())
        {
            obj["metadata"]["name"] = json!(format!("{prefix}{}", meta::random_suffix(5)));
        }
        let name = meta::name(&obj).to_string();
        if ri.namespaced {
            let body_ns = meta::namespace(&obj);
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            obj["metadata"]["namespace"] = json!(ns);
            let nsri = resources::builtin("", "namespaces").expect("namespaces is built in");
            match get_in(&st, &nsri, "", ns) {
                Err(_) => return Err(ApiError::not_found(&nsri, ns)),
                Ok(n) if meta::deleting(n) => {
                    return Err(ApiError::namespace_terminating(ri, &name, ns));
                }
                Ok(_) => {}
            }
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        obj["apiVersion"] = json!(ri.api_version());
        obj["kind"] = json!(ri.kind);
        if is_builtin(ri) {
            strip_nulls(&mut obj);
        }
        // DefaultStorageClass admission: a claim without a class gets the default one.
        if ri.kind == "PersistentVolumeClaim" && obj["spec"]["storageClassName"].is_null() {
            let default = st.objects.get("storage.k8s.io/storageclasses").and_then(|b| {
                b.values().find(|c| c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true").map(|c| meta::name(c).to_string())
            });
            if let Some(class) = default {
                obj["spec"]["storageClassName"] = json!(class);
            }
        }
        validation::validate_create(ri, &obj)?;
        let key = (
            if ri.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name.clone(),
        );
        if st
            .objects
            .get(&ri.key())
            .is_some_and(|b| b.contains_key(&key))
        {
            return Err(ApiError::already_exists(ri, &name));
        }
        {
            let m = &mut obj["metadata"];
            m["uid"] = json!(meta::new_uid());
            m["creationTimestamp"] = json!(meta::now());
            if let Some(m) = m.as_object_mut() {
                m.remove("resourceVersion");
                m.remove("deletionTimestamp");
                m.remove("deletionGracePeriodSeconds");
                m.remove("selfLink");
            }
            if obj.get("spec").is_some() || !ri.group.is_empty() {
                obj["metadata"]["generation"] = json!(1);
            }
        }
        defaults::on_create(ri, &mut obj);
        if is_builtin(ri) {
            strip_nulls(&mut obj);
        }
        if dry_run {
            return Ok(obj);
        }
        let rv = st.rv + 1;
        st.rv = rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        st.objects
            .entry(ri.key())
            .or_default()
            .insert(key, obj.clone());
        self.after_write(&mut st, ri, "ADDED", &obj);
        Ok(obj)
    }

    /// Replaces an object, checking `metadata.resourceVersion` when the body carries one.
    pub fn update(
        &self,
        ri: &ResourceInfo,
        ns: &str,
        name: &str,
        obj: Value,
        part: Part,
        dry_run: bool,
    ) -> Result<Value> {
        let mut st = self.lock();
        self.update_locked(&mut st, ri, ns, name, obj, part, dry_run)
    }

    /// Applies a patch under the store lock, so a patch without a resourceVersion never
    /// conflicts (the apiserver retries such patches internally).
    pub fn patch(
        &self,
        ri: &ResourceInfo,
        ns: &str,
        name: &str,
        part: Part,
        dry_run: bool,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<Value> {
        let mut st = self.lock();
        let mut obj = get_in(&st, ri, ns, name)?.clone();
        f(&mut obj)?;
        self.update_locked(&mut st, ri, ns, name, obj, part, dry_run)
    }

    /// Reads, changes and writes one object under the store lock (for controllers, never conflicts).
    /// The closure returns false to leave the object unchanged.
    pub fn modify(
        &self,
        ri: &ResourceInfo,
        ns: &str,
        name: &str,
        part: Part,
        f: impl FnOnce(&mut Value) -> bool,
    ) -> Result<Value> {
        let mut st = self.lock();
        let mut obj = get_in(&st, ri, ns, name)?.clone();
        if !f(&mut obj) {
            return Ok(obj);
        }
        self.update_locked(&mut st, ri, ns, name, obj, part, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn update_locked(
        &self,
        st: &mut State,
        ri: &ResourceInfo,
        ns: &str,
        name: &str,
        mut obj: Value,
        part: Part,
        dry_run: bool,
    ) -> Result<Value> {
        let old = get_in(st, ri, ns, name)?.clone();
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not an object",
            ));
        }
        let body_name = meta::name(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(rv) = obj["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::stale(ri, name));
        }
        match part {
            Part::Status => {
                let status = obj.get("status").cloned();
                obj = old.clone();
                match status {
                    Some(s) => obj["status"] = s,
                    None => {
                        obj.as_object_mut().map(|m| m.remove("status"));
                    }
                }
            }
            Part::Main => {
                if ri.status {
                    match old.get("status") {
                        Some(s) => obj["status"] = s.clone(),
                        None => {
                            obj.as_object_mut().map(|m| m.remove("status"));
                        }
                    }
                }
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "namespace",
                ] {
                    match old["metadata"].get(f) {
                        Some(v) => obj["metadata"][f] = v.clone(),
                        None => {
                            obj["metadata"].as_object_mut().map(|m| m.remove(f));
                        }
                    }
                }
                obj["metadata"]["name"] = json!(name);
                if spec_of(&obj) != spec_of(&old) && old["metadata"]["generation"].is_number() {
                    let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
                    obj["metadata"]["generation"] = json!(g + 1);
                }
            }
        }
        obj["apiVersion"] = json!(ri.api_version());
        obj["kind"] = json!(ri.kind);
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if is_builtin(ri) {
            strip_nulls(&mut obj);
        }
        if part == Part::Main {
            validation::validate_update(ri, &old, &obj)?;
            resize_admission(st, ri, &old, &obj)?;
        }
        if obj == old || dry_run {
            return Ok(with_version(obj, ri));
        }
        let key = (ns_key(ri, ns), name.to_string());
        let rv = st.rv + 1;
        st.rv = rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if meta::deleting(&obj) && meta::finalizers(&obj).is_empty() && !pending_grace(ri, &obj) {
            st.objects.entry(ri.key()).or_default().remove(&key);
            self.after_write(st, ri, "DELETED", &obj);
        } else {
            st.objects
                .entry(ri.key())
                .or_default()
                .insert(key, obj.clone());
            self.after_write(st, ri, "MODIFIED", &obj);
        }
        Ok(with_version(obj, ri))
    }

    /// All objects of a resource (for controllers), any version.
    pub fn all(&self, ri: &ResourceInfo) -> Vec<Value> {
        self.lock()
            .objects
            .get(&ri.key())
            .map(|b| b.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The objects of a resource that match a predicate (cloning only those).
    pub fn select(&self, ri: &ResourceInfo, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.lock()
            .objects
            .get(&ri.key())
            .map(|b| b.values().filter(|o| pred(o)).cloned().collect())
            .unwrap_or_default()
    }

    /// Subscribes to changes after `from` (or from now with synthetic `ADDED` events of the
    /// current objects when `from` is `None`), atomically with reading the history.
    pub fn watch(&self, ri: &ResourceInfo, from: Option<u64>) -> Result<WatchStart> {
        let st = self.lock();
        let rx = self.events.subscribe();
        let key = ri.key();
        let initial = match from {
            None => st
                .objects
                .get(&key)
                .map(|b| {
                    b.values()
                        .map(|o| {
                            Arc::new(Event {
                                rv: st.rv,
                                key: key.clone(),
                                kind: "ADDED",
                                object: o.clone(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some(rv) => {
                let oldest = st.history.front().map(|e| e.rv).unwrap_or(st.rv + 1);
                if rv + 1 < oldest && rv < st.rv {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        oldest - 1
                    )));
                }
                st.history
                    .iter()
                    .filter(|e| e.rv > rv && e.key == key)
                    .cloned()
                    .collect()
            }
        };
        Ok((initial, rx))
    }

    fn after_write(&self, st: &mut State, ri: &ResourceInfo, kind: &'static str, obj: &Value) {
        if ri.kind == "CustomResourceDefinition" {
            let name = meta::name(obj).to_string();
            if kind == "DELETED" {
                if let Some(gone) = st.crds.remove(&name)
                    && let Some(first) = gone.first()
                {
                    st.objects.remove(&first.key());
                }
            } else {
                st.crds.insert(name, resources::from_crd(obj));
            }
        }
        let ev = Arc::new(Event {
            rv: st.rv,
            key: ri.key(),
            kind,
            object: with_version(obj.clone(), ri),
        });
        st.history.push_back(ev.clone());
        while st.history.len()
            > self
                .history_limit
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            st.history.pop_front();
        }
        let _ = self.events.send(ev);
        self.changed.notify_waiters();
    }
}

fn ns_key(ri: &ResourceInfo, ns: &str) -> String {
    if ri.namespaced {
        ns.to_string()
    } else {
        String::new()
    }
}

fn get_in<'a>(st: &'a State, ri: &ResourceInfo, ns: &str, name: &str) -> Result<&'a Value> {
    st.objects
        .get(&ri.key())
        .and_then(|b| b.get(&(ns_key(ri, ns), name.to_string())))
        .ok_or_else(|| ApiError::not_found(ri, name))
}

fn with_version(mut obj: Value, ri: &ResourceInfo) -> Value {
    obj["apiVersion"] = json!(ri.api_version());
    obj
}

/// Everything but metadata and status: what bumps `metadata.generation`.
fn spec_of(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    o
}

fn pending_grace(ri: &ResourceInfo, obj: &Value) -> bool {
    ri.kind == "Pod"
        && obj["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(0)
            > 0
}
