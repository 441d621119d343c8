//! `resume`: put back the replicas the last quiesce recorded, in the reverse order, wait until
//! each workload has them Ready, and mark the record resumed (a second resume has nothing to do).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use kube::api::Api;
use upgrade_shared::cluster::{Cluster, retry, wait};
use upgrade_shared::output::{self, Format};
use upgrade_shared::{exit, prompt, scale};

use super::quiesce::{live_replicas, scale_key};
use super::{Entry, JOURNAL, QUIESCE, connect};
use crate::plan::{WorkloadKind, WorkloadRef, resume_plan};
use crate::{Args, render};

/// Ready replicas of a workload now.
async fn ready_replicas(cluster: &Cluster, w: &WorkloadRef) -> anyhow::Result<i32> {
    let c = cluster.in_namespace(&w.namespace);
    let what = format!("cannot read {} in {}", scale_key(w), w.namespace);
    macro_rules! ready {
        ($k:ty) => {{
            let api: Api<$k> = c.api();
            retry(&what, || api.get_opt(&w.name))
                .await?
                .and_then(|o| o.status)
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        }};
    }
    Ok(match w.kind {
        WorkloadKind::Deployment => ready!(Deployment),
        WorkloadKind::StatefulSet => ready!(StatefulSet),
        WorkloadKind::ReplicaSet => ready!(ReplicaSet),
    })
}

pub async fn run(args: &Args) -> anyhow::Result<u8> {
    let cluster = connect(args).await?;
    let ns = cluster.namespace.clone();
    let mut record = match JOURNAL.get(&cluster, QUIESCE).await? {
        Some(Entry::Quiesce(r)) if !r.resumed => r,
        _ => {
            eprintln!(
                "nothing to resume: no quiesce is recorded in configmap/{} in {ns}",
                crate::JOURNAL
            );
            return Ok(exit::OK);
        }
    };
    let mut live = std::collections::BTreeMap::new();
    for q in &record.workloads {
        if let Some(n) = live_replicas(&cluster, &q.workload).await? {
            live.insert(q.workload.clone(), n);
        }
    }
    let steps = resume_plan(&record, &live);
    if args.output.format == Format::Table {
        output::print(&render::resume_plan(&steps))?;
    }
    let gone: Vec<String> = steps
        .iter()
        .filter(|s| s.live.is_none())
        .map(|s| format!("{} in {}", scale_key(&s.workload), s.workload.namespace))
        .collect();
    if args.dry_run() {
        if args.output.format != Format::Table {
            output::print(&output::to_document(&record, args.output.format)?)?;
        }
        return Ok(exit::OK);
    }
    if !prompt::confirm(
        &format!("Scale {} workload(s) back?", steps.len()),
        args.yes,
    )? {
        eprintln!("nothing was scaled");
        return Ok(exit::FINDINGS);
    }
    for s in steps.iter().filter(|s| s.live.is_some()) {
        let c = cluster.in_namespace(&s.workload.namespace);
        let key = scale_key(&s.workload);
        if s.live != Some(s.to) {
            scale::set_replicas(&c, &key, s.to).await?;
        }
        let w = s.workload.clone();
        let to = s.to;
        let what = format!("{key} in {} to have {to} ready replica(s)", w.namespace);
        eprintln!(
            "{key} in {}: scaled to {to}, waiting for it to be ready",
            w.namespace
        );
        if let Err(e) = wait(args.timeout(), &what, || {
            let (cluster, w) = (cluster.clone(), w.clone());
            async move { Ok(ready_replicas(&cluster, &w).await? >= to) }
        })
        .await
        {
            eprintln!(
                "error: {e:#}; the replicas are set, run `kubectl upgrade-restart resume -n {ns}` again to wait once more"
            );
            return Ok(exit::FINDINGS);
        }
    }
    if !gone.is_empty() {
        eprintln!(
            "error: not resumed, the workload is gone: {}; the record is kept",
            gone.join(", ")
        );
        return Ok(exit::FINDINGS);
    }
    record.resumed = true;
    JOURNAL
        .write(&cluster, QUIESCE, &Entry::Quiesce(record.clone()))
        .await?;
    match args.output.format {
        Format::Table => output::print(&format!("Resumed {} workload(s).\n", steps.len()))?,
        f => output::print(&output::to_document(&record, f)?)?,
    }
    Ok(exit::OK)
}
