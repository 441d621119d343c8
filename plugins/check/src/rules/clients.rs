//! Client compatibility before a version-incompatible upgrade. FoundationDB's major and minor
//! releases speak a new wire protocol: every fdbserver restarts on it together, and a client
//! whose library does not support the new version loses the database. The
//! fdb-kubernetes-operator refuses such an upgrade until every connected client supports it
//! (its `CheckClientCompatibility` step), reading the database's own status — `status json`,
//! `cluster.clients.supported_versions` — not the custom resource, which does not hold it. The
//! check reads the same document (taken live in a process pod, see `live::database_status`)
//! and decides the same way; patch upgrades keep the protocol and are not checked, as the
//! operator does not check them.
//!
//! A client supports the target when it is listed in `connected_clients` of an entry whose
//! `client_version` is on the target's release line (same major and minor: a line has one
//! protocol version) or newer than the target. Clients are told apart by `address` (and
//! `log_group`, when not default). As the operator's `getUnsupportedClients`, a client at the
//! machine address of one of the database's processes (`cluster.processes[*].address`) runs in
//! a process pod — someone's `fdbcli`, or the check's own — and clients in the log groups the
//! cluster ignores for upgrades (`ignoreLogGroupsForUpgrade`, by default the operator's own)
//! are not counted.

use std::collections::BTreeMap;

use serde_json::Value;
use upgrade_shared::profile::{Change, IgnoredLogGroups, Outcome, field};
use upgrade_shared::version::Version;

use crate::context::Context;
use crate::finding::{Finding, Severity};

/// True when a move from `from` to `to` changes the protocol, so clients must be checked.
pub fn needed(from: &Version, to: &Version) -> bool {
    Change::between(from, to) == Change::MinorUpgrade
}

/// One connected client: who it is and the library versions it loaded.
#[derive(Debug, Default)]
struct Client {
    versions: Vec<String>,
    address: String,
    log_group: String,
}

/// The machine part of an FDB address (`10.1.2.3:4500:tls` → `10.1.2.3`, `[::1]:4500` → `::1`).
fn machine(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    address.split(':').next().unwrap_or(address)
}

/// The machine addresses of the database's processes (a map or a list of objects with `address`).
fn process_machines(processes: Option<&Value>) -> Vec<String> {
    let items: Vec<&Value> = match processes {
        Some(Value::Object(m)) => m.values().collect(),
        Some(Value::Array(a)) => a.iter().collect(),
        _ => Vec::new(),
    };
    items
        .iter()
        .filter_map(|p| p["address"].as_str())
        .map(|a| machine(a).to_string())
        .collect()
}

/// Clients by description (`10.1.2.3:4500`, `10.1.2.4:4500 (log group app)`), from the
/// entries of `supported_versions`.
fn clients(entries: &[Value]) -> BTreeMap<String, Client> {
    let mut out: BTreeMap<String, Client> = BTreeMap::new();
    for entry in entries {
        let version = entry["client_version"].as_str().unwrap_or("unknown");
        for list in ["connected_clients", "max_protocol_clients"] {
            for c in entry[list]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let client = out.entry(describe(c)).or_default();
                client.address = c["address"].as_str().unwrap_or_default().to_string();
                client.log_group = c["log_group"].as_str().unwrap_or_default().to_string();
                if list == "connected_clients" && !client.versions.iter().any(|v| v == version) {
                    client.versions.push(version.to_string());
                }
            }
        }
    }
    out
}

fn describe(client: &Value) -> String {
    let address = client["address"].as_str().unwrap_or("an unknown address");
    match client["log_group"].as_str() {
        Some(g) if !g.is_empty() && g != "default" => format!("{address} (log group {g})"),
        _ => address.to_string(),
    }
}

/// True when a library version is on the target's release line or newer (a newer library
/// speaks the older protocols too, as the operator assumes).
fn on_line(version: &str, to: &Version) -> bool {
    Version::parse(version).is_ok_and(|v| {
        let line = (v.major, v.minor.unwrap_or(0));
        line >= (to.major, to.minor.unwrap_or(0))
    })
}

/// The log groups whose clients are not counted: the custom resource's list, or the default
/// when no resource sets one (the operator's `GetIgnoreLogGroupsForUpgrade`).
fn ignored_log_groups(ctx: &Context<'_>, spec: Option<&IgnoredLogGroups>) -> Vec<String> {
    let Some(spec) = spec else {
        return Vec::new();
    };
    let set: Vec<String> = ctx
        .snapshot
        .custom
        .iter()
        .filter(|o| {
            o["kind"] == spec.custom_resource.kind.as_str()
                && o["apiVersion"] == spec.custom_resource.api_version.as_str()
        })
        .filter_map(|o| field(o, &spec.field).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if set.is_empty() {
        spec.default.clone()
    } else {
        set
    }
}

pub(super) fn compatibility(ctx: &Context<'_>, findings: &mut Vec<Finding>) {
    let Some(check) = &ctx.profile.client_compatibility else {
        return;
    };
    if !needed(&ctx.from, &ctx.to) {
        return;
    }
    let app = ctx.profile.name.clone();
    let line = format!("{}.{}", ctx.to.major, ctx.to.minor.unwrap_or(0));
    let how = format!(
        "kubectl exec -n {} <process pod> -c {} -- {}",
        ctx.snapshot.namespace,
        check.container,
        check
            .command
            .iter()
            .map(|w| crate::runbook::shell_word(w))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let unknown = |why: String| Finding {
        severity: Severity::Warning,
        component: app.clone(),
        code: "client-versions-unknown".into(),
        message: format!("could not read client versions: {why}"),
        remediation: format!(
            "make sure every client's library supports {line} before the version changes: run {how} and read {}",
            check.field
        ),
        evidence: Vec::new(),
        impact: Outcome::NeedsSteps,
    };
    let status = match &ctx.snapshot.database_status {
        None => {
            findings.push(unknown(
                "the check read files, not the cluster, and the database's status is only in the cluster".into(),
            ));
            return;
        }
        Some(Err(why)) => {
            findings.push(unknown(why.clone()));
            return;
        }
        Some(Ok(status)) => status,
    };
    let Some(entries) = field(status, &check.field).and_then(Value::as_array) else {
        findings.push(unknown(format!(
            "the database's status has no {} (is the database available?)",
            check.field
        )));
        return;
    };
    let machines = process_machines(check.processes.as_ref().and_then(|p| field(status, p)));
    let ignored = ignored_log_groups(ctx, check.ignored_log_groups.as_ref());
    let mut all = clients(entries);
    all.retain(|_, c| {
        !machines.iter().any(|m| m == machine(&c.address)) && !ignored.contains(&c.log_group)
    });
    let behind: Vec<(&String, &Client)> = all
        .iter()
        .filter(|(_, c)| !c.versions.iter().any(|v| on_line(v, &ctx.to)))
        .collect();
    if behind.is_empty() {
        return;
    }
    let named: Vec<String> = behind
        .iter()
        .map(|(who, c)| {
            let versions = if c.versions.is_empty() {
                "no version reported".to_string()
            } else {
                c.versions.join(", ")
            };
            format!("{who} ({versions})")
        })
        .collect();
    findings.push(Finding {
        severity: Severity::Critical,
        component: app,
        code: "clients-not-compatible".into(),
        message: format!(
            "{} of {} connected client{} do{} not support {line}: {}; the protocol changes with the version, and they would lose the database (the operator refuses the upgrade)",
            behind.len(),
            all.len(),
            if all.len() == 1 { "" } else { "s" },
            if behind.len() == 1 { "es" } else { "" },
            named.join("; ")
        ),
        remediation: format!(
            "upgrade those clients' FoundationDB library, or load a {line} client library next to the current one (multi-version client), then check again"
        ),
        evidence: named
            .iter()
            .map(|n| format!("{}: client {n}", check.field))
            .collect(),
        impact: Outcome::Blocked,
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn machine_addresses_drop_the_port_and_flags() {
        assert_eq!(machine("10.1.2.3:4500:tls"), "10.1.2.3");
        assert_eq!(machine("[::1]:4500"), "::1");
        let procs = serde_json::json!({"a": {"address": "10.0.0.9:4501"}});
        assert_eq!(process_machines(Some(&procs)), vec!["10.0.0.9".to_string()]);
    }

    #[test]
    fn a_newer_library_supports_an_older_target() {
        let to = Version::parse("7.1.40").unwrap();
        assert!(on_line("7.1.33", &to));
        assert!(on_line("7.3.43", &to));
        assert!(!on_line("6.3.25", &to));
    }
}
