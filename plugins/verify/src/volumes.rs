//! The volume part of the comparison, as pure code: every recorded data volume still exists
//! with the same UID, is Bound to a claim whose UID is in its claimRef, and that claim is used
//! by a workload or pod; a recorded claim name now bound to another volume is named too (a
//! claim re-created empty). A volume whose data `kubectl upgrade-migrate-pv copy` verifiably
//! copied into a claim the new version uses counts as kept, on live evidence only: the journal
//! entry says verified, after the baseline was recorded, and was taken from the recorded
//! volume (by UID), the destination claim
//! exists with the UID the copy recorded and is Bound to the recorded volume; otherwise the
//! volume's difference stands, with the reason the copy does not count. Contents (summaries,
//! `--deep` tree digests) are compared where the data is now.

use std::collections::BTreeSet;

use upgrade_shared::pv_journal::{self, Entry};

use crate::baseline::{Baseline, VolumeRecord, VolumeSummary};
use crate::compare::Observed;
use crate::report::Difference;
use crate::state::State;

/// What the volume comparison found.
#[derive(Debug, Default)]
pub struct Findings {
    pub differences: Vec<Difference>,
    pub notes: Vec<String>,
    /// Volumes compared.
    pub checked: usize,
}

impl Findings {
    fn differ(
        &mut self,
        code: &str,
        object: impl Into<String>,
        message: impl Into<String>,
        recorded: impl Into<String>,
        now: impl Into<String>,
    ) {
        self.differences.push(Difference {
            code: code.into(),
            object: object.into(),
            message: message.into(),
            recorded: recorded.into(),
            now: now.into(),
        });
    }
}

/// `pv/NAME` of a recorded volume.
pub fn volume_name(v: &VolumeRecord) -> String {
    format!("pv/{}", v.volume)
}

/// What migrate-pv's journal says of a recorded volume's data.
enum Copied {
    /// No copy of the volume's claim is journalled.
    None,
    /// A verified copy that stands now: the claim (namespace, name) and volume holding it.
    Into {
        namespace: String,
        claim: String,
        volume: String,
    },
    /// Copies journalled that do not count, and why.
    Unproven(Vec<String>),
}

/// The verified migrate-pv copy of `v`'s data that stands on live evidence: the journal entry
/// says verified, later than the baseline was recorded, and was taken from this very volume
/// (by UID), its destination claim exists
/// with the recorded UID and is Bound to the recorded volume (which still has its recorded
/// UID), and a workload or pod of the new version uses that claim.
fn copied(
    v: &VolumeRecord,
    recorded_at: &str,
    state: &State,
    used: &BTreeSet<(String, String)>,
) -> Copied {
    let Some(entries) = state.pv_journal.get(&v.namespace) else {
        return Copied::None;
    };
    let mut why = Vec::new();
    for entry in entries.values() {
        let Entry::Copy {
            source,
            dest,
            dest_namespace,
            state: copy_state,
            proof,
            ..
        } = entry
        else {
            continue;
        };
        if *source != v.claim {
            continue;
        }
        let dest_ns = dest_namespace.as_deref().unwrap_or(&v.namespace);
        let into = format!("migrate-pv's copy into pvc {dest_ns}/{dest}");
        if copy_state != pv_journal::VERIFIED {
            why.push(format!("{into} is {copy_state}, not verified"));
            continue;
        }
        let Some(proof) = proof else {
            why.push(format!(
                "{into} was recorded without the objects it went between"
            ));
            continue;
        };
        if proof.source_volume_uid != v.volume_uid {
            why.push(format!(
                "{into} was taken from pv/{} uid {}, not the recorded volume",
                proof.source_volume, proof.source_volume_uid
            ));
            continue;
        }
        // What was written to the source between the copy and the record is not in the copy.
        match proof.verified_at.as_deref() {
            Some(at) if pv_journal::verified_after(at, recorded_at) == Some(true) => {}
            Some(at) => {
                why.push(format!(
                    "{into} was verified at {at}, the baseline recorded at {recorded_at}: the copy predates the baseline"
                ));
                continue;
            }
            None => {
                why.push(format!(
                    "{into} was recorded without the time it was verified, so it may predate the baseline (copy again with this migrate-pv)"
                ));
                continue;
            }
        }
        if !state.in_scope(dest_ns) {
            why.push(format!(
                "{into} is in namespace {dest_ns}, which is not verified here"
            ));
            continue;
        }
        let claim = state.claim(dest_ns, dest);
        let volume = state.volume(&proof.dest_volume);
        if let Some(problem) = pv_journal::dest_problem(proof, dest, dest_ns, claim, volume) {
            why.push(format!("{into} does not stand: {problem}"));
            continue;
        }
        if !used.contains(&(dest_ns.to_string(), dest.clone())) {
            why.push(format!(
                "{into} stands, but no workload or pod uses pvc {dest_ns}/{dest}"
            ));
            continue;
        }
        return Copied::Into {
            namespace: dest_ns.to_string(),
            claim: dest.clone(),
            volume: proof.dest_volume.clone(),
        };
    }
    if why.is_empty() {
        Copied::None
    } else {
        Copied::Unproven(why)
    }
}

/// The claim (namespace, name) that holds a recorded volume's data now: the one the volume is
/// bound to, else the destination of a verified migrate-pv copy that stands.
pub fn holder(v: &VolumeRecord, recorded_at: &str, state: &State) -> Option<(String, String)> {
    let bound = state
        .volumes
        .iter()
        .find(|p| p.metadata.uid.as_deref() == Some(v.volume_uid.as_str()))
        .and_then(|pv| pv.spec.as_ref()?.claim_ref.as_ref())
        .and_then(|r| Some((r.namespace.clone()?, r.name.clone()?)))
        .filter(|(ns, name)| state.claim(ns, name).is_some());
    let used: BTreeSet<(String, String)> = state.used_claims().into_iter().collect();
    if bound.as_ref().is_some_and(|b| used.contains(b)) {
        return bound;
    }
    match copied(v, recorded_at, state, &used) {
        Copied::Into {
            namespace, claim, ..
        } => Some((namespace, claim)),
        _ => bound,
    }
}

/// The recorded volume itself, bound to a claim that is used: that claim, or why not.
fn bound_claim(
    v: &VolumeRecord,
    state: &State,
    used: &BTreeSet<(String, String)>,
) -> Result<(String, String), Difference> {
    let was = format!(
        "uid {} bound to pvc {}/{}",
        v.volume_uid, v.namespace, v.claim
    );
    let differ = |code: &str, message: String, now: String| Difference {
        code: code.into(),
        object: volume_name(v),
        message,
        recorded: was.clone(),
        now,
    };
    let pv = state
        .volumes
        .iter()
        .find(|p| p.metadata.uid.as_deref() == Some(v.volume_uid.as_str()));
    let Some(pv) = pv else {
        let now = match state.volume(&v.volume) {
            Some(other) => format!(
                "pv/{} has uid {}",
                v.volume,
                other.metadata.uid.as_deref().unwrap_or_default()
            ),
            None => "gone".into(),
        };
        return Err(differ(
            "volume-lost",
            format!(
                "the volume that held pvc {}/{} no longer exists",
                v.namespace, v.claim
            ),
            now,
        ));
    };
    let phase = pv
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let ref_ns = claim_ref
        .and_then(|r| r.namespace.clone())
        .unwrap_or_default();
    let ref_name = claim_ref.and_then(|r| r.name.clone()).unwrap_or_default();
    let holder = state.claim(&ref_ns, &ref_name).filter(|c| {
        c.metadata.uid == claim_ref.and_then(|r| r.uid.clone())
            && c.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == pv.metadata.name.as_deref()
    });
    if phase != "Bound" || holder.is_none() {
        return Err(differ(
            "volume-unbound",
            format!(
                "the volume that held pvc {}/{} is not bound to a claim",
                v.namespace, v.claim
            ),
            if ref_name.is_empty() {
                format!("{phase}, no claimRef")
            } else {
                format!("{phase}, claimRef {ref_ns}/{ref_name}")
            },
        ));
    }
    if !used.contains(&(ref_ns.clone(), ref_name.clone())) {
        return Err(differ(
            "volume-unused",
            format!(
                "the volume is bound to pvc {ref_ns}/{ref_name}, which no workload or pod uses"
            ),
            format!("bound to pvc {ref_ns}/{ref_name}, unused"),
        ));
    }
    Ok((ref_ns, ref_name))
}

/// Compares every recorded data volume (see the module documentation).
pub fn compare(baseline: &Baseline, state: &State, observed: &Observed) -> Findings {
    let mut out = Findings::default();
    let f = &mut out;
    let used: BTreeSet<(String, String)> = state.used_claims().into_iter().collect();
    for v in baseline
        .volumes
        .iter()
        .filter(|v| v.data && !v.volume_uid.is_empty())
    {
        f.checked += 1;
        if let Some(claim) = state.claim(&v.namespace, &v.claim) {
            let bound = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref());
            if bound != Some(v.volume.as_str()) {
                f.differ(
                    "claim-rebound",
                    format!("pvc/{}", v.claim),
                    format!(
                        "claim {}/{} is bound to another volume than the one recorded (re-created?)",
                        v.namespace, v.claim
                    ),
                    volume_name(v),
                    bound.map_or("<unbound>".into(), |b| format!("pv/{b}")),
                );
            }
        }
        let (ref_ns, ref_name) = match bound_claim(v, state, &used) {
            Ok((ref_ns, ref_name)) => {
                if ref_name != v.claim || ref_ns != v.namespace {
                    f.notes.push(format!(
                        "{} moved from pvc {}/{} to pvc {ref_ns}/{ref_name}",
                        volume_name(v),
                        v.namespace,
                        v.claim
                    ));
                }
                (ref_ns, ref_name)
            }
            // A volume whose data migrate-pv copied, verifiably, into a claim the new version
            // uses is kept: the copy holds it now.
            Err(mut difference) => match copied(v, &baseline.recorded_at, state, &used) {
                Copied::Into {
                    namespace,
                    claim,
                    volume,
                } => {
                    f.notes.push(format!(
                        "{}: its data was copied by migrate-pv into pvc {namespace}/{claim} (pv/{volume}) and verified; {} uses that claim now{}",
                        volume_name(v),
                        state
                            .workloads()
                            .iter()
                            .find(|w| w.namespace == namespace && w.claims().contains(&claim))
                            .map_or("a pod".to_string(), |w| w.reference()),
                        if difference.code == "volume-lost" {
                            String::new()
                        } else {
                            format!(
                                " (the old volume is still there: kubectl upgrade-migrate-pv cleanup {} -n {} deletes it)",
                                v.claim, v.namespace
                            )
                        }
                    ));
                    (namespace, claim)
                }
                Copied::Unproven(why) => {
                    difference.message = format!("{}; {}", difference.message, why.join("; "));
                    f.differences.push(difference);
                    continue;
                }
                Copied::None => {
                    f.differences.push(difference);
                    continue;
                }
            },
        };
        if let Some(recorded) = v.summary.as_ref().filter(|s| s.digest.is_some())
            && let Some((_, now)) = observed
                .digests
                .iter()
                .find(|((ns, c), _)| *ns == ref_ns && *c == ref_name)
            && now.digest != recorded.digest
        {
            let show = |s: &VolumeSummary| {
                format!(
                    "sha256 {} ({} files, {} bytes)",
                    s.digest.as_deref().unwrap_or_default(),
                    s.files,
                    s.bytes
                )
            };
            f.differ(
                "volume-changed",
                volume_name(v),
                format!(
                    "the tree on the volume that held pvc {}/{} changed since the record (read through pvc {ref_ns}/{ref_name})",
                    v.namespace, v.claim
                ),
                show(recorded),
                show(now),
            );
        }
        // A deep baseline's counts came from the digest's pod (every file, whatever its owner
        // and mode): they are compared with the digest's counts now, never with a count taken
        // through the application's container, which may not read every directory.
        let taken_now = if v.summary.as_ref().is_some_and(|s| s.digest.is_some()) {
            &observed.digests
        } else {
            &observed.summaries
        };
        let (Some(before), Some(now)) = (
            &v.summary,
            taken_now
                .iter()
                .find(|((ns, c), _)| *ns == ref_ns && *c == ref_name)
                .map(|(_, s)| s),
        ) else {
            continue;
        };
        if before.files > 0 && now.files == 0 {
            f.differ(
                "volume-emptied",
                volume_name(v),
                "the volume held files at record time and holds none now",
                format!("{} files, {} bytes", before.files, before.bytes),
                format!("{} files, {} bytes", now.files, now.bytes),
            );
        } else if now.files < before.files || now.bytes < before.bytes {
            f.notes.push(format!(
                "{} holds less than at record time: {} files, {} bytes then; {} files, {} bytes now",
                volume_name(v),
                before.files,
                before.bytes,
                now.files,
                now.bytes
            ));
        }
    }
    out
}
