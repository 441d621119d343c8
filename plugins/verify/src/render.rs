//! Tables for people: the component table (old → new, as in Rok's guide), the differences with
//! both values, and what a record holds. Plain unless colour is allowed.

use upgrade_shared::output::{Styles, table};

use crate::baseline::Baseline;
use crate::report::{Report, Verdict};

/// The component table alone (what `wait --watch` redraws).
pub fn components(report: &Report, styles: &Styles) -> String {
    let rows: Vec<Vec<String>> = report
        .components
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.workloads.clone(),
                c.old.clone(),
                c.new.clone(),
                c.ready.clone(),
                c.state.clone(),
            ]
        })
        .collect();
    table(
        &["component", "workload", "recorded", "now", "ready", "state"],
        &rows,
        |col, cell| match col {
            5 if cell == "ok" => styles.good(cell),
            5 => styles.bad(cell),
            _ => cell.to_string(),
        },
    )
}

/// The whole report.
pub fn report(report: &Report, styles: &Styles) -> String {
    let mut out = String::new();
    let verdict = match report.verdict {
        Verdict::Verified => styles.good("VERIFIED"),
        Verdict::Differences => styles.bad("DIFFERENCES"),
        Verdict::Unverified => styles.warn("UNVERIFIED"),
    };
    let versions = match (&report.from, &report.version) {
        (Some(from), Some(now)) => format!(", {from} → {now}"),
        (None, Some(now)) => format!(", now {now}"),
        _ => String::new(),
    };
    out.push_str(&format!(
        "{verdict}: namespace {}{}{versions} (baseline of {})\n",
        report.namespace,
        report
            .profile
            .as_ref()
            .map(|p| format!(", profile {p}"))
            .unwrap_or_default(),
        report.recorded_at
    ));
    let c = report.checked;
    out.push_str(&styles.dim(&format!(
        "checked {} components, {} workloads, {} volumes, {} tables, {} custom resources, {} new jobs, {} pods\n",
        c.components, c.workloads, c.volumes, c.tables, c.custom_resources, c.jobs, c.pods
    )));
    if !report.components.is_empty() {
        out.push('\n');
        out.push_str(&components(report, styles));
    }
    if !report.differences.is_empty() {
        out.push('\n');
        out.push_str(&styles.heading("Differences\n"));
        let rows: Vec<Vec<String>> = report
            .differences
            .iter()
            .map(|d| {
                vec![
                    d.code.clone(),
                    d.object.clone(),
                    d.recorded.clone(),
                    d.now.clone(),
                    d.message.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["difference", "object", "recorded", "now", "detail"],
            &rows,
            |col, cell| {
                if col == 0 {
                    styles.bad(cell)
                } else {
                    cell.to_string()
                }
            },
        ));
    }
    if !report.unverified.is_empty() {
        out.push('\n');
        out.push_str(&styles.heading("Not verified\n"));
        for u in &report.unverified {
            out.push_str(&format!("  {}\n", styles.warn(u)));
        }
    }
    if !report.notes.is_empty() {
        out.push('\n');
        out.push_str(&styles.heading("Notes\n"));
        for n in &report.notes {
            out.push_str(&format!("  {}\n", styles.dim(n)));
        }
    }
    out
}

/// What a record holds, and where it was stored.
pub fn baseline(b: &Baseline, stored: &[String], styles: &Styles) -> String {
    let mut out = format!(
        "{} namespace {}{}{} at {}\n",
        styles.good("Recorded"),
        b.namespace,
        b.profile
            .as_ref()
            .map(|p| format!(", profile {p}"))
            .unwrap_or_default(),
        b.version
            .as_ref()
            .map(|v| format!(", version {v}"))
            .unwrap_or_default(),
        b.recorded_at
    );
    let data = b.volumes.iter().filter(|v| v.data).count();
    out.push_str(&format!(
        "  {} components, {} workloads, {} claims ({data} data), {} tables, {} custom resources, {} pods\n",
        b.components.len(),
        b.workloads.len(),
        b.volumes.len(),
        b.tables.len(),
        b.custom_resources.len(),
        b.pods.len()
    ));
    let rows: Vec<Vec<String>> = b
        .volumes
        .iter()
        .map(|v| {
            vec![
                format!("{}/{}", v.namespace, v.claim),
                if v.volume.is_empty() {
                    "<unbound>".into()
                } else {
                    v.volume.clone()
                },
                v.capacity.clone().unwrap_or_default(),
                v.reclaim_policy.clone().unwrap_or_default(),
                if v.data { "yes" } else { "no" }.into(),
                v.summary
                    .as_ref()
                    .map(|s| match &s.digest {
                        Some(d) => format!(
                            "{} files, {} bytes, sha256 {}",
                            s.files,
                            s.bytes,
                            d.get(..12).unwrap_or(d)
                        ),
                        None => format!("{} files, {} bytes", s.files, s.bytes),
                    })
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &["claim", "volume", "capacity", "reclaim", "data", "contents"],
            &rows,
            |_, c| c.to_string(),
        ));
    }
    if !b.tables.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = b
            .tables
            .iter()
            .map(|t| {
                vec![
                    format!("{}.{}", t.database, t.table),
                    t.rows.to_string(),
                    if t.version_specific {
                        "version-specific".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        out.push_str(&table(&["table", "rows", ""], &rows, |_, c| c.to_string()));
    }
    for g in &b.gaps {
        out.push_str(&format!(
            "  {}\n",
            styles.warn(&format!("not recorded: {g}"))
        ));
    }
    for s in stored {
        out.push_str(&format!("stored in {s}\n"));
    }
    out
}
