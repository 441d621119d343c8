//! Carries out one rehearsal and reports every step's outcome as it goes.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::command::{self, Action};
use super::data::{self, Comparison, Kubectl, Snapshot};
use super::definition::{Definition, Kill, Play, scenarios_dir, starts_with_words, workspace};
use crate::sim::{SimCluster, SimGuard, SimOptions};

/// How a rehearsal runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Kill the plugin of the definition's kill step once, then run the step again.
    pub kill: bool,
    /// Kill as this says instead of as the definition says.
    pub kill_at: Option<Kill>,
    /// Where the built `kubectl-upgrade-*` binaries are (`target/debug`).
    pub plugins_dir: PathBuf,
    /// Keep the working directory (cluster data, kubeconfig, files the steps wrote) here;
    /// a temporary directory otherwise.
    pub keep: Option<PathBuf>,
    /// The longest one step may run before it is killed and fails.
    pub step_timeout: Duration,
}

impl Options {
    /// Defaults for the binaries in `plugins_dir`.
    pub fn new(plugins_dir: PathBuf) -> Self {
        Self {
            kill: false,
            kill_at: None,
            plugins_dir,
            keep: None,
            step_timeout: Duration::from_secs(300),
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and exited 0.
    Done,
    /// It ran and failed (exit status or reason).
    Failed(String),
    /// It cannot run as printed.
    Refused(String),
    /// It was not reached because an earlier step did not finish.
    NotReached,
}

/// One runbook step and what became of it.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// 1-based.
    pub number: usize,
    /// As the check printed it.
    pub description: String,
    /// As the check printed it.
    pub command: String,
    /// What was run for it (the command with `--yes` added, or the play's commands).
    pub ran: Vec<String>,
    /// Its outcome.
    pub outcome: Outcome,
    /// Whether this step's plugin was killed and the step run again.
    pub killed: bool,
}

/// What `kubectl upgrade-verify verify` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// It passed.
    Passed,
    /// It failed (exit status and output).
    Failed(String),
    /// The workspace has no verify plugin.
    NotInWorkspace,
    /// Not run because the runbook did not finish.
    NotRun,
}

/// Everything a rehearsal found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The rehearsal's name.
    pub name: String,
    /// The check's verdict.
    pub verdict: String,
    /// Every runbook step.
    pub steps: Vec<StepReport>,
    /// The data comparison (empty when the runbook did not finish).
    pub comparison: Comparison,
    /// The verify plugin's answer.
    pub verify: Verify,
    /// Why the rehearsal failed, if it did.
    pub failure: Option<String>,
}

impl Report {
    /// The runbook ran to the end, the data compared equal and verify did not fail.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Runs one rehearsal; progress goes to `out` line by line. An error means the rehearsal could
/// not be set up (no cluster, no check); a runbook that fails is a [`Report`] that did not pass.
pub fn rehearse(def: &Definition, opts: &Options, out: &mut dyn Write) -> anyhow::Result<Report> {
    let temp;
    let workdir = match &opts.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.canonicalize()?
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let started = Instant::now();
    writeln!(out, "Rehearsal {}: {}", def.name, def.title)?;
    writeln!(
        out,
        "  seed: {}; working directory {}",
        def.seed,
        workdir.display()
    )?;
    let env = Env::prepare(def, opts, &workdir)?;
    writeln!(
        out,
        "cluster: fresh simulated cluster from {} … ready",
        def.scenarios.join(", ")
    )?;
    for args in &def.prepare {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        prepare(&env, &args).with_context(|| format!("preparing: kubectl {}", args.join(" ")))?;
        let shown = format!("kubectl {}", args.join(" "));
        let cut: String = shown.chars().take(100).collect();
        let more = if cut.len() < shown.len() { " …" } else { "" };
        writeln!(out, "prepared: {cut}{more}")?;
    }
    let before = data::record(&env, &def.data.mysql, &def.data.files, None)
        .context("recording the data before the upgrade")?;
    print_recorded(out, "recorded", &before)?;

    let (verdict, steps) = env.check(def, out)?;
    let mut report = Report {
        name: def.name.clone(),
        verdict: verdict.clone(),
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, (d, c))| StepReport {
                number: i + 1,
                description: d.clone(),
                command: c.clone(),
                ran: Vec::new(),
                outcome: Outcome::NotReached,
                killed: false,
            })
            .collect(),
        comparison: Comparison::default(),
        verify: Verify::NotRun,
        failure: None,
    };
    if verdict != def.verdict {
        report.failure = Some(format!(
            "the check's verdict is {verdict}, the rehearsal expects {}",
            def.verdict
        ));
        return finish(report, out, started);
    }

    let total = report.steps.len();
    let mut kill_pending = opts.kill;
    let kill = opts.kill_at.as_ref().unwrap_or(&def.kill);
    let kill_step = kill.step.as_str();
    for step in &mut report.steps {
        writeln!(out, "step {}/{total}  {}", step.number, step.description)?;
        writeln!(out, "    {}", step.command)?;
        let kill_here = kill_pending && starts_with_words(&words(&step.command), kill_step);
        let t = Instant::now();
        env.step(def, opts, step, kill_here.then_some(kill.after_writes), out)?;
        if step.killed {
            kill_pending = false;
        }
        match &step.outcome {
            Outcome::Done => writeln!(out, "    ok ({:.1}s)", t.elapsed().as_secs_f64())?,
            Outcome::Failed(why) => writeln!(out, "    FAILED: {why}")?,
            Outcome::Refused(why) => writeln!(out, "    CANNOT RUN AS PRINTED: {why}")?,
            Outcome::NotReached => {}
        }
        if step.outcome != Outcome::Done {
            report.failure = Some(format!(
                "step {} `{}`: {}",
                step.number,
                step.command,
                match &step.outcome {
                    Outcome::Failed(w) | Outcome::Refused(w) => w.as_str(),
                    _ => "",
                }
            ));
            return finish(report, out, started);
        }
    }
    if kill_pending {
        report.failure = Some(format!(
            "no runbook step starts with `{kill_step}`, so nothing was killed"
        ));
        return finish(report, out, started);
    }

    let after = data::record(&env, &def.data.mysql, &def.data.files, Some(&before))
        .context("recording the data after the upgrade")?;
    report.comparison = data::compare(&def.data.mysql, &before, &after);
    writeln!(out, "data:")?;
    for line in &report.comparison.summary {
        writeln!(out, "    {line}")?;
    }
    for line in &report.comparison.differences {
        writeln!(out, "    DIFFERENT: {line}")?;
    }
    if !report.comparison.differences.is_empty() {
        report.failure = Some(format!(
            "{} difference(s) in the data",
            report.comparison.differences.len()
        ));
    }

    report.verify = env.verify(def, out)?;
    if let (None, Verify::Failed(why)) = (&report.failure, &report.verify) {
        report.failure = Some(format!("kubectl upgrade-verify verify failed: {why}"));
    }
    finish(report, out, started)
}

/// Runs a preparation command until it succeeds or the pods have had time to start.
fn prepare(env: &Env, args: &[&str]) -> anyhow::Result<()> {
    let deadline = Instant::now() + data::READY_WAIT;
    loop {
        match env.output(args) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn finish(report: Report, out: &mut dyn Write, started: Instant) -> anyhow::Result<Report> {
    let secs = started.elapsed().as_secs_f64();
    match &report.failure {
        None => writeln!(
            out,
            "Rehearsal {}: PASSED ({} steps, {secs:.0}s)",
            report.name,
            report.steps.len()
        )?,
        Some(why) => writeln!(out, "Rehearsal {}: FAILED: {why} ({secs:.0}s)", report.name)?,
    }
    Ok(report)
}

fn print_recorded(out: &mut dyn Write, what: &str, snap: &Snapshot) -> anyhow::Result<()> {
    for d in &snap.databases {
        let rows: usize = d.tables.values().map(|t| t.rows.len()).sum();
        writeln!(
            out,
            "{what}: database {} in {}: {} tables, {rows} rows, CHECKSUM TABLE of each",
            d.name,
            d.pod,
            d.tables.len()
        )?;
    }
    for t in &snap.trees {
        let files: Vec<usize> = t
            .entries
            .values()
            .filter(|e| e.kind == 'f')
            .map(|e| e.content.len())
            .collect();
        writeln!(
            out,
            "{what}: {}: {} entries, {} files, {} bytes",
            t.source,
            t.entries.len(),
            files.len(),
            files.iter().sum::<usize>()
        )?;
    }
    Ok(())
}

fn words(command: &str) -> Vec<String> {
    shlex::split(command).unwrap_or_default()
}

/// The cluster and the working directory the steps run in.
struct Env {
    cluster: SimGuard,
    workdir: PathBuf,
    kubeconfig: PathBuf,
    bin: PathBuf,
    path: OsString,
}

impl Kubectl for Env {
    fn output(&self, args: &[&str]) -> anyhow::Result<Vec<u8>> {
        let o = self
            .command("kubectl")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running kubectl")?;
        if !o.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        Ok(o.stdout)
    }
}

impl Env {
    fn prepare(def: &Definition, opts: &Options, workdir: &Path) -> anyhow::Result<Self> {
        let bin = workdir.join(".bin");
        std::fs::create_dir_all(&bin)?;
        // kubectl finds `kubectl upgrade-migrate-pv` as an executable named
        // `kubectl-upgrade_migrate_pv` on PATH (dashes after the first become underscores).
        for entry in std::fs::read_dir(&opts.plugins_dir)
            .with_context(|| format!("reading {}", opts.plugins_dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(plugin) = name.strip_prefix("kubectl-upgrade-") else {
                continue;
            };
            if plugin.contains('.') || !entry.path().is_file() {
                continue;
            }
            let link = bin.join(format!("kubectl-upgrade_{}", plugin.replace('-', "_")));
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(entry.path(), &link)?;
        }
        for file in &def.targets {
            copy_into(&scenarios_dir().join(file), &workdir.join(file_name(file)))?;
        }
        if let Some(file) = &def.profile_file {
            copy_into(
                &super::definition::rehearsals_dir().join(file),
                &workdir.join(file_name(file)),
            )?;
        }
        for (name, file) in &def.files {
            copy_into(&scenarios_dir().join(file), &workdir.join(name))?;
        }
        let cluster = SimCluster::spawn_blocking(SimOptions {
            data_dir: workdir.join(".sim"),
            scenarios: def
                .scenarios
                .iter()
                .map(|s| scenarios_dir().join(s))
                .collect(),
        })?;
        let kubeconfig = workdir.join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig)?;
        let mut path = OsString::from(&bin);
        if let Some(p) = std::env::var_os("PATH") {
            path.push(":");
            path.push(p);
        }
        Ok(Self {
            cluster,
            workdir: workdir.to_path_buf(),
            kubeconfig,
            bin,
            path,
        })
    }

    /// A command in the working directory, against this cluster, without colour.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.workdir)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PATH", &self.path)
            .env("NO_COLOR", "1");
        c
    }

    fn has_plugin(&self, plugin: &str) -> bool {
        self.bin
            .join(format!("kubectl-upgrade_{}", plugin.replace('-', "_")))
            .exists()
    }

    /// `kubectl upgrade-check … -o json`: the verdict and the runbook's steps.
    fn check(
        &self,
        def: &Definition,
        out: &mut dyn Write,
    ) -> anyhow::Result<(String, Vec<(String, String)>)> {
        let mut args: Vec<String> = profile_args(def);
        args.splice(0..0, ["upgrade-check".to_string()]);
        args.extend(["-n", &def.namespace, "--to", &def.to].map(String::from));
        for t in &def.targets {
            args.push("-f".into());
            args.push(file_name(t));
        }
        args.extend(["-o".into(), "json".into()]);
        writeln!(out, "check: kubectl {}", args.join(" "))?;
        let o = self
            .command("kubectl")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .context("running kubectl upgrade-check")?;
        let code = o.status.code().unwrap_or(-1);
        if code != 0 && code != 1 {
            bail!(
                "kubectl upgrade-check exited {code}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&o.stdout).context("the check printed no JSON")?;
        let verdict = doc["verdict"].as_str().unwrap_or_default().to_string();
        let steps: Vec<(String, String)> = doc["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["description"].as_str().unwrap_or_default().to_string(),
                    s["command"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        writeln!(out, "    verdict {verdict}, {} steps", steps.len())?;
        Ok((verdict, steps))
    }

    fn step(
        &self,
        def: &Definition,
        opts: &Options,
        step: &mut StepReport,
        kill: Option<usize>,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        match command::classify(def, &step.command) {
            Action::Refused(why) => step.outcome = Outcome::Refused(why),
            Action::Play(i) => self.play(&def.plays[i], def, opts, step, out)?,
            Action::Kubectl { args } => {
                step.ran.push(format!("kubectl {}", args.join(" ")));
                let r = self.run("kubectl", &args, opts.step_timeout, None)?;
                print_output(out, &r.output)?;
                step.outcome = r.outcome();
            }
            Action::Plugin { plugin, mut args } => {
                if !self.has_plugin(&plugin) {
                    step.outcome = Outcome::Refused(format!(
                        "kubectl-upgrade-{plugin} is not built in this workspace{}",
                        if workspace().join("plugins").join(&plugin).exists() {
                            " (build it: cargo build --bins)"
                        } else {
                            " (no plugins/ crate of that name)"
                        }
                    ));
                    return Ok(());
                }
                if !command::has_yes(&args) && self.offers_yes(&plugin, &args)? {
                    args.push("--yes".into());
                    writeln!(out, "    (no terminal to answer prompts: --yes added)")?;
                }
                let line = format!("kubectl {}", args.join(" "));
                step.ran.push(line);
                let r = self.run("kubectl", &args, opts.step_timeout, kill)?;
                print_output(out, &r.output)?;
                if r.killed {
                    step.killed = true;
                    writeln!(
                        out,
                        "    killed (SIGKILL) after its {} change request(s); running the same command again",
                        kill.unwrap_or_default()
                    )?;
                    step.ran.push(format!("kubectl {} (again)", args.join(" ")));
                    let again = self.run("kubectl", &args, opts.step_timeout, None)?;
                    print_output(out, &again.output)?;
                    step.outcome = again.outcome();
                } else if kill.is_some() {
                    step.outcome = Outcome::Failed(format!(
                        "it ended ({}) before sending {} change request(s), so it could not be killed in the middle",
                        r.describe(),
                        kill.unwrap_or_default()
                    ));
                } else {
                    step.outcome = r.outcome();
                }
            }
        }
        Ok(())
    }

    /// Whether the plugin's help for this command lists `--yes`.
    fn offers_yes(&self, plugin: &str, args: &[String]) -> anyhow::Result<bool> {
        let mut help_args: Vec<String> = args[1..]
            .iter()
            .take_while(|a| !a.starts_with('-'))
            .take(1)
            .cloned()
            .collect();
        help_args.push("--help".into());
        let o = self
            .command(&format!("kubectl-upgrade_{}", plugin.replace('-', "_")))
            .args(&help_args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running kubectl-upgrade-{plugin} --help"))?;
        Ok(command::help_offers_yes(&String::from_utf8_lossy(
            &o.stdout,
        )))
    }

    fn play(
        &self,
        play: &Play,
        def: &Definition,
        opts: &Options,
        step: &mut StepReport,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        writeln!(out, "    played: {}", play.does)?;
        let timeout = format!("--timeout={}s", opts.step_timeout.as_secs());
        let mut runs: Vec<Vec<String>> = Vec::new();
        for object in &play.delete {
            let (ns, object) = split_namespace(object, &def.namespace);
            runs.push(
                // Foreground: the tool that removes an application returns once its pods are
                // gone, so a new workload of the same name does not meet the old pods.
                [
                    "delete",
                    object,
                    "-n",
                    ns,
                    "--cascade=foreground",
                    "--ignore-not-found",
                    "--wait=true",
                    &timeout,
                ]
                .map(String::from)
                .to_vec(),
            );
        }
        for file in &play.apply {
            let path = scenarios_dir().join(file).display().to_string();
            runs.push(["apply", "-f", &path].map(String::from).to_vec());
        }
        for object in &play.rollout {
            let (ns, object) = split_namespace(object, &def.namespace);
            runs.push(
                ["rollout", "status", object, "-n", ns, &timeout]
                    .map(String::from)
                    .to_vec(),
            );
        }
        for args in runs {
            let shown = format!("kubectl {}", args.join(" "));
            writeln!(out, "    $ {shown}")?;
            step.ran.push(shown);
            let r = self.run("kubectl", &args, opts.step_timeout, None)?;
            print_output(out, &r.output)?;
            step.outcome = r.outcome();
            if step.outcome != Outcome::Done {
                return Ok(());
            }
        }
        if let Some(schema) = &play.schema {
            let pod = data::ready_pod_within(self, &def.namespace, &schema.selector)?;
            for script in &schema.scripts {
                let shown = format!(
                    "kubectl exec -i -n {} {pod} -c {} -- mysql -uroot {} < {script}",
                    def.namespace, schema.container, schema.database
                );
                writeln!(out, "    $ {shown}")?;
                step.ran.push(shown);
                let args: Vec<String> = [
                    "exec",
                    "-i",
                    "-n",
                    &def.namespace,
                    &pod,
                    "-c",
                    &schema.container,
                    "--",
                    "mysql",
                    "-uroot",
                    &schema.database,
                ]
                .map(String::from)
                .to_vec();
                let input = std::fs::read(workspace().join(script))
                    .with_context(|| format!("reading {script}"))?;
                let r = self.run_with_input("kubectl", &args, opts.step_timeout, &input)?;
                print_output(out, &r.output)?;
                step.outcome = r.outcome();
                if step.outcome != Outcome::Done {
                    return Ok(());
                }
            }
        }
        step.outcome = Outcome::Done;
        Ok(())
    }

    /// Runs a program with bytes on its standard input, to its end or `timeout`.
    fn run_with_input(
        &self,
        program: &str,
        args: &[String],
        timeout: Duration,
        input: &[u8],
    ) -> anyhow::Result<Ran> {
        let mut child = self
            .command(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let mut stdin = child.stdin.take().context("stdin")?;
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let readers = [
            reader(
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ),
            reader(
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ),
        ];
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                break kill(&mut child)?;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = writer.join();
        let mut output = String::new();
        for r in readers {
            output.push_str(&r.join().unwrap_or_default());
        }
        Ok(Ran {
            code: status.code(),
            output,
            killed: false,
            timed_out,
        })
    }

    /// `kubectl upgrade-verify verify` once the runbook has run, when the workspace has it.
    fn verify(&self, def: &Definition, out: &mut dyn Write) -> anyhow::Result<Verify> {
        if !self.has_plugin("verify") {
            if workspace().join("plugins/verify").exists() {
                writeln!(out, "verify: kubectl-upgrade-verify is not built")?;
                return Ok(Verify::Failed(
                    "kubectl-upgrade-verify is not built (cargo build --bins)".into(),
                ));
            }
            writeln!(
                out,
                "verify: not run, the workspace has no upgrade-verify plugin yet"
            )?;
            return Ok(Verify::NotInWorkspace);
        }
        let mut args: Vec<String> = ["upgrade-verify", "verify", "-n", &def.namespace]
            .map(String::from)
            .to_vec();
        args.extend(profile_args(def));
        args.extend(["--to".to_string(), def.to.clone()]);
        writeln!(out, "verify: kubectl {}", args.join(" "))?;
        let r = self.run("kubectl", &args, Duration::from_secs(300), None)?;
        print_output(out, &r.output)?;
        Ok(match r.outcome() {
            Outcome::Done => {
                writeln!(out, "    ok")?;
                Verify::Passed
            }
            Outcome::Failed(why) | Outcome::Refused(why) => {
                writeln!(out, "    FAILED: {why}")?;
                Verify::Failed(why)
            }
            Outcome::NotReached => Verify::NotRun,
        })
    }

    /// Runs a program to its end (or `timeout`); with `kill_after`, SIGKILLs it once it has
    /// sent that many changing requests to the API server (it is the only client meanwhile).
    fn run(
        &self,
        program: &str,
        args: &[String],
        timeout: Duration,
        kill_after: Option<usize>,
    ) -> anyhow::Result<Ran> {
        let mut child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let readers = [
            reader(
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ),
            reader(
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ),
        ];
        let faults = self.cluster.faults();
        let writes_before = faults.writes();
        // The request that reaches the count is held, so the plugin is surely still waiting
        // for it when it is killed: killed with a change request in flight.
        if let Some(limit) = kill_after {
            faults.hold_write(writes_before + limit as u64, HOLD);
        }
        let deadline = Instant::now() + timeout;
        let mut killed = false;
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if let Some(limit) = kill_after
                && faults.writes() - writes_before >= limit as u64
            {
                killed = true;
                let status = kill(&mut child)?;
                // The server finishes the request the client gave up on before anything else
                // runs, as a real API server does.
                let until = Instant::now() + HOLD * 2;
                while faults.holding() > 0 && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
                break status;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                break kill(&mut child)?;
            }
            std::thread::sleep(Duration::from_millis(if kill_after.is_some() {
                5
            } else {
                50
            }));
        };
        if kill_after.is_some() {
            faults.release_hold();
        }
        let mut output = String::new();
        for r in readers {
            output.push_str(&r.join().unwrap_or_default());
        }
        Ok(Ran {
            code: status.code(),
            output,
            killed,
            timed_out,
        })
    }
}

/// How long the request a plugin is killed on is held.
const HOLD: Duration = Duration::from_secs(2);

fn kill(child: &mut Child) -> anyhow::Result<std::process::ExitStatus> {
    child.kill()?;
    Ok(child.wait()?)
}

fn reader(stream: Option<Box<dyn Read + Send>>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut s) = stream {
            let _ = s.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// What one run of a program gave.
struct Ran {
    code: Option<i32>,
    output: String,
    killed: bool,
    timed_out: bool,
}

impl Ran {
    fn describe(&self) -> String {
        match (self.timed_out, self.code) {
            (true, _) => "timed out".into(),
            (false, Some(c)) => format!("exit {c}"),
            (false, None) => "killed by a signal".into(),
        }
    }

    fn outcome(&self) -> Outcome {
        if self.code == Some(0) && !self.timed_out {
            Outcome::Done
        } else {
            // The error line when the program printed one (clap prints hints after it), else
            // the last line.
            let line = self
                .output
                .lines()
                .find(|l| l.starts_with("error:"))
                .or_else(|| self.output.lines().rev().find(|l| !l.trim().is_empty()))
                .unwrap_or_default()
                .trim();
            Outcome::Failed(format!("{}: {line}", self.describe()))
        }
    }
}

fn print_output(out: &mut dyn Write, text: &str) -> anyhow::Result<()> {
    for line in text.lines() {
        writeln!(out, "    | {line}")?;
    }
    Ok(())
}

/// `--profile NAME`, or `--profile-file FILE` for a rehearsal's own profile.
fn profile_args(def: &Definition) -> Vec<String> {
    match &def.profile_file {
        Some(file) => vec!["--profile-file".into(), file_name(file)],
        None => vec!["--profile".into(), def.profile.clone()],
    }
}

/// `ns/kind/name` → (`ns`, `kind/name`); `kind/name` → (the default, `kind/name`).
fn split_namespace<'a>(object: &'a str, default: &'a str) -> (&'a str, &'a str) {
    match object.split('/').count() {
        3 => object.split_once('/').unwrap_or((default, object)),
        _ => (default, object),
    }
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Copies a file or a directory tree.
fn copy_into(from: &Path, to: &Path) -> anyhow::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_into(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_objects_split() {
        assert_eq!(
            split_namespace("sts/minio", "kubeflow"),
            ("kubeflow", "sts/minio")
        );
        assert_eq!(
            split_namespace("rok-system/sts/rok-operator", "rok"),
            ("rok-system", "sts/rok-operator")
        );
    }

    #[test]
    fn a_failed_run_names_its_error_line_before_any_hint() {
        let r = Ran {
            code: Some(2),
            output: "error: unrecognized subcommand 'mysql'\n\nUsage: x\n\nFor more information, try '--help'.\n".into(),
            killed: false,
            timed_out: false,
        };
        assert_eq!(
            r.outcome(),
            Outcome::Failed("exit 2: error: unrecognized subcommand 'mysql'".into())
        );
    }

    #[test]
    fn a_failed_run_names_its_last_line() {
        let r = Ran {
            code: Some(2),
            output: "plan\ncould not bind the claim\n\n".into(),
            killed: false,
            timed_out: false,
        };
        assert_eq!(
            r.outcome(),
            Outcome::Failed("exit 2: could not bind the claim".into())
        );
    }
}
