//! Jobs (pkg/controller/job): pods up to `parallelism` until `completions` succeed, or the
//! `Failed` condition with reason `BackoffLimitExceeded` once more than `backoffLimit` pods fail.

use serde_json::{Value, json};

use super::deployments::create_pod;
use crate::sim::resources::builtin;
use crate::sim::store::Part;
use crate::sim::{Shared, meta};

fn finished(job: &Value) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
    })
}

/// One pass over jobs.
pub fn sync(shared: &Shared) {
    let job_ri = builtin("batch", "jobs").expect("built in");
    let pods = shared.store.all(&builtin("", "pods").expect("built in"));
    for job in shared
        .store
        .all(&job_ri)
        .iter()
        .filter(|j| !meta::deleting(j) && !finished(j))
    {
        let (ns, uid) = (meta::namespace(job), meta::uid(job));
        let mine: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                meta::namespace(p) == ns && meta::controller_ref(p).is_some_and(|o| o["uid"] == uid)
            })
            .collect();
        let count = |phase: &str| {
            mine.iter()
                .filter(|p| p["status"]["phase"] == phase)
                .count() as i64
        };
        let (succeeded, failed) = (count("Succeeded"), count("Failed"));
        let active = mine
            .iter()
            .filter(|p| !super::pod_terminal(p) && !meta::deleting(p))
            .count() as i64;
        let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
        let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1);
        let backoff = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
        let suspended = job["spec"]["suspend"].as_bool().unwrap_or(false);
        let now = meta::now();
        let mut status = json!({"startTime": job["status"]["startTime"].as_str().unwrap_or(&now), "active": active, "succeeded": succeeded, "failed": failed, "ready": mine.iter().filter(|p| super::pod_ready(p)).count(), "terminating": 0, "uncountedTerminatedPods": {}});
        if succeeded >= completions {
            status["completionTime"] = json!(now);
            status["conditions"] = json!([
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
            ]);
        } else if failed > backoff {
            status["conditions"] = json!([
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
            ]);
        } else if !suspended {
            let want = parallelism.min(completions - succeeded) - active;
            for _ in 0..want.max(0) {
                create_pod(
                    shared,
                    job,
                    &job["spec"]["template"],
                    None,
                    &format!("{}-", meta::name(job)),
                );
            }
        }
        if status["active"] == json!(0) {
            status.as_object_mut().map(|m| m.remove("active"));
        }
        let _ = shared
            .store
            .modify(&job_ri, ns, meta::name(job), Part::Status, |o| {
                let mut a = o["status"].clone();
                let mut b = status.clone();
                for s in [&mut a, &mut b] {
                    s.as_object_mut().map(|m| m.remove("startTime"));
                }
                if a == b && o["status"]["startTime"].is_string() {
                    return false;
                }
                o["status"] = status;
                true
            });
    }
}
