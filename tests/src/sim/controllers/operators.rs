//! Stand-ins for application operators, for custom resources that opt in with the annotation
//! `sim.kubectl-upgrade.dev/operator: "true"` (scenarios set it; a test that wants a stalled
//! operator leaves it out). The FoundationDB stand-in reconciles a FoundationDBCluster the way
//! the fdb-kubernetes-operator reports it: `status.runningVersion` follows `spec.version`,
//! `status.generations.reconciled` follows `metadata.generation`, and the cluster's pods run
//! the new image.
//!
//! Its process groups behave as the operator reports them (fdb-kubernetes-operator docs,
//! "Upgrades" and "Technical design"): a process group whose pod is gone gets a new pod under
//! the same name (the `AddPods` subreconciler recreates missing pods); a group marked
//! `MissingProcesses` or `IncorrectCommandLine` loses those conditions once its process has
//! been restarted — a new pod, or a restart of its `foundationdb` container such as
//! `pkill fdbserver` causes — and is Ready again (`UpdateStatus` sees it in the cluster status
//! at the right version); and `status.health.available` is false while a majority of the
//! coordinators (the addresses in `status.connectionString`) have one of those conditions,
//! as the database is unavailable without a quorum of coordinators.
//!
//! A scenario or test can name process groups whose fdbserver a version change does not
//! restart (the annotation `sim.kubectl-upgrade.dev/fdb-not-bounced: "storage-2"`, the guide's
//! "Processes are not restarted during the restart Phase"): those keep the old image and get
//! `MissingProcesses`, `status.generations.reconciled` stays behind until a restart has
//! brought them to the new version, and `status.generations.hasUnhealthyProcess` records the
//! generation held up. The annotation `sim.kubectl-upgrade.dev/fdb-reconcile-delay: "3s"`
//! makes the stand-in act on a new generation only that long after it first saw it, as the
//! real operator lags behind a spec change.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::pod_ready;
use crate::sim::resources::{ResourceInfo, builtin};
use crate::sim::store::Part;
use crate::sim::{Shared, meta};

/// Conditions a restart of the group's process clears.
const CLEARED_BY_RESTART: [&str; 2] = ["MissingProcesses", "IncorrectCommandLine"];

/// What the stand-in remembers about one process group between passes.
#[derive(Debug, Default, Clone)]
struct Group {
    /// The pod's uid and its `foundationdb` container's restart count when last seen.
    marker: Option<String>,
    /// A restart was seen since the group got a condition a restart clears.
    restarted: bool,
    /// The pod as last seen, to create it again.
    template: Option<Value>,
}

/// Memory of the stand-ins, per cluster.
#[derive(Debug, Default)]
pub struct Memory {
    groups: Mutex<HashMap<String, Group>>,
    /// `ns/cluster/group@generation` of the groups a version change left behind.
    left_behind: Mutex<HashSet<String>>,
    /// When each `ns/cluster@generation` was first seen, for the reconcile delay.
    first_seen: Mutex<HashMap<String, Instant>>,
}

/// The opt-in annotation.
pub const OPERATOR_ANNOTATION: &str = "sim.kubectl-upgrade.dev/operator";

/// One pass.
pub fn sync(shared: &Shared) {
    let Some(fdb) = shared
        .store
        .resolve_kind("apps.foundationdb.org/v1beta2", "FoundationDBCluster")
    else {
        return;
    };
    let pods_ri = builtin("", "pods").expect("built in");
    for cluster in shared.store.all(&fdb) {
        if cluster["metadata"]["annotations"][OPERATOR_ANNOTATION] != "true"
            || meta::deleting(&cluster)
        {
            continue;
        }
        process_groups(shared, &fdb, &pods_ri, &cluster);
        let generation = cluster["metadata"]["generation"].clone();
        if cluster["status"]["generations"]["reconciled"] == generation {
            continue;
        }
        let (ns, name) = (meta::namespace(&cluster), meta::name(&cluster));
        if lagging(shared, &cluster, &generation) {
            continue;
        }
        let version = cluster["spec"]["version"].clone();
        let behind = left_behind(shared, &fdb, &cluster, &generation);
        if let Some(v) = version.as_str() {
            let selected = |p: &Value| {
                meta::namespace(p) == ns
                    && p["metadata"]["labels"]["foundationdb.org/fdb-cluster-name"] == name
                    && !p["metadata"]["labels"]["foundationdb.org/fdb-process-group-id"]
                        .as_str()
                        .is_some_and(|id| behind.iter().any(|b| b == id))
            };
            for pod in shared.store.select(&pods_ri, selected) {
                let _ = shared
                    .store
                    .modify(&pods_ri, ns, meta::name(&pod), Part::Main, |p| {
                        let mut changed = false;
                        if let Some(cs) = p["spec"]["containers"].as_array_mut() {
                            for c in cs.iter_mut().filter(|c| c["name"] == "foundationdb") {
                                let image = c["image"].as_str().unwrap_or_default();
                                let repo = image
                                    .rsplit_once(':')
                                    .map(|(r, _)| r)
                                    .unwrap_or(image)
                                    .to_string();
                                let want = format!("{repo}:{v}");
                                if c["image"] != want.as_str() {
                                    c["image"] = json!(want);
                                    changed = true;
                                }
                            }
                        }
                        changed
                    });
            }
        }
        let _ = shared.store.modify(&fdb, ns, name, Part::Status, |o| {
            let mut changed = o["status"]["runningVersion"] != version;
            o["status"]["runningVersion"] = version;
            // The upgrade is done, and the reconciliation with it, once every pod runs the new
            // image (the guide's "Recreation of Pods Phase").
            if behind.is_empty() {
                o["status"]["generations"]["reconciled"] = generation;
                changed = true;
            } else if o["status"]["generations"]["hasUnhealthyProcess"] != generation {
                // The operator's ClusterGenerationStatus: a generation it could not finish
                // because a process group has a negative condition is recorded in
                // `hasUnhealthyProcess`, `reconciled` keeps the last one it finished.
                o["status"]["generations"]["hasUnhealthyProcess"] = generation;
                changed = true;
            }
            changed
        });
    }
}

/// The annotation giving the stand-in a reaction time (`3s`, `500ms`): a new spec generation
/// is acted on only that long after the stand-in first saw it. The real operator starts a
/// reconciliation from a watch event and takes seconds to minutes to reach the bounce and to
/// write the process groups' conditions; until then the status is the old generation's.
pub const RECONCILE_DELAY_ANNOTATION: &str = "sim.kubectl-upgrade.dev/fdb-reconcile-delay";

/// True while the cluster's current generation is younger than its reconcile delay.
fn lagging(shared: &Shared, cluster: &Value, generation: &Value) -> bool {
    let Some(delay) = cluster["metadata"]["annotations"][RECONCILE_DELAY_ANNOTATION]
        .as_str()
        .and_then(parse_delay)
    else {
        return false;
    };
    let key = format!(
        "{}/{}@{generation}",
        meta::namespace(cluster),
        meta::name(cluster)
    );
    let mut seen = shared
        .operators
        .first_seen
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let first = *seen.entry(key).or_insert_with(Instant::now);
    first.elapsed() < delay
}

fn parse_delay(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s')
        .unwrap_or(text)
        .parse()
        .ok()
        .map(Duration::from_secs_f64)
}

/// The annotation naming the process groups (comma-separated) whose fdbserver the stand-in's
/// Restart Phase does not bounce on a version change.
pub const NOT_BOUNCED_ANNOTATION: &str = "sim.kubectl-upgrade.dev/fdb-not-bounced";

/// The process groups of a version change (one spec generation) left on the old version: the
/// guide's "Processes are not restarted during the restart Phase" — they are missing from the
/// cluster status, so the operator marks them `MissingProcesses`, and they stay on the old
/// image until their process is restarted. A group is marked once per generation; once a
/// restart cleared its condition it is bounced with the others.
fn left_behind(
    shared: &Shared,
    fdb: &ResourceInfo,
    cluster: &Value,
    generation: &Value,
) -> Vec<String> {
    let Some(ids) = cluster["metadata"]["annotations"][NOT_BOUNCED_ANNOTATION].as_str() else {
        return Vec::new();
    };
    let (ns, name) = (meta::namespace(cluster), meta::name(cluster));
    let version = cluster["spec"]["version"].as_str().unwrap_or_default();
    let pods_ri = builtin("", "pods").expect("built in");
    let pods = shared.store.select(&pods_ri, |p| {
        meta::namespace(p) == ns
            && p["metadata"]["labels"]["foundationdb.org/fdb-cluster-name"] == name
    });
    let groups = cluster["status"]["processGroups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut behind = Vec::new();
    let mut mark = Vec::new();
    {
        let mut marked = shared
            .operators
            .left_behind
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for id in ids.split(',').map(str::trim).filter(|id| !id.is_empty()) {
            let Some(group) = groups.iter().find(|g| g["processGroupID"] == id) else {
                continue;
            };
            // Only a change of version leaves a process behind.
            let on_version = pods.iter().any(|p| {
                p["metadata"]["labels"]["foundationdb.org/fdb-process-group-id"] == id
                    && p["spec"]["containers"].as_array().is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c["name"] == "foundationdb"
                                && c["image"]
                                    .as_str()
                                    .and_then(|i| i.rsplit_once(':'))
                                    .map(|(_, t)| t)
                                    == Some(version)
                        })
                    })
            });
            if on_version && !marked.contains(&format!("{ns}/{name}/{id}@{generation}")) {
                continue;
            }
            if marked.insert(format!("{ns}/{name}/{id}@{generation}")) {
                mark.push(id.to_string());
                behind.push(id.to_string());
            } else if fixable(group) {
                behind.push(id.to_string());
            }
        }
    }
    if !mark.is_empty() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let _ = shared.store.modify(fdb, ns, name, Part::Status, |o| {
            let mut changed = false;
            for g in o["status"]["processGroups"]
                .as_array_mut()
                .into_iter()
                .flatten()
                .filter(|g| mark.iter().any(|id| g["processGroupID"] == id.as_str()))
            {
                if let Some(cs) = g["processGroupConditions"].as_array_mut() {
                    cs.push(json!({"type": "MissingProcesses", "timestamp": now}));
                    changed = true;
                } else {
                    g["processGroupConditions"] =
                        json!([{"type": "MissingProcesses", "timestamp": now}]);
                    changed = true;
                }
            }
            changed
        });
    }
    behind
}

fn fixable(group: &Value) -> bool {
    group["processGroupConditions"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| CLEARED_BY_RESTART.iter().any(|t| c["type"] == *t))
        })
}

/// Recreates missing pods, clears conditions a restart fixed, and sets the availability.
fn process_groups(shared: &Shared, fdb: &ResourceInfo, pods_ri: &ResourceInfo, cluster: &Value) {
    let (ns, name) = (meta::namespace(cluster), meta::name(cluster));
    let Some(groups) = cluster["status"]["processGroups"].as_array() else {
        return;
    };
    let pods = shared.store.select(pods_ri, |p| {
        meta::namespace(p) == ns
            && p["metadata"]["labels"]["foundationdb.org/fdb-cluster-name"] == name
    });
    let version = cluster["spec"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut cleared = Vec::new();
    let mut create = Vec::new();
    {
        let mut memory = shared
            .operators
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for g in groups {
            let id = g["processGroupID"].as_str().unwrap_or_default();
            let key = format!("{ns}/{name}/{id}");
            let pod = pods
                .iter()
                .find(|p| p["metadata"]["labels"]["foundationdb.org/fdb-process-group-id"] == id);
            let m = memory.entry(key).or_default();
            match pod {
                Some(p) => {
                    let restarts = p["status"]["containerStatuses"]
                        .as_array()
                        .and_then(|cs| cs.iter().find(|c| c["name"] == "foundationdb"))
                        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                        .unwrap_or(0);
                    // With the image's own entrypoint the server is a child of the monitor
                    // loop: while it is between two runs there is nothing to compare yet.
                    let monitored = p["spec"]["containers"].as_array().is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c["name"] == "foundationdb"
                                && c["command"].is_null()
                                && super::pod_inputs::is_fdb_image(
                                    c["image"].as_str().unwrap_or_default(),
                                )
                        })
                    });
                    let server = server_pid(shared, meta::uid(p));
                    if !monitored || server.is_some() {
                        let marker =
                            format!("{}/{restarts}/{}", meta::uid(p), server.unwrap_or_default());
                        if m.marker.as_ref().is_some_and(|old| old != &marker) {
                            m.restarted = true;
                        }
                        m.marker = Some(marker);
                    }
                    let mut spec = p["spec"].clone();
                    if let Some(o) = spec.as_object_mut() {
                        o.remove("nodeName");
                    }
                    m.template = Some(json!({
                        "metadata": {"name": meta::name(p), "labels": p["metadata"]["labels"], "annotations": p["metadata"]["annotations"]},
                        "spec": spec,
                    }));
                    if !fixable(g) {
                        m.restarted = false;
                    } else if m.restarted
                        && pod_ready(p)
                        && !meta::deleting(p)
                        && (!monitored || server.is_some())
                    {
                        cleared.push(id.to_string());
                        m.restarted = false;
                    }
                }
                None if g["removalTimestamp"].is_null() => {
                    if let Some(t) = m.template.clone() {
                        create.push(t);
                    }
                }
                None => {}
            }
        }
    }
    for mut pod in create {
        if let Some(cs) = pod["spec"]["containers"].as_array_mut() {
            for c in cs.iter_mut().filter(|c| c["name"] == "foundationdb") {
                let image = c["image"].as_str().unwrap_or_default();
                let repo = image
                    .rsplit_once(':')
                    .map(|(r, _)| r)
                    .unwrap_or(image)
                    .to_string();
                if !version.is_empty() {
                    c["image"] = json!(format!("{repo}:{version}"));
                }
            }
        }
        let _ = shared.store.create(pods_ri, ns, pod, false);
    }
    let coordinators: Vec<String> = cluster["status"]["connectionString"]
        .as_str()
        .and_then(|c| c.split_once('@'))
        .map(|(_, hosts)| {
            hosts
                .split(',')
                .map(|h| {
                    h.rsplit_once(':')
                        .map(|(ip, _)| ip)
                        .unwrap_or(h)
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    let _ = shared.store.modify(fdb, ns, name, Part::Status, |o| {
        let mut changed = false;
        if let Some(gs) = o["status"]["processGroups"].as_array_mut() {
            for g in gs.iter_mut() {
                if !cleared.iter().any(|id| g["processGroupID"] == id.as_str()) {
                    continue;
                }
                if let Some(cs) = g["processGroupConditions"].as_array_mut() {
                    cs.retain(|c| !CLEARED_BY_RESTART.iter().any(|t| c["type"] == *t));
                    changed = true;
                }
            }
        }
        if !coordinators.is_empty() {
            let gs = o["status"]["processGroups"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let down = coordinators
                .iter()
                .filter(|ip| {
                    gs.iter().any(|g| {
                        fixable(g)
                            && g["addresses"]
                                .as_array()
                                .is_some_and(|a| a.iter().any(|x| x == ip.as_str()))
                    })
                })
                .count();
            let available = down * 2 < coordinators.len();
            if o["status"]["health"]["available"] != available {
                o["status"]["health"]["available"] = json!(available);
                changed = true;
            }
        }
        changed
    });
}

/// The pid of the `fdbserver` process in a pod's `foundationdb` container, found among the
/// container's descendants (it changes when the monitor loop starts the server again).
fn server_pid(shared: &Shared, uid: &str) -> Option<u32> {
    let mut todo = vec![shared.kubelet.container_pid(uid, "foundationdb")?];
    while let Some(pid) = todo.pop() {
        if std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "fdbserver")
        {
            return Some(pid);
        }
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        todo.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    None
}
