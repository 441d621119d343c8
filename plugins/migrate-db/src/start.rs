//! Where the chain of scripts starts when `--from` is not given: the version the schema is at.
//!
//! The history table is the schema's own record, so it wins. Without one, the application's
//! running version (read through the profile's `versionSources`, as `upgrade-check` reads it)
//! is taken only when it is below the target *and* the schema matches the profile's
//! fingerprint of that version: once the new version runs — which is when the runbooks apply
//! the scripts — the running version is the target and says nothing about the schema, and an
//! application upgraded without its scripts runs a version its schema is not at (starting
//! there would skip scripts for good). Those cases are refused with what to pass instead,
//! never guessed.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::Api;
use upgrade_shared::list::{custom_resources, list_all};
use upgrade_shared::names;
use upgrade_shared::profile::{self, Profile, VersionSource};
use upgrade_shared::version::Version;

/// What said where the chain starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--from`.
    Flag,
    /// The history table's last applied script (or baseline).
    History,
    /// The application's running version, which is still below the target.
    Running,
}

impl Source {
    /// For the line apply and plan print.
    pub fn describe(&self) -> &'static str {
        match self {
            Source::Flag => "--from",
            Source::History => "the migration history",
            Source::Running => "the version the application runs, its schema fingerprint checked",
        }
    }
}

/// How the schema compares with the profile's fingerprint of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// Every entry matches.
    Matches,
    /// What does not match, one line each.
    Differs(Vec<String>),
    /// The profile declares no fingerprint for the version.
    NoFingerprint,
}

/// The version the chain starts from: `--from`, else the history's, else the running version
/// while it is below `to` and the schema fits its fingerprint. The error is one line saying
/// what to pass.
pub fn starting_version(
    flag: Option<Version>,
    history: Option<Version>,
    running: Result<(Version, Fit), String>,
    to: &Version,
    database: &str,
) -> Result<(Version, Source), String> {
    if let Some(v) = flag {
        return Ok((v, Source::Flag));
    }
    if let Some(v) = history {
        return Ok((v, Source::History));
    }
    let remedy = "pass --from (the version the schema is at), or record it once with `kubectl upgrade-migrate-db baseline --version V`";
    let no_history = format!("{database} has no migration history");
    match running {
        Ok((v, _)) if !v.cmp_numbers(to).is_lt() => Err(format!(
            "{no_history} and the application already runs {}, so its version no longer says which version the schema is at: {remedy}",
            v.canonical()
        )),
        Ok((v, Fit::Matches)) => Ok((v, Source::Running)),
        Ok((v, Fit::Differs(problems))) => Err(format!(
            "{no_history} and its schema does not look like that of {}, the version the application runs ({}): {remedy}",
            v.canonical(),
            problems.join("; ")
        )),
        Ok((v, Fit::NoFingerprint)) => Err(format!(
            "{no_history}, and the profile declares no schema fingerprint for {}, the version the application runs, to check that the schema is at it: {remedy}",
            v.canonical()
        )),
        Err(tried) => Err(format!(
            "{no_history} and the application's version could not be read ({tried}): {remedy}"
        )),
    }
}

/// One workload as the version sources see it.
#[derive(Debug, Clone, Default)]
pub struct WorkloadFacts {
    pub kind: &'static str,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub template_labels: BTreeMap<String, String>,
    /// (container, image).
    pub images: Vec<(String, String)>,
}

impl WorkloadFacts {
    fn new(
        kind: &'static str,
        meta: &kube::api::ObjectMeta,
        template: Option<&PodTemplateSpec>,
    ) -> Self {
        WorkloadFacts {
            kind,
            name: meta.name.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            template_labels: template
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            images: template
                .and_then(|t| t.spec.as_ref())
                .map(|s| {
                    s.containers
                        .iter()
                        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The namespace's workloads and the custom resources the profile reads versions from.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub workloads: Vec<WorkloadFacts>,
    pub custom: Vec<serde_json::Value>,
}

/// A profile's view of [`Live`]: a component's workloads are those its selector matches (on
/// the workload or its pod template) or that the profile names as the component's.
pub struct View<'a> {
    pub profile: &'a Profile,
    pub live: &'a Live,
}

impl View<'_> {
    fn of(&self, component: &str) -> Vec<&WorkloadFacts> {
        let Some(c) = self.profile.component(component) else {
            return Vec::new();
        };
        let reqs = names::parse_selector(&c.selector).unwrap_or_default();
        self.live
            .workloads
            .iter()
            .filter(|w| {
                names::selector_matches(&reqs, Some(&w.labels))
                    || names::selector_matches(&reqs, Some(&w.template_labels))
                    || c.workloads
                        .iter()
                        .any(|d| d.kind.short() == w.kind && d.name == w.name)
            })
            .collect()
    }
}

impl profile::VersionInputs for View<'_> {
    fn cluster_file_field(&self, _field: &str) -> Option<String> {
        None
    }

    fn custom_field(&self, api_version: &str, kind: &str, field: &str) -> Option<String> {
        self.live
            .custom
            .iter()
            .filter(|o| o["apiVersion"] == *api_version && o["kind"] == *kind)
            .find_map(|o| profile::field(o, field)?.as_str().map(str::to_string))
    }

    fn images(&self, component: &str, container: Option<&str>) -> Vec<String> {
        self.of(component)
            .into_iter()
            .flat_map(|w| w.images.iter())
            .filter(|(name, _)| container.is_none_or(|want| want == name))
            .map(|(_, image)| image.clone())
            .collect()
    }

    fn labels(&self, component: &str) -> Vec<BTreeMap<String, String>> {
        self.of(component)
            .into_iter()
            .map(|w| w.labels.clone())
            .collect()
    }
}

/// Reads what the profile's version sources need from the namespace.
pub async fn read(
    client: &kube::Client,
    namespace: &str,
    profile: &Profile,
) -> anyhow::Result<Live> {
    let scope = format!("namespace {namespace}");
    let mut live = Live::default();
    for d in list_all(
        Api::<Deployment>::namespaced(client.clone(), namespace),
        "deployments",
        &scope,
    )
    .await?
    {
        let t = d.spec.as_ref().map(|s| &s.template);
        live.workloads
            .push(WorkloadFacts::new("deploy", &d.metadata, t));
    }
    for s in list_all(
        Api::<StatefulSet>::namespaced(client.clone(), namespace),
        "statefulsets",
        &scope,
    )
    .await?
    {
        let t = s.spec.as_ref().map(|s| &s.template);
        live.workloads
            .push(WorkloadFacts::new("sts", &s.metadata, t));
    }
    for d in list_all(
        Api::<DaemonSet>::namespaced(client.clone(), namespace),
        "daemonsets",
        &scope,
    )
    .await?
    {
        let t = d.spec.as_ref().map(|s| &s.template);
        live.workloads
            .push(WorkloadFacts::new("ds", &d.metadata, t));
    }
    for source in &profile.version_sources {
        if let VersionSource::CustomResource {
            api_version, kind, ..
        } = source
            && let Some(objects) = custom_resources(client, namespace, api_version, kind).await?
        {
            live.custom.extend(objects);
        }
    }
    Ok(live)
}

/// The application's running version in the namespace, or the sources that were tried.
pub async fn running_version(
    client: &kube::Client,
    namespace: &str,
    profile: &Profile,
) -> anyhow::Result<Result<Version, String>> {
    let live = read(client, namespace, profile).await?;
    Ok(profile::detect_version(
        profile,
        &View {
            profile,
            live: &live,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect("version")
    }

    #[test]
    fn the_flag_then_the_history_decide() {
        let to = v("1.9.0");
        let running = || Ok((v("1.9.0"), Fit::Matches));
        assert_eq!(
            starting_version(Some(v("1.7.2")), Some(v("1.8.0")), running(), &to, "db"),
            Ok((v("1.7.2"), Source::Flag))
        );
        assert_eq!(
            starting_version(None, Some(v("1.8.0")), running(), &to, "db"),
            Ok((v("1.8.0"), Source::History))
        );
    }

    #[test]
    fn the_running_version_counts_only_before_the_upgrade_and_on_its_own_schema() {
        let to = v("1.9.0");
        assert_eq!(
            starting_version(
                None,
                None,
                Ok((v("1.8.0-release"), Fit::Matches)),
                &to,
                "db"
            )
            .map(|(v, s)| (v.canonical(), s)),
            Ok(("1.8.0".to_string(), Source::Running))
        );
        let after = starting_version(
            None,
            None,
            Ok((v("1.9.0-release"), Fit::Matches)),
            &to,
            "eggroll_meta",
        )
        .expect_err("the target already runs");
        assert!(
            after.starts_with(
                "eggroll_meta has no migration history and the application already runs 1.9.0"
            ),
            "{after}"
        );
        assert!(after.contains("pass --from"), "{after}");
        let skipped = starting_version(
            None,
            None,
            Ok((
                v("1.8.0"),
                Fit::Differs(vec!["t_storage_table_meta.f_origin is missing".into()]),
            )),
            &to,
            "db",
        )
        .expect_err("upgraded without its scripts");
        assert!(
            skipped.contains("does not look like that of 1.8.0")
                && skipped.contains("f_origin is missing"),
            "{skipped}"
        );
        let unchecked =
            starting_version(None, None, Ok((v("1.8.0"), Fit::NoFingerprint)), &to, "db")
                .expect_err("no fingerprint");
        assert!(
            unchecked.contains("no schema fingerprint for 1.8.0"),
            "{unchecked}"
        );
        let unknown = starting_version(
            None,
            None,
            Err("found none of: image tag of python".into()),
            &to,
            "db",
        )
        .expect_err("nothing read");
        assert!(
            unknown.contains("(found none of: image tag of python)"),
            "{unknown}"
        );
    }

    #[test]
    fn the_profile_reads_the_version_from_the_component_workloads() {
        let fate = upgrade_shared::profile::builtin("fate").expect("fate");
        let python = WorkloadFacts {
            kind: "deploy",
            name: "python".into(),
            labels: BTreeMap::from([("fateMoudle".to_string(), "python".to_string())]),
            images: vec![
                ("python".into(), "federatedai/python:1.8.0-release".into()),
                (
                    "fateboard".into(),
                    "federatedai/fateboard:1.8.0-release".into(),
                ),
            ],
            ..WorkloadFacts::default()
        };
        let mysql = WorkloadFacts {
            kind: "deploy",
            name: "mysql".into(),
            labels: BTreeMap::from([("fateMoudle".to_string(), "mysql".to_string())]),
            images: vec![("mysql".into(), "mysql:8.0.28".into())],
            ..WorkloadFacts::default()
        };
        let live = Live {
            workloads: vec![mysql, python],
            custom: Vec::new(),
        };
        let found = profile::detect_version(
            &fate,
            &View {
                profile: &fate,
                live: &live,
            },
        );
        assert_eq!(found.map(|v| v.canonical()), Ok("1.8.0".to_string()));
        let none = Live::default();
        assert!(
            profile::detect_version(
                &fate,
                &View {
                    profile: &fate,
                    live: &none
                }
            )
            .is_err()
        );
    }
}
