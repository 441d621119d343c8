//! `record`: read the namespace, build the baseline, store it in the ConfigMap (and the file),
//! read it back to prove it was stored.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use upgrade_shared::flags::KubeArgs;
use upgrade_shared::output::{self, Format, Styles};
use upgrade_shared::profile::Profile;

use crate::baseline::{Baseline, CONFIG_MAP, CONFIG_MAP_LIMIT, VolumeSummary};
use crate::state::State;
use crate::{cluster, digest, record, render, rows, summary};

/// What `record` was asked to do.
#[derive(Debug)]
pub struct Options {
    pub profile: Option<Profile>,
    pub file: Option<PathBuf>,
    /// `--deep`, with the image of its pod.
    pub deep: Option<String>,
    pub format: Format,
    pub yes: bool,
    pub dry_run: bool,
}

/// Refuses a namespace where the profile (or, without one, anything at all) is not found.
pub fn check_found(state: &State, profile: Option<&Profile>) -> anyhow::Result<()> {
    match profile {
        Some(p) => {
            let found = p.components.iter().any(|c| {
                !state.component_workloads(c).is_empty() || !state.component_pods(c).is_empty()
            });
            if !found {
                let selectors: Vec<&str> =
                    p.components.iter().map(|c| c.selector.as_str()).collect();
                anyhow::bail!(
                    "no {} components in namespace {} (looked for {})",
                    p.name,
                    state.namespace,
                    selectors.join(", ")
                );
            }
        }
        None => {
            if state.workloads().is_empty() && state.claims.is_empty() && state.pods.is_empty() {
                anyhow::bail!(
                    "nothing to record in namespace {}: no workloads, claims or pods",
                    state.namespace
                );
            }
        }
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("--output {}: not a file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    let back = Baseline::read_file(path)?;
    anyhow::ensure!(
        back.to_json() == text,
        "{} does not read back as written",
        path.display()
    );
    Ok(())
}

/// Puts each claim's summary into its volume's record.
fn set_summaries(baseline: &mut Baseline, summaries: Vec<((String, String), VolumeSummary)>) {
    for ((ns, claim), s) in summaries {
        if let Some(v) = baseline
            .volumes
            .iter_mut()
            .find(|v| v.namespace == ns && v.claim == claim)
        {
            v.summary = Some(s);
        }
    }
}

/// The claims of `missed` digests, named: `pvc NS/NAME, …`.
fn missed_claims(
    missed: &[String],
    asked: &[(String, String)],
    digests: &[((String, String), VolumeSummary)],
) -> String {
    let claims: Vec<String> = asked
        .iter()
        .filter(|held| digests.iter().all(|(d, _)| d != *held))
        .map(|(ns, claim)| format!("pvc {ns}/{claim}"))
        .collect();
    format!(
        "{} of {} tree digests could not be taken ({})",
        missed.len(),
        asked.len(),
        claims.join(", ")
    )
}

/// Runs `record`.
pub async fn run(kube: &KubeArgs, opts: Options, styles: &Styles) -> anyhow::Result<u8> {
    if let Some(path) = &opts.file {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        if dir.is_some_and(|d| !d.is_dir()) {
            anyhow::bail!("--output {}: the directory does not exist", path.display());
        }
    }
    let (client, namespace) = kube.client().await?;
    let profile = opts.profile.as_ref();
    let state = cluster::load(&client, &namespace, profile, &[])
        .await
        .with_context(|| format!("cannot read namespace {namespace}"))?;
    check_found(&state, profile)?;
    let mut baseline = record::baseline(&state, profile, super::now());
    if let Some(p) = profile {
        let (tables, errors) = rows::count_all(&client, &namespace, p).await;
        baseline.tables = tables;
        for e in &errors {
            eprintln!("warning: {e}");
        }
        baseline.gaps.extend(errors);
    }
    let data_claims: Vec<(String, String)> = baseline
        .volumes
        .iter()
        .filter(|v| v.data && !v.volume.is_empty())
        .map(|v| (v.namespace.clone(), v.claim.clone()))
        .collect();
    // A volume no running pod mounts keeps no summary; verify then compares it by UID only.
    let (summaries, missed) = summary::read_all(&client, &state, &data_claims).await;
    for m in missed {
        eprintln!("warning: not recorded: {m}");
    }
    set_summaries(&mut baseline, summaries);
    let text = baseline.to_json();
    let existing = cluster::stored(&client, &namespace).await?;
    let fits = text.len() <= CONFIG_MAP_LIMIT;
    if !fits && opts.file.is_none() {
        anyhow::bail!(
            "the baseline is {} bytes, more than a ConfigMap holds ({CONFIG_MAP_LIMIT}); pass --output FILE to keep it in a file",
            text.len()
        );
    }
    let previous = existing
        .as_ref()
        .and_then(|cm| cm.data.as_ref())
        .and_then(|d| d.get(crate::baseline::CONFIG_MAP_KEY))
        .and_then(|t| Baseline::from_json("stored", t).ok())
        .map(|b| b.recorded_at);
    eprintln!("Plan:");
    if fits {
        match (&existing, &previous) {
            (Some(_), Some(at)) => eprintln!(
                "  replace the baseline recorded at {at} in configmap/{CONFIG_MAP} ({namespace}), {} bytes",
                text.len()
            ),
            (Some(_), None) => eprintln!(
                "  replace configmap/{CONFIG_MAP} ({namespace}), which holds no readable baseline, {} bytes",
                text.len()
            ),
            (None, _) => eprintln!(
                "  create configmap/{CONFIG_MAP} ({namespace}) holding the baseline, {} bytes",
                text.len()
            ),
        }
    } else {
        eprintln!(
            "  not stored in the cluster: {} bytes is more than a ConfigMap holds",
            text.len()
        );
    }
    if let Some(image) = &opts.deep {
        for (ns, claim) in &data_claims {
            eprintln!(
                "  create pod/{} ({ns}, image {image}) mounting pvc {ns}/{claim} read-only to digest its tree, then delete it",
                upgrade_shared::volume_pod::name("verify", claim)
            );
        }
    }
    if let Some(path) = &opts.file {
        eprintln!("  write {}", path.display());
    }
    if opts.dry_run {
        eprintln!(
            "dry run: nothing stored{}",
            if opts.deep.is_some() {
                ", no digest pod started"
            } else {
                ""
            }
        );
        print(&baseline, &[], opts.format, styles)?;
        return Ok(upgrade_shared::exit::OK);
    }
    if fits && existing.is_some() && !opts.yes {
        let question = format!(
            "Replace the baseline in configmap/{CONFIG_MAP}{}?",
            previous
                .as_ref()
                .map(|at| format!(" recorded at {at}"))
                .unwrap_or_default()
        );
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            eprintln!(
                "error: not asking without a terminal: {question} Pass --yes to replace it, or --dry-run to see what would be recorded"
            );
            return Ok(upgrade_shared::exit::FINDINGS);
        }
        if !upgrade_shared::prompt::confirm(&question, false)? {
            eprintln!("nothing changed");
            return Ok(upgrade_shared::exit::FINDINGS);
        }
    }
    if let Some(image) = &opts.deep {
        baseline.deep_image = Some(image.clone());
        let progress = upgrade_shared::progress::Progress::items(
            "tree digests",
            Some(data_claims.len() as u64),
            "volumes",
            opts.format,
        );
        let (digests, missed) =
            digest::read_all(&client, &state, &data_claims, image, None, progress).await;
        // A baseline without a digest that was asked for would leave every later `verify`
        // unverified: nothing is stored.
        if !missed.is_empty() {
            for m in &missed {
                eprintln!("error: not recorded: {m}");
            }
            eprintln!(
                "error: {}: nothing stored; record again once the cause above is fixed, or without --deep",
                missed_claims(&missed, &data_claims, &digests)
            );
            return Ok(upgrade_shared::exit::ERROR);
        }
        // The digest's pod counted the files too, whether or not a running pod mounts the claim.
        set_summaries(&mut baseline, digests);
    }
    let text = baseline.to_json();
    if fits && text.len() > CONFIG_MAP_LIMIT {
        anyhow::bail!(
            "the baseline with its digests is {} bytes, more than a ConfigMap holds ({CONFIG_MAP_LIMIT}); nothing stored: pass --output FILE to keep it in a file",
            text.len()
        );
    }
    let mut stored = Vec::new();
    if let Some(path) = &opts.file {
        write_file(path, &text)?;
        stored.push(path.display().to_string());
    }
    if fits {
        cluster::store_baseline(&client, &namespace, &baseline, existing).await?;
        let back = cluster::read_baseline(&client, &namespace).await?;
        anyhow::ensure!(
            back == baseline,
            "configmap/{CONFIG_MAP} in {namespace} does not read back as stored"
        );
        stored.push(format!("configmap/{CONFIG_MAP} in {namespace}"));
    }
    print(&baseline, &stored, opts.format, styles)?;
    Ok(upgrade_shared::exit::OK)
}

fn print(b: &Baseline, stored: &[String], format: Format, styles: &Styles) -> anyhow::Result<()> {
    let text = match format {
        Format::Table => render::baseline(b, stored, styles),
        format => output::to_document(b, format)?,
    };
    output::print(&text)
}
