//! `verify` and `wait`: read the baseline and the namespace, compare, print. `wait` repeats
//! until the comparison passes or the timeout ends, and with `--watch` shows the component
//! table each time it changes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use upgrade_shared::flags::KubeArgs;
use upgrade_shared::output::{self, Format, Styles};
use upgrade_shared::profile::Profile;
use upgrade_shared::progress::Progress;
use upgrade_shared::version::Version;

use crate::baseline::Baseline;
use crate::compare::{self, Observed};
use crate::report::{Report, Verdict};
use crate::{ProfileArgs, cluster, digest, render, rows, summary, volumes};

/// How often `wait` looks again.
const POLL: Duration = Duration::from_secs(2);

/// `wait`'s own flags.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    /// `None`: no limit.
    pub timeout: Option<Duration>,
    pub watch: bool,
}

/// What `verify` (or `wait`) was asked to do.
#[derive(Debug)]
pub struct Options {
    pub profile: ProfileArgs,
    pub to: Option<String>,
    pub baseline: Option<PathBuf>,
    /// The image of the digests' pods (`--image`).
    pub image: String,
    pub format: Format,
    pub wait: Option<Wait>,
}

/// Checks that the profile fits the baseline.
fn check_profile(baseline: &Baseline, profile: Option<&Profile>) -> anyhow::Result<()> {
    if let (Some(recorded), Some(p)) = (&baseline.profile, profile)
        && recorded != &p.name
    {
        anyhow::bail!(
            "the baseline was recorded with profile {recorded}, not {}; verify with the same profile",
            p.name
        );
    }
    Ok(())
}

async fn once(
    client: &kube::Client,
    baseline: &Baseline,
    profile: Option<&Profile>,
    options: &compare::Options,
    digests: &Digests<'_>,
) -> anyhow::Result<(Report, bool)> {
    let recorded: Vec<String> = baseline.volumes.iter().map(|v| v.volume.clone()).collect();
    let state = cluster::load(client, &baseline.namespace, profile, &recorded)
        .await
        .with_context(|| format!("cannot read namespace {}", baseline.namespace))?;
    let mut read_digests = false;
    let mut observed = match profile {
        Some(p) if !baseline.tables.is_empty() || !baseline.gaps.is_empty() => {
            let (tables, table_errors) = rows::count_all(client, &baseline.namespace, p).await;
            Observed {
                tables: Some(tables),
                table_errors,
                ..Observed::default()
            }
        }
        _ => Observed::default(),
    };
    // Contents are compared where a recorded volume's data is now (its claim may have a new
    // name after an adoption, or be the destination of a verified copy).
    // A deep baseline's volumes are counted by their digests only.
    let holders: Vec<(String, String)> = baseline
        .volumes
        .iter()
        .filter(|v| v.summary.as_ref().is_some_and(|s| s.digest.is_none()))
        .filter_map(|v| volumes::holder(v, &baseline.recorded_at, &state))
        .collect();
    observed.summaries = summary::read_all(client, &state, &holders).await.0;
    let deep: Vec<(String, String)> = baseline
        .volumes
        .iter()
        .filter(|v| v.summary.as_ref().is_some_and(|s| s.digest.is_some()))
        .filter_map(|v| volumes::holder(v, &baseline.recorded_at, &state))
        .collect();
    // `wait` starts the digests' pods only once everything else verifies: until then the
    // upgrade is still under way, and each round would start them again.
    if !deep.is_empty()
        && !digests.first
        && compare::compare(baseline, &state, profile, &observed, options).verdict
            != Verdict::Verified
    {
        observed.digest_errors = vec!["tree digests are read once everything else verifies".into()];
    } else if !deep.is_empty() {
        let image = digests.image;
        eprintln!("reading tree digests through read-only pods of image {image}");
        let progress = Progress::items(
            "tree digests",
            Some(deep.len() as u64),
            "volumes",
            digests.format,
        );
        let (read, errors) =
            digest::read_all(client, &state, &deep, image, digests.deadline, progress).await;
        observed.digests = read;
        observed.digest_errors = errors;
        read_digests = true;
    }
    Ok((
        compare::compare(baseline, &state, profile, &observed, options),
        read_digests,
    ))
}

/// How `once` reads tree digests.
struct Digests<'a> {
    /// The image of their pods (`--image`).
    image: &'a str,
    /// Read them even when the rest does not verify (`verify`); `wait` reads them once it does.
    first: bool,
    /// None started or still running after this (`wait --timeout`).
    deadline: Option<Instant>,
    format: Format,
}

fn print(report: &Report, format: Format, styles: &Styles) -> anyhow::Result<()> {
    let text = match format {
        Format::Table => render::report(report, styles),
        format => output::to_document(report, format)?,
    };
    output::print(&text)
}

/// Runs `verify` or `wait`.
pub async fn run(kube: &KubeArgs, opts: Options, styles: &Styles) -> anyhow::Result<u8> {
    let to = opts
        .to
        .as_deref()
        .map(|t| Version::parse(t).map_err(|e| anyhow::anyhow!("--to: {e}")))
        .transpose()?;
    let from_file = opts
        .baseline
        .as_deref()
        .map(Baseline::read_file)
        .transpose()?;
    let (client, namespace) = kube.client().await?;
    let baseline = match from_file {
        Some(b) => b,
        None => cluster::read_baseline(&client, &namespace).await?,
    };
    if baseline.namespace != namespace {
        anyhow::bail!(
            "the baseline is of namespace {}, not {namespace}; pass -n {}",
            baseline.namespace,
            baseline.namespace
        );
    }
    let profile = opts.profile.load(baseline.profile.as_deref())?;
    if let (Some(p), Some(to)) = (&profile, &to) {
        p.check_version(to)
            .map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    }
    check_profile(&baseline, profile.as_ref())?;
    let options = compare::Options { to };
    let Some(wait) = opts.wait else {
        let digests = Digests {
            image: &opts.image,
            first: true,
            deadline: None,
            format: opts.format,
        };
        let (report, _) = once(&client, &baseline, profile.as_ref(), &options, &digests).await?;
        print(&report, opts.format, styles)?;
        return Ok(report.verdict.exit_code());
    };
    let deadline = wait.timeout.map(|t| Instant::now() + t);
    let digests = Digests {
        image: &opts.image,
        first: false,
        deadline,
        format: opts.format,
    };
    let terminal = std::io::stdout().is_terminal();
    let mut shown = String::new();
    let mut last: Option<Report> = None;
    let mut decided = false;
    loop {
        match once(&client, &baseline, profile.as_ref(), &options, &digests).await {
            Ok((report, read_digests)) => {
                if wait.watch {
                    let table = render::components(&report, styles);
                    if table != shown {
                        let stamp = super::now();
                        if terminal {
                            output::print(&format!("\x1b[H\x1b[2J{stamp}\n{table}"))?;
                        } else {
                            output::print(&format!("{stamp}\n{table}\n"))?;
                        }
                        shown = table;
                    }
                }
                // Once everything else verified, the digests were read, whole volumes each: that
                // round decides, they are not read again.
                decided = read_digests;
                let done = report.verdict == Verdict::Verified || read_digests;
                last = Some(report);
                if done {
                    break;
                }
            }
            // A control plane in the middle of an upgrade may refuse a read; the next try decides.
            Err(err) => eprintln!("warning: {err:#}"),
        }
        if deadline.is_some_and(|d| Instant::now() + POLL > d) {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let Some(report) = last else {
        anyhow::bail!("timed out before the namespace could be read once");
    };
    if report.verdict != Verdict::Verified && !decided {
        eprintln!(
            "timed out after {}: not verified",
            wait.timeout
                .map(|t| format!("{}s", t.as_secs()))
                .unwrap_or_default()
        );
    }
    print(&report, opts.format, styles)?;
    Ok(report.verdict.exit_code())
}
