//! `quiesce`: record each workload's replicas in the journal (a re-run keeps what the first
//! run recorded), scale them to zero one after the other, waiting until each one's pods are
//! gone, then with `--idle-logs` wait until the selected pods stay quiet.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use upgrade_shared::cluster::{Cluster, retry};
use upgrade_shared::list::list_matching;
use upgrade_shared::names::parse_selector;
use upgrade_shared::output::{self, Format};
use upgrade_shared::{exit, prompt, scale};

use super::{Entry, JOURNAL, QUIESCE, connect};
use crate::plan::{QuiesceRecord, WorkloadKind, WorkloadRef, quiesce_plan, quiesce_record};
use crate::{Args, QuiesceArgs, idle, render};

/// The name `shared::scale` knows a workload by.
pub fn scale_key(w: &WorkloadRef) -> String {
    let kind = match w.kind {
        WorkloadKind::Deployment => "deployment",
        WorkloadKind::StatefulSet => "statefulset",
        WorkloadKind::ReplicaSet => "replicaset",
    };
    format!("{kind}/{}", w.name)
}

/// The workload's replicas, `None` when it does not exist.
pub async fn live_replicas(cluster: &Cluster, w: &WorkloadRef) -> anyhow::Result<Option<i32>> {
    Ok(selector_of(cluster, w).await?.map(|(replicas, _)| replicas))
}

/// Replicas and pod selector of a workload, `None` when it does not exist.
pub async fn selector_of(
    cluster: &Cluster,
    w: &WorkloadRef,
) -> anyhow::Result<Option<(i32, LabelSelector)>> {
    let c = cluster.in_namespace(&w.namespace);
    let what = format!("cannot read {} in {}", scale_key(w), w.namespace);
    macro_rules! read {
        ($k:ty) => {{
            let api: Api<$k> = c.api();
            retry(&what, || api.get_opt(&w.name)).await?.map(|o| {
                let spec = o.spec.unwrap_or_default();
                (spec.replicas.unwrap_or(1), spec.selector)
            })
        }};
    }
    Ok(match w.kind {
        WorkloadKind::Deployment => read!(Deployment),
        WorkloadKind::StatefulSet => read!(StatefulSet),
        WorkloadKind::ReplicaSet => read!(ReplicaSet),
    })
}

/// `matchLabels` and `matchExpressions` as selector text for a list.
pub fn selector_text(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

pub async fn run(args: &Args, q: &QuiesceArgs) -> anyhow::Result<u8> {
    if let Some(sel) = &q.idle_logs {
        parse_selector(sel).map_err(|e| anyhow::anyhow!("--idle-logs: {e}"))?;
    }
    // Refuse a bad workload before connecting; namespaces are resolved once connected.
    for t in &q.workloads {
        WorkloadRef::parse(t, "default").map_err(anyhow::Error::msg)?;
    }
    let ns_flag = args.kube.namespace.clone();
    let cluster = connect(args).await?;
    let ns = ns_flag.unwrap_or_else(|| cluster.namespace.clone());
    let targets = q
        .workloads
        .iter()
        .map(|t| WorkloadRef::parse(t, &ns))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let mut live = std::collections::BTreeMap::new();
    for w in &targets {
        match live_replicas(&cluster, w).await? {
            Some(n) => {
                live.insert(w.clone(), n);
            }
            None => anyhow::bail!("{} not found in namespace {}", scale_key(w), w.namespace),
        }
    }
    let recorded = match JOURNAL.get(&cluster, QUIESCE).await? {
        Some(Entry::Quiesce(r)) => Some(r),
        _ => None,
    };
    let steps = quiesce_plan(&targets, &live, recorded.as_ref());
    let idle_secs = q.idle_for.0.map_or(0, |d| d.as_secs());
    if args.output.format == Format::Table {
        output::print(&render::quiesce_plan(
            &steps,
            q.idle_logs.as_deref().map(|s| (s, ns.as_str(), idle_secs)),
        ))?;
    }
    let record = quiesce_record(&steps, recorded.as_ref());
    if args.dry_run() {
        if args.output.format != Format::Table {
            output::print(&output::to_document(&record, args.output.format)?)?;
        }
        return Ok(exit::OK);
    }
    if !prompt::confirm(
        &format!("Scale {} workload(s) to zero?", steps.len()),
        args.yes,
    )? {
        eprintln!("nothing was scaled");
        return Ok(exit::FINDINGS);
    }
    // The replicas to put back are on the cluster before the first scale.
    JOURNAL
        .write(&cluster, QUIESCE, &Entry::Quiesce(record.clone()))
        .await?;
    for s in &steps {
        let c = cluster.in_namespace(&s.workload.namespace);
        let key = scale_key(&s.workload);
        let (_, selector) = selector_of(&cluster, &s.workload)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{key} in {} is gone", s.workload.namespace))?;
        if s.live != 0 {
            scale::set_replicas(&c, &key, 0).await?;
        }
        let pods = list_matching(
            c.pods(),
            ListParams::default().labels(&selector_text(&selector)),
            "pods",
            &s.workload.namespace,
        )
        .await?;
        let names: Vec<String> = pods.into_iter().filter_map(|p| p.metadata.name).collect();
        eprintln!(
            "{key} in {}: scaled to 0, waiting for {} pod(s) to be gone",
            s.workload.namespace,
            names.len()
        );
        if let Err(e) = scale::wait_pods_gone(&c, &names, args.timeout()).await {
            eprintln!(
                "error: {e:#}; `kubectl upgrade-restart resume -n {ns}` puts the recorded replicas back"
            );
            return Ok(exit::FINDINGS);
        }
    }
    if let Some(sel) = &q.idle_logs {
        let idle_for = q.idle_for.0.unwrap_or_default();
        eprintln!(
            "waiting until the pods matching {sel} in {ns} log nothing for {}s",
            idle_for.as_secs()
        );
        match idle::wait_quiet(&cluster.in_namespace(&ns), sel, idle_for, args.timeout()).await {
            Ok(0) => eprintln!("note: no pod matches {sel} in {ns}: nothing to wait for"),
            Ok(_) => {}
            Err(e) => {
                eprintln!(
                    "error: {e:#}; the workloads stay at zero, `kubectl upgrade-restart resume -n {ns}` puts them back"
                );
                return Ok(exit::FINDINGS);
            }
        }
    }
    let summary = QuiesceSummary {
        namespace: ns.clone(),
        record,
    };
    match args.output.format {
        Format::Table => output::print(&format!(
            "Quiesced {} workload(s); `kubectl upgrade-restart resume -n {ns}` puts them back.\n",
            steps.len()
        ))?,
        f => output::print(&output::to_document(&summary, f)?)?,
    }
    Ok(exit::OK)
}

#[derive(serde::Serialize)]
struct QuiesceSummary {
    namespace: String,
    record: QuiesceRecord,
}
