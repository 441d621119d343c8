//! Checks a parsed profile for things YAML's shape cannot express: versions that parse, ranges
//! that parse, names that point at components that exist. Each error carries its line.

use std::collections::HashSet;

use serde_saphyr::Spanned;

use super::{Outcome, Profile, VersionSource, parse_range};
use crate::version::Version;

type Problem = (u64, String);

fn range(field: &str, spanned: &Spanned<String>) -> Result<(), Problem> {
    parse_range(&spanned.value).map(|_| ()).map_err(|e| {
        (
            spanned.referenced.line(),
            format!("{field}: {:?} is not a version range ({e}); write e.g. \">=1.7.2, <1.9.0\" or \"*\"", spanned.value),
        )
    })
}

/// Returns the first problem found, as (line, message).
pub(super) fn validate(profile: &Profile) -> Result<(), Problem> {
    let whole = |message: String| (1, message);
    if profile.name.is_empty() || !crate::names::is_dns_label(&profile.name) {
        return Err(whole(format!(
            "name: {:?} must be a lower-case DNS label",
            profile.name
        )));
    }
    if profile.versions.is_empty() {
        return Err(whole("versions: list at least one known version".into()));
    }
    let mut previous: Option<Version> = None;
    for v in &profile.versions {
        let parsed = Version::parse(&v.value)
            .map_err(|e| (v.referenced.line(), format!("versions: {e}")))?;
        if let Some(prev) = &previous
            && parsed.cmp_numbers(prev).is_le()
        {
            return Err((
                v.referenced.line(),
                format!(
                    "versions: {} is not newer than {}; list versions oldest first",
                    v.value, prev.raw
                ),
            ));
        }
        previous = Some(parsed);
    }
    let mut names = HashSet::new();
    for c in &profile.components {
        if !names.insert(c.name.as_str()) {
            return Err(whole(format!("components: {:?} is listed twice", c.name)));
        }
        crate::names::parse_selector(&c.selector)
            .map_err(|e| whole(format!("components.{}.selector: {e}", c.name)))?;
        for w in &c.workloads {
            range(
                &format!("components.{}.workloads.versions", c.name),
                &w.versions,
            )?;
            if !crate::names::is_dns_subdomain(&w.name) {
                return Err((
                    w.versions.referenced.line(),
                    format!(
                        "components.{}: workload name {:?} is not a valid Kubernetes name",
                        c.name, w.name
                    ),
                ));
            }
        }
        if let Some(r) = &c.redeployed_in {
            range(&format!("components.{}.redeployedIn", c.name), r)?;
        }
    }
    let component = |field: &str, name: &str| {
        if names.contains(name) {
            Ok(())
        } else {
            Err(whole(format!("{field}: no component named {name:?}")))
        }
    };
    if profile.version_sources.is_empty() {
        return Err(whole(
            "versionSources: list at least one place to read the running version".into(),
        ));
    }
    for source in &profile.version_sources {
        match source {
            VersionSource::Image { component: c, .. }
            | VersionSource::Label { component: c, .. }
            | VersionSource::HelmChart { component: c, .. } => component("versionSources", c)?,
            VersionSource::CustomResource { .. } | VersionSource::ClusterFile { .. } => {}
        }
    }
    for c in &profile.persistence.detect_from {
        component("persistence.detectFrom", c)?;
    }
    if let Some(check) = &profile.client_compatibility {
        for c in &check.components {
            component("clientCompatibility.components", c)?;
        }
        if check.command.is_empty() {
            return Err(whole(
                "clientCompatibility.command: give the command's argv".into(),
            ));
        }
    }
    if profile.edges.is_empty() {
        return Err(whole("edges: list at least one upgrade edge".into()));
    }
    for edge in &profile.edges {
        range("edges.from", &edge.from)?;
        range("edges.to", &edge.to)?;
        if edge.outcome == Outcome::NeedsSteps && edge.workaround.is_none() {
            return Err((
                edge.from.referenced.line(),
                "edges: a needs-steps edge must say its workaround".into(),
            ));
        }
        for step in edge.steps.iter().chain(&edge.after_copy) {
            crate::template::check(&step.command)
                .map_err(|e| (edge.from.referenced.line(), format!("edges.steps: {e}")))?;
        }
    }
    for step in profile
        .runbook
        .before
        .iter()
        .chain(&profile.runbook.upgrade)
        .chain(&profile.runbook.after)
    {
        crate::template::check(&step.command).map_err(|e| whole(format!("runbook: {e}")))?;
    }
    for pin in &profile.image_pins {
        component("imagePins.component", &pin.component)?;
        for tag in &pin.tags {
            range("imagePins.tags.versions", &tag.versions)?;
        }
    }
    if let Some(sql) = &profile.sql {
        component("sql.component", &sql.component)?;
        for fp in &sql.fingerprints {
            let line = fp.version.referenced.line();
            Version::parse(&fp.version.value)
                .map_err(|e| (line, format!("sql.fingerprints.version: {e}")))?;
            if let Some(bad) = fp.present.iter().chain(&fp.absent).find(|e| {
                e.is_empty() || e.split('.').count() > 2 || e.split('.').any(str::is_empty)
            }) {
                return Err((
                    line,
                    format!("sql.fingerprints: {bad:?} is neither `table` nor `table.column`"),
                ));
            }
        }
    }
    Ok(())
}
