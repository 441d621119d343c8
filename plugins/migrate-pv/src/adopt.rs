//! Freeing the claim an adoption gives up: with `--quiesce`, the owners of the pods that mount
//! it are scaled to zero as the plan's first steps; without it, pods already on their way out
//! (terminating, or owned by a workload at zero replicas — right after `kubectl scale
//! --replicas=0`) are waited for within `--timeout`, and any other pod refuses the adoption.

use upgrade_shared::cluster::Cluster;
use upgrade_shared::output::Format;
use upgrade_shared::scale::{self, Replicas};

use crate::plan::{Action, Plan};
use crate::{Args, DryRun};

/// With `quiesce`, the owners to scale down (and their replicas). Otherwise waits for the pods
/// that are stopping anyway, and returns no owners.
pub async fn stop_users(
    args: &Args,
    cluster: &Cluster,
    claim: &str,
    quiesce: bool,
) -> anyhow::Result<Replicas> {
    let pods = cluster.pods_mounting(claim).await?;
    if pods.is_empty() {
        return Ok(Replicas::new());
    }
    if quiesce {
        return scale::owners_of(cluster, &pods)
            .await
            .map_err(|e| e.context(format!("cannot quiesce the pods that mount pvc/{claim}")));
    }
    let mut going = Vec::new();
    for pod in &pods {
        if !scale::stopping(cluster, pod).await? {
            // Someone else's running pod: the plan refuses and names it.
            return Ok(Replicas::new());
        }
        going.extend(pod.metadata.name.clone());
    }
    if args.dry_run != DryRun::None {
        return Ok(Replicas::new());
    }
    let timeout = args.timeouts().bind;
    if args.output.format == Format::Table {
        eprintln!(
            "waiting up to {}s for {} to terminate (stopping: being deleted, or the owner is at 0 replicas)",
            timeout.as_secs(),
            going
                .iter()
                .map(|p| format!("pod/{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    scale::wait_pods_gone(cluster, &going, timeout).await?;
    Ok(Replicas::new())
}

/// Puts the scale-down steps, and the wait for the claim to be free, before the adoption's.
pub fn prepend_quiesce(plan: &mut Plan, owners: &Replicas, claim: &str) {
    if owners.is_empty() {
        return;
    }
    let mut steps: Vec<Action> = owners
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(owner, n)| Action::Scale {
            owner: owner.clone(),
            from: *n,
            to: 0,
        })
        .collect();
    steps.push(Action::WaitUnmounted {
        claim: claim.into(),
    });
    steps.append(&mut plan.steps);
    plan.steps = steps;
}
