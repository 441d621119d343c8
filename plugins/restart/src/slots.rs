//! When is a restarted pod back? Each restarted pod leaves a *slot*: under its own name when
//! its controller reuses names (StatefulSets, operators that manage pods, in-place restarts),
//! or in its controller when the replacement gets a new name (ReplicaSets, DaemonSets). A slot
//! is filled by a Ready pod that is not terminating and is not one of the pods the rollout
//! restarted; in place, by the same pod, Ready again. Pure functions over [`PodFacts`].

use std::collections::BTreeSet;

use crate::plan::Mode;
use crate::select::PodFacts;

/// Controllers whose replacement pods get new names.
pub fn renames(controller: Option<&str>) -> bool {
    controller.is_some_and(|c| {
        c.starts_with("ReplicaSet/") || c.starts_with("DaemonSet/") || c.starts_with("Job/")
    })
}

/// One pod restarted in this batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub name: String,
    pub uid: String,
    /// The controller, when replacements get new names.
    pub owner: Option<String>,
}

/// Fills slots with Ready pods: the pod now serving each slot, or `None` while it is empty.
/// `restarted` holds every uid the rollout restarted (they never count as replacements).
pub fn fill(
    slots: &[Slot],
    pods: &[PodFacts],
    restarted: &BTreeSet<String>,
    mode: Mode,
) -> Vec<Option<String>> {
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    slots
        .iter()
        .map(|slot| {
            let found = pods.iter().find(|p| {
                let fresh = match mode {
                    Mode::InPlace => p.uid == slot.uid,
                    _ => !restarted.contains(&p.uid),
                };
                let same_slot = match &slot.owner {
                    Some(o) => p.controller.as_deref() == Some(o.as_str()),
                    None => p.name == slot.name,
                };
                same_slot && fresh && p.ready && !p.deleting && !taken.contains(p.uid.as_str())
            })?;
            taken.insert(found.uid.as_str());
            Some(found.name.clone())
        })
        .collect()
}

/// The pod to describe when a slot stays empty: the one under the name, else the newest pod
/// of the owner that is not Ready.
pub fn culprit<'a>(
    slot: &Slot,
    pods: &'a [PodFacts],
    restarted: &BTreeSet<String>,
) -> Option<&'a PodFacts> {
    match &slot.owner {
        None => pods.iter().find(|p| p.name == slot.name),
        Some(o) => pods
            .iter()
            .filter(|p| p.controller.as_deref() == Some(o.as_str()))
            .rfind(|p| !restarted.contains(&p.uid) && !p.ready),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(name: &str, uid: &str, owner: Option<&str>, ready: bool) -> PodFacts {
        PodFacts {
            name: name.into(),
            uid: uid.into(),
            ready,
            controller: owner.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn a_slot_under_a_name_needs_a_new_ready_pod() {
        let slot = Slot {
            name: "db-0".into(),
            uid: "old".into(),
            owner: None,
        };
        let restarted = BTreeSet::from(["old".to_string()]);
        let still_old = [p("db-0", "old", Some("StatefulSet/db"), true)];
        assert_eq!(
            fill(
                std::slice::from_ref(&slot),
                &still_old,
                &restarted,
                Mode::Rolling
            ),
            [None]
        );
        let starting = [p("db-0", "new", Some("StatefulSet/db"), false)];
        assert_eq!(
            fill(
                std::slice::from_ref(&slot),
                &starting,
                &restarted,
                Mode::Rolling
            ),
            [None]
        );
        assert_eq!(culprit(&slot, &starting, &restarted).unwrap().uid, "new");
        let back = [p("db-0", "new", Some("StatefulSet/db"), true)];
        assert_eq!(
            fill(&[slot], &back, &restarted, Mode::Rolling),
            [Some("db-0".to_string())]
        );
    }

    #[test]
    fn slots_of_a_replicaset_take_distinct_new_pods() {
        let rs = Some("ReplicaSet/web-5d");
        let slots = [
            Slot {
                name: "web-a".into(),
                uid: "a".into(),
                owner: rs.map(String::from),
            },
            Slot {
                name: "web-b".into(),
                uid: "b".into(),
                owner: rs.map(String::from),
            },
        ];
        let restarted = BTreeSet::from(["a".to_string(), "b".to_string()]);
        let pods = [
            p("web-c", "c", rs, true),
            p("web-b", "b", rs, true),
            p("web-d", "d", rs, false),
        ];
        assert_eq!(
            fill(&slots, &pods, &restarted, Mode::Rolling),
            [Some("web-c".to_string()), None]
        );
        assert_eq!(culprit(&slots[1], &pods, &restarted).unwrap().name, "web-d");
        assert!(renames(rs) && !renames(Some("StatefulSet/x")) && !renames(None));
    }

    #[test]
    fn in_place_needs_the_same_pod_ready() {
        let slot = Slot {
            name: "fdb-1".into(),
            uid: "u".into(),
            owner: None,
        };
        let restarted = BTreeSet::from(["u".to_string()]);
        let same = [p("fdb-1", "u", None, true)];
        assert_eq!(
            fill(
                std::slice::from_ref(&slot),
                &same,
                &restarted,
                Mode::InPlace
            ),
            [Some("fdb-1".to_string())]
        );
        let replaced = [p("fdb-1", "v", None, true)];
        assert_eq!(fill(&[slot], &replaced, &restarted, Mode::InPlace), [None]);
    }
}
