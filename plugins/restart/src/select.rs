//! Which pods to restart. Every selector given adds pods (a union): `--all`, pod names, `-l`,
//! `--condition` (pod phase, readiness, container waiting and termination reasons),
//! `--not-version` (an image tag that is not the version) and `--process-condition` (a process
//! group of the profile's custom resource with that condition, mapped to its pod by label).
//! Pods of process groups marked for removal and pods already terminating are left out with a
//! note; an empty selection is an error, raised before anything is asked or changed.

use std::collections::BTreeMap;

use upgrade_shared::names::{Requirement, selector_matches};
use upgrade_shared::version::{Version, split_image};

/// What selection needs to know about one pod (see `facts::pod`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodFacts {
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// Ready condition is True.
    pub ready: bool,
    /// A deletion is already under way.
    pub deleting: bool,
    /// Phase, `NotReady`, container waiting and last termination reasons, the pod's reason.
    pub reasons: Vec<String>,
    /// `(container, image)` of every container.
    pub images: Vec<(String, String)>,
    /// `Kind/name` of the controller that recreates the pod, if any.
    pub controller: Option<String>,
}

/// One process group of the profile's custom resource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupFacts {
    /// Name of the custom resource that lists it.
    pub instance: String,
    pub id: String,
    pub conditions: Vec<String>,
    pub marked_for_removal: bool,
}

/// How groups map to pods: `pod_label=<id>` (and `instance_label=<instance>` when set).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupLabels {
    pub pod_label: String,
    pub instance_label: Option<String>,
}

impl GroupLabels {
    /// The group a pod belongs to.
    pub fn group_of<'a>(&self, pod: &PodFacts, groups: &'a [GroupFacts]) -> Option<&'a GroupFacts> {
        let id = pod.labels.get(&self.pod_label)?;
        groups.iter().find(|g| {
            &g.id == id
                && self
                    .instance_label
                    .as_ref()
                    .is_none_or(|l| pod.labels.get(l) == Some(&g.instance))
        })
    }
}

/// Pod conditions `--condition` accepts, matched against [`PodFacts::reasons`].
pub const POD_CONDITIONS: &[&str] = &[
    "NotReady",
    "Pending",
    "Failed",
    "Unknown",
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "ContainerCannotRun",
    "OOMKilled",
    "Error",
    "Evicted",
];

/// Checks a `--condition` value and returns it in its canonical spelling.
pub fn pod_condition(text: &str) -> Result<String, String> {
    POD_CONDITIONS
        .iter()
        .find(|c| c.eq_ignore_ascii_case(text))
        .map(|c| c.to_string())
        .ok_or_else(|| {
            format!(
                "unknown pod condition {text:?} (known: {})",
                POD_CONDITIONS.join(", ")
            )
        })
}

/// The selectors as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub all: bool,
    pub names: Vec<String>,
    /// `-l` as typed and parsed.
    pub label: Option<(String, Vec<Requirement>)>,
    pub conditions: Vec<String>,
    pub process_conditions: Vec<String>,
    pub not_version: Option<Version>,
    /// Only this container's image counts for `--not-version` (the profile's version source).
    pub version_container: Option<String>,
}

impl Selectors {
    /// True when no selector was given at all.
    pub fn is_empty(&self) -> bool {
        !self.all
            && self.names.is_empty()
            && self.label.is_none()
            && self.conditions.is_empty()
            && self.process_conditions.is_empty()
            && self.not_version.is_none()
    }

    /// The selectors in words, for messages and the journal.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.all {
            parts.push("--all".to_string());
        }
        parts.extend(self.names.iter().cloned());
        if let Some((text, _)) = &self.label {
            parts.push(format!("-l {text}"));
        }
        parts.extend(self.conditions.iter().map(|c| format!("--condition {c}")));
        parts.extend(
            self.process_conditions
                .iter()
                .map(|c| format!("--process-condition {c}")),
        );
        if let Some(v) = &self.not_version {
            parts.push(format!("--not-version {}", v.raw));
        }
        parts.join(" ")
    }
}

/// One selected pod and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    pub name: String,
    pub uid: String,
    pub ready: bool,
    /// `Kind/name` of its controller.
    pub controller: Option<String>,
    pub because: Vec<String>,
}

/// The outcome of selection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection {
    pub pods: Vec<Selected>,
    /// Pods and groups left out, and why.
    pub notes: Vec<String>,
}

/// Why nothing can be selected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectError {
    /// No selector at all.
    #[error(
        "name what to restart: pod names, -l SELECTOR, --condition, --process-condition, --not-version or --all"
    )]
    NoSelector,
    /// `--process-condition` without a profile that lists process groups.
    #[error(
        "--process-condition needs a profile that lists process groups (e.g. --profile foundationdb)"
    )]
    NoProcessGroups,
    /// Named pods that do not exist.
    #[error("pod {} not found in namespace {namespace}", names.join(", "))]
    NotFound {
        names: Vec<String>,
        namespace: String,
    },
    /// The selectors matched no pod.
    #[error("nothing to restart: no pod in namespace {namespace} matches {selectors}{notes}")]
    Empty {
        namespace: String,
        selectors: String,
        notes: String,
    },
}

/// True when an image's tag is not `version` (a tag that reads as the same version, like
/// `7.1.33-1` for `7.1.33`, counts as at it).
pub fn image_at(image: &str, version: &Version) -> bool {
    let (_, tag) = split_image(image);
    tag == version.raw || Version::parse(tag).is_ok_and(|t| t.cmp_numbers(version).is_eq())
}

/// Selects pods; `pods` are the namespace's pods, `groups` the process groups (empty without a
/// profile that lists them).
pub fn select(
    namespace: &str,
    pods: &[PodFacts],
    groups: &[GroupFacts],
    labels: Option<&GroupLabels>,
    selectors: &Selectors,
) -> Result<Selection, SelectError> {
    if selectors.is_empty() {
        return Err(SelectError::NoSelector);
    }
    if !selectors.process_conditions.is_empty() && labels.is_none() {
        return Err(SelectError::NoProcessGroups);
    }
    let missing: Vec<String> = selectors
        .names
        .iter()
        .filter(|n| !pods.iter().any(|p| &p.name == *n))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(SelectError::NotFound {
            names: missing,
            namespace: namespace.to_string(),
        });
    }
    let mut out = Selection::default();
    let mut sorted: Vec<&PodFacts> = pods.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for pod in sorted {
        let group = labels.and_then(|l| l.group_of(pod, groups));
        let because = reasons(pod, group, selectors);
        if because.is_empty() {
            continue;
        }
        if pod.deleting {
            out.notes
                .push(format!("pod/{} is already terminating: left out", pod.name));
            continue;
        }
        if let Some(g) = group.filter(|g| g.marked_for_removal) {
            out.notes.push(format!(
                "pod/{} skipped: process group {} is marked for removal (the operator replaces it)",
                pod.name, g.id
            ));
            continue;
        }
        out.pods.push(Selected {
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            ready: pod.ready,
            controller: pod.controller.clone(),
            because,
        });
    }
    if let Some(l) = labels {
        for g in groups {
            let hit: Vec<&String> = g
                .conditions
                .iter()
                .filter(|c| selectors.process_conditions.contains(c))
                .collect();
            let has_pod = pods.iter().any(|p| l.group_of(p, groups) == Some(g));
            if hit.is_empty() || has_pod {
                continue;
            }
            let list: Vec<&str> = hit.iter().map(|s| s.as_str()).collect();
            out.notes.push(if g.marked_for_removal {
                format!(
                    "process group {} ({}) skipped: marked for removal",
                    g.id,
                    list.join(", ")
                )
            } else {
                format!(
                    "process group {} ({}) has no pod to restart; the operator creates it",
                    g.id,
                    list.join(", ")
                )
            });
        }
    }
    if out.pods.is_empty() {
        let notes = if out.notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", out.notes.join("; "))
        };
        return Err(SelectError::Empty {
            namespace: namespace.to_string(),
            selectors: selectors.describe(),
            notes,
        });
    }
    Ok(out)
}

fn reasons(pod: &PodFacts, group: Option<&GroupFacts>, s: &Selectors) -> Vec<String> {
    let mut because = Vec::new();
    if s.all {
        because.push("--all".to_string());
    }
    if s.names.contains(&pod.name) {
        because.push("named".to_string());
    }
    if let Some((text, reqs)) = &s.label
        && selector_matches(reqs, Some(&pod.labels))
    {
        because.push(format!("-l {text}"));
    }
    for c in &s.conditions {
        if pod.reasons.iter().any(|r| r.eq_ignore_ascii_case(c)) {
            because.push(c.clone());
        }
    }
    if let Some(v) = &s.not_version {
        let off: Vec<&(String, String)> = pod
            .images
            .iter()
            .filter(|(c, _)| s.version_container.as_ref().is_none_or(|vc| vc == c))
            .filter(|(_, image)| !image_at(image, v))
            .collect();
        for (c, image) in off {
            because.push(format!("{c} runs {image}, not {}", v.raw));
        }
    }
    if let Some(g) = group {
        for c in &g.conditions {
            if s.process_conditions.contains(c) {
                because.push(format!("process group {}: {c}", g.id));
            }
        }
    }
    because
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use upgrade_shared::names::parse_selector;

    fn pod(name: &str, group: &str, ready: bool, image: &str) -> PodFacts {
        PodFacts {
            name: name.into(),
            uid: format!("uid-{name}"),
            labels: [
                ("app".to_string(), "fdb".to_string()),
                ("group".to_string(), group.to_string()),
                ("cluster".to_string(), "sample".to_string()),
            ]
            .into(),
            ready,
            deleting: false,
            reasons: if ready {
                vec!["Running".into()]
            } else {
                vec![
                    "Running".into(),
                    "NotReady".into(),
                    "CrashLoopBackOff".into(),
                ]
            },
            images: vec![
                ("foundationdb".into(), image.into()),
                ("sidecar".into(), "sidecar:7.1.33-1".into()),
            ],
            controller: None,
        }
    }

    fn group(id: &str, conditions: &[&str], removal: bool) -> GroupFacts {
        GroupFacts {
            instance: "sample".into(),
            id: id.into(),
            conditions: conditions.iter().map(|s| s.to_string()).collect(),
            marked_for_removal: removal,
        }
    }

    fn labels() -> GroupLabels {
        GroupLabels {
            pod_label: "group".into(),
            instance_label: Some("cluster".into()),
        }
    }

    fn fixture() -> (Vec<PodFacts>, Vec<GroupFacts>) {
        (
            vec![
                pod("s-1", "storage-1", true, "fdb:7.1.33"),
                pod("s-2", "storage-2", true, "fdb:7.3.1"),
                pod("l-1", "log-1", false, "fdb:7.3.1"),
                pod("x-1", "stateless-1", true, "fdb:7.1.33"),
            ],
            vec![
                group("storage-1", &["MissingProcesses"], false),
                group("storage-2", &[], false),
                group("log-1", &["IncorrectCommandLine"], false),
                group("stateless-1", &["MissingProcesses"], true),
                group("log-9", &["MissingProcesses"], false),
            ],
        )
    }

    fn names(s: &Selection) -> Vec<&str> {
        s.pods.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn process_conditions_map_to_pods_and_skip_groups_marked_for_removal() {
        let (pods, groups) = fixture();
        let s = Selectors {
            process_conditions: vec!["MissingProcesses".into()],
            ..Default::default()
        };
        let sel = select("ns", &pods, &groups, Some(&labels()), &s).unwrap();
        assert_eq!(names(&sel), ["s-1"]);
        assert_eq!(
            sel.pods[0].because,
            ["process group storage-1: MissingProcesses"]
        );
        assert!(sel.notes.iter().any(|n| n.contains("x-1 skipped: process group stateless-1 is marked for removal")), "{:?}", sel.notes);
        assert!(
            sel.notes
                .iter()
                .any(|n| n.contains("log-9 (MissingProcesses) has no pod"))
        );
    }

    #[test]
    fn selectors_are_a_union() {
        let (pods, groups) = fixture();
        let s = Selectors {
            names: vec!["x-1".into()],
            conditions: vec!["CrashLoopBackOff".into()],
            process_conditions: vec!["MissingProcesses".into()],
            ..Default::default()
        };
        let sel = select("ns", &pods, &groups, Some(&labels()), &s).unwrap();
        // x-1 is named but its group is marked for removal: still skipped.
        assert_eq!(names(&sel), ["l-1", "s-1"]);
        let s = Selectors {
            names: vec!["x-1".into()],
            conditions: vec!["NotReady".into()],
            ..Default::default()
        };
        let sel = select("ns", &pods, &[], None, &s).unwrap();
        assert_eq!(names(&sel), ["l-1", "x-1"]);
    }

    #[test]
    fn not_version_looks_at_the_profile_container_only() {
        let (pods, _) = fixture();
        let mut s = Selectors {
            not_version: Some(Version::parse("7.3.1").unwrap()),
            version_container: Some("foundationdb".into()),
            ..Default::default()
        };
        let sel = select("ns", &pods, &[], None, &s).unwrap();
        assert_eq!(names(&sel), ["s-1", "x-1"]);
        assert_eq!(
            sel.pods[0].because,
            ["foundationdb runs fdb:7.1.33, not 7.3.1"]
        );
        s.version_container = None;
        let sel = select("ns", &pods, &[], None, &s).unwrap();
        assert_eq!(names(&sel).len(), 4, "the sidecar's 7.1.33-1 is not 7.3.1");
        assert!(image_at(
            "sidecar:7.1.33-1",
            &Version::parse("7.1.33").unwrap()
        ));
        assert!(image_at(
            "registry:5000/a/b:v2",
            &Version::parse("v2").unwrap()
        ));
    }

    #[test]
    fn labels_all_and_terminating_pods() {
        let (mut pods, _) = fixture();
        pods[0].deleting = true;
        let s = Selectors {
            label: Some(("app=fdb".into(), parse_selector("app=fdb").unwrap())),
            ..Default::default()
        };
        let sel = select("ns", &pods, &[], None, &s).unwrap();
        assert_eq!(names(&sel), ["l-1", "s-2", "x-1"]);
        assert!(sel.notes[0].contains("s-1 is already terminating"));
        let all = Selectors {
            all: true,
            ..Default::default()
        };
        assert_eq!(select("ns", &pods, &[], None, &all).unwrap().pods.len(), 3);
    }

    #[test]
    fn empty_and_missing_selections_are_errors() {
        let (pods, groups) = fixture();
        assert_eq!(
            select("ns", &pods, &groups, None, &Selectors::default()),
            Err(SelectError::NoSelector)
        );
        let s = Selectors {
            process_conditions: vec!["SidecarUnreachable".into()],
            ..Default::default()
        };
        let err = select("ns", &pods, &groups, Some(&labels()), &s).unwrap_err();
        assert!(matches!(err, SelectError::Empty { .. }));
        assert_eq!(
            err.to_string(),
            "nothing to restart: no pod in namespace ns matches --process-condition SidecarUnreachable"
        );
        assert_eq!(
            select("ns", &pods, &groups, None, &s),
            Err(SelectError::NoProcessGroups)
        );
        let s = Selectors {
            names: vec!["nope".into(), "s-1".into()],
            ..Default::default()
        };
        assert_eq!(
            select("ns", &pods, &groups, None, &s)
                .unwrap_err()
                .to_string(),
            "pod nope not found in namespace ns"
        );
    }

    #[test]
    fn conditions_are_checked_and_canonical() {
        assert_eq!(
            pod_condition("crashloopbackoff").unwrap(),
            "CrashLoopBackOff"
        );
        assert!(
            pod_condition("Sleepy")
                .unwrap_err()
                .contains("known: NotReady")
        );
    }
}
