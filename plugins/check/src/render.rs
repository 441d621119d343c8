//! The human-readable report: verdict first, then findings with their evidence, then the
//! runbook with commands ready to copy.

use upgrade_shared::output::Styles;
use upgrade_shared::profile::Outcome;

use crate::finding::{Report, Severity};

/// Renders the report for a terminal (plain when `styles` are).
pub fn table(report: &Report, styles: &Styles) -> String {
    let mut out = String::new();
    let verdict = report.verdict.as_str().to_uppercase();
    let verdict = match report.verdict {
        Outcome::Safe => styles.good(&verdict),
        Outcome::NeedsSteps => styles.warn(&verdict),
        Outcome::DataLoss | Outcome::Blocked => styles.bad(&verdict),
    };
    out.push_str(&format!(
        "{} {} {} → {} in namespace {} (instance {}, persistence {})\n",
        styles.heading("Upgrade check:"),
        report.profile,
        report.from,
        report.to,
        report.namespace,
        report.instance,
        report.persistence.as_str(),
    ));
    out.push_str(&format!(
        "{} {verdict} — {}\n",
        styles.heading("Verdict:"),
        meaning(report.verdict)
    ));
    out.push_str(&format!("\n{}\n", styles.heading("FINDINGS")));
    let rows: Vec<Vec<String>> = report
        .findings
        .iter()
        .map(|f| {
            vec![
                f.severity.as_str().to_string(),
                f.component.clone(),
                f.code.clone(),
            ]
        })
        .collect();
    let header_and_rows =
        upgrade_shared::output::table(&["severity", "component", "code"], &rows, |col, cell| {
            if col == 0 {
                match cell {
                    "critical" => styles.bad(cell),
                    "warning" => styles.warn(cell),
                    _ => styles.dim(cell),
                }
            } else {
                cell.to_string()
            }
        });
    let mut lines = header_and_rows.lines();
    if let Some(header) = lines.next() {
        out.push_str(header);
        out.push('\n');
    }
    for (line, finding) in lines.zip(&report.findings) {
        out.push_str(line);
        out.push('\n');
        out.push_str(&format!("    {}\n", finding.message));
        for e in &finding.evidence {
            out.push_str(&format!("    {} {}\n", styles.dim("evidence:"), e));
        }
        if finding.severity != Severity::Info {
            out.push_str(&format!(
                "    {} {}\n",
                styles.dim("remedy:"),
                finding.remediation
            ));
        }
    }
    out.push_str(&format!("\n{}\n", styles.heading("RUNBOOK")));
    if report.steps.is_empty() {
        out.push_str("  (no steps: nothing in this suite makes this upgrade lossless)\n");
    }
    for (i, step) in report.steps.iter().enumerate() {
        out.push_str(&format!("{:>3}. {}\n", i + 1, step.description));
        out.push_str(&format!("     {}\n", styles.command(&step.command)));
    }
    out
}

fn meaning(verdict: Outcome) -> &'static str {
    match verdict {
        Outcome::Safe => "lossless as planned",
        Outcome::NeedsSteps => "lossless only if the runbook's steps run in order",
        Outcome::DataLoss => "data will be lost; nothing in this suite prevents it",
        Outcome::Blocked => "this upgrade is not possible as asked",
    }
}
