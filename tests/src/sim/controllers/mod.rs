//! Controllers: the loops that make the cluster act (kube-controller-manager, the scheduler and
//! the kubelet). Each is a plain function over the store, run on every change and on a short
//! tick; the volume binder runs on its own resync period like the real one.

mod daemonsets;
mod deployments;
pub mod events;
pub mod fdb_status;
mod gc;
mod jobs;
mod node;
pub mod operators;
mod pdb;
mod pod_inputs;
mod rok;
mod scheduler;
mod statefulsets;
pub mod volumes;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

use super::Shared;

/// Runs every controller but the volume binder once (the volume protection controllers are
/// event-driven and run here).
pub fn sync_all(shared: &Shared) {
    deployments::sync(shared);
    statefulsets::sync(shared);
    daemonsets::sync(shared);
    operators::sync(shared);
    fdb_status::sync(shared);
    rok::sync(shared);
    jobs::sync(shared);
    gc::sync(shared);
    pdb::sync(shared);
    volumes::protection(shared);
    scheduler::sync(shared);
    node::sync(shared);
}

/// Starts the controller loops.
pub fn spawn(shared: Arc<Shared>) -> Vec<JoinHandle<()>> {
    let fast = shared.clone();
    let main = tokio::spawn(async move {
        let mut seen_rv = None;
        loop {
            let s = fast.clone();
            let started = std::time::Instant::now();
            // Without changes only the kubelet (exits, restarts, probes, grace periods) and the
            // operator stand-ins have work.
            let rv = fast.store.resource_version();
            let changed = seen_rv != Some(rv);
            seen_rv = Some(rv);
            // Listen before the pass: a change the pass itself or a client makes meanwhile
            // (a pod removed at the end of its grace period) starts the next pass at once, as
            // the real controllers' informers queue every event they see.
            let changed_meanwhile = fast.store.changed.notified();
            tokio::pin!(changed_meanwhile);
            changed_meanwhile.as_mut().enable();
            let pass = move || {
                if changed {
                    sync_all(&s)
                } else {
                    node::sync(&s);
                    // Operators also requeue on a timer: a process restarted inside its pod
                    // changes no object, yet the operator's status must notice it.
                    operators::sync(&s)
                }
            };
            if tokio::task::spawn_blocking(pass).await.is_err() {
                return;
            }
            // Passes scan every object: on a big cluster, rest twice as long as a pass took so
            // bulk writes (thousands of pods) do not keep both cores busy.
            tokio::time::sleep(started.elapsed() * 2).await;
            tokio::select! {
                _ = changed_meanwhile => tokio::time::sleep(Duration::from_millis(20)).await,
                // A readiness probe result changed: the kubelet writes the status at once.
                _ = fast.kubelet.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    });
    let binder = tokio::spawn(async move {
        loop {
            let s = shared.clone();
            if tokio::task::spawn_blocking(move || volumes::sync(&s))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(shared.binder_resync).await;
        }
    });
    vec![main, binder]
}

/// A short stable hash of a pod template (the `pod-template-hash` label).
pub fn template_hash(template: &Value) -> String {
    fn canonical(v: &Value, h: &mut DefaultHasher) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    k.hash(h);
                    canonical(&m[k], h);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| canonical(x, h)),
            other => other.to_string().hash(h),
        }
    }
    let mut h = DefaultHasher::new();
    canonical(template, &mut h);
    let mut n = h.finish();
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Adopts orphans that the owner's selector matches by giving them a controller reference
/// (controller_ref_manager.go `ClaimPods`); returns whether any was adopted.
pub fn adopt(
    shared: &Shared,
    owner: &Value,
    candidates: &[Value],
    ri: &crate::sim::resources::ResourceInfo,
) -> bool {
    let Some(selector) =
        crate::sim::selectors::LabelSelector::from_object(&owner["spec"]["selector"])
    else {
        return false;
    };
    if selector.is_empty() || crate::sim::meta::deleting(owner) {
        return false;
    }
    let ns = crate::sim::meta::namespace(owner);
    let mut adopted = false;
    for c in candidates {
        if crate::sim::meta::namespace(c) != ns
            || crate::sim::meta::controller_ref(c).is_some()
            || crate::sim::meta::deleting(c)
            || !selector.matches(&c["metadata"]["labels"])
        {
            continue;
        }
        let reference = crate::sim::meta::controller_ref_to(owner);
        let done = shared.store.modify(
            ri,
            ns,
            crate::sim::meta::name(c),
            crate::sim::store::Part::Main,
            |o| {
                let refs = &mut o["metadata"]["ownerReferences"];
                if !refs.is_array() {
                    *refs = serde_json::json!([]);
                }
                if let Some(a) = refs.as_array_mut() {
                    a.push(reference);
                }
                true
            },
        );
        adopted |= done.is_ok();
    }
    adopted
}

/// Whether a pod is Running with every container ready.
pub fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Whether a pod has finished.
pub fn pod_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded") | Some("Failed")
    )
}
