//! `kubectl upgrade-migrate-pv copy` killed at several points and run again: the re-run knows
//! the migration pods as its own (label, name and journal), replaces them and finishes; the
//! owners it scaled down come back, no migration pod is left, and the copy is byte for byte.
//! Ctrl-C (SIGINT) stops a copy cleanly: pods removed, owners restored.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, text};

const NS: &str = "kubeflow";
const SOURCE: &str = "minio-data-minio-0";

/// Where a claim's provisioned volume keeps its files on this machine.
fn host_dir(c: &TestCluster, ns: &str, claim: &str) -> PathBuf {
    let pv = c.jsonpath(&["pvc", claim, "-n", ns], "{.spec.volumeName}");
    PathBuf::from(c.jsonpath(&["pv", &pv], "{.spec.hostPath.path}"))
}

/// Many small files and one large one, so a copy takes a while.
fn fill(dir: &Path) {
    for d in 0..10 {
        let sub = dir.join(format!("dir-{d}"));
        std::fs::create_dir_all(&sub).expect("mkdir");
        for f in 0..100 {
            std::fs::write(sub.join(format!("f-{f}")), format!("{d}/{f}\n").repeat(50))
                .expect("write");
        }
    }
    let big: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(dir.join("zz-large.bin"), big).expect("write");
}

/// Relative path, kind, size and content of every entry below `dir`.
fn listing(dir: &Path) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let meta = std::fs::symlink_metadata(&p).expect("stat");
            let rel = p
                .strip_prefix(dir)
                .expect("below")
                .to_string_lossy()
                .into_owned();
            if meta.is_dir() {
                stack.push(p);
                out.push((rel, 0, 0));
            } else {
                let bytes = std::fs::read(&p).expect("read");
                let sum = bytes
                    .iter()
                    .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)));
                out.push((rel, meta.len(), sum));
            }
        }
    }
    out.sort();
    out
}

fn copy_args<'a>(dest: &'a str, to_namespace: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec![
        "copy",
        SOURCE,
        dest,
        "-n",
        NS,
        "--create",
        "--quiesce",
        "--yes",
    ];
    if let Some(ns) = to_namespace {
        args.extend_from_slice(&["--to-namespace", ns]);
    }
    args
}

fn spawn(c: &TestCluster, args: &[&str]) -> Child {
    Command::new(upgrade_e2e::harness::plugin_binary("migrate-pv"))
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("plugin starts")
}

/// Polls `ready` until true; panics after a minute.
fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn migration_pods(c: &TestCluster) -> String {
    c.kubectl(&[
        "get",
        "pods",
        "-A",
        "-l",
        "app.kubernetes.io/component=migrate-pv",
        "-o",
        "name",
    ])
    .stdout
}

fn setup(to_namespace: Option<&str>) -> (TestCluster, PathBuf) {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    c.wait_for(
        &["pvc", SOURCE, "-n", NS],
        "{.status.phase}",
        "Bound",
        Duration::from_secs(60),
    );
    if let Some(ns) = to_namespace {
        c.kubectl(&["create", "namespace", ns]).ok();
    }
    let source = host_dir(&c, NS, SOURCE);
    fill(&source);
    (c, source)
}

/// Where a kill lands, by what can be seen of the copy.
#[derive(Clone, Copy, Debug)]
enum Point {
    /// The migration pod exists (it may not run yet).
    PodCreated,
    /// tar has written the first entries into DEST.
    DuringTar,
    /// Every byte is in DEST: the copy is verifying (its listing of DEST is held back until
    /// the kill).
    DuringVerification,
}

fn killed_and_run_again(point: Point, to_namespace: Option<&str>) {
    let (c, source) = setup(to_namespace);
    let dest_ns = to_namespace.unwrap_or(NS);
    let args = copy_args("kcopy", to_namespace);
    // The source is listed while it is copied, the destination once the copy ends: its listing
    // waits here until the plugin is killed, so the kill lands during verification.
    let (listing_started, started) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    if matches!(point, Point::DuringVerification) {
        c.guard
            .faults()
            .before_exec(&["tree-manifest", "/dest"], move || {
                let _ = listing_started.send(());
                let _ = released.recv_timeout(Duration::from_secs(60));
            });
    }
    let mut child = spawn(&c, &args);
    until(&format!("{point:?}"), || match point {
        Point::PodCreated => {
            c.kubectl(&["get", "pod", "migrate-pv-kcopy", "-n", dest_ns])
                .code
                == 0
        }
        Point::DuringTar | Point::DuringVerification => {
            let pv = c.jsonpath(&["pvc", "kcopy", "-n", dest_ns], "{.spec.volumeName}");
            if pv.is_empty() {
                return false;
            }
            let dest = PathBuf::from(c.jsonpath(&["pv", &pv], "{.spec.hostPath.path}"));
            match point {
                Point::DuringTar => std::fs::read_dir(&dest).is_ok_and(|mut d| d.next().is_some()),
                _ => {
                    started.try_recv().is_ok()
                        && std::fs::metadata(dest.join("zz-large.bin"))
                            .is_ok_and(|m| m.len() == 20_000_000)
                }
            }
        }
    });
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    drop(release);
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "0",
        "killed while the owner is scaled down ({point:?})"
    );
    let o = c.plugin("migrate-pv", &args);
    assert_eq!(o.status.code(), Some(0), "{point:?}: {}", text(&o));
    assert!(text(&o).contains("verified:"), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "1",
        "the owner is back ({point:?})"
    );
    until("the migration pods are gone", || {
        migration_pods(&c).trim().is_empty()
    });
    let dest = host_dir(&c, dest_ns, "kcopy");
    assert_eq!(
        listing(&dest),
        listing(&source),
        "{point:?}: the copy is identical"
    );
}

/// Issue 7, item 4.
#[test]
fn a_copy_killed_before_its_pod_runs_resumes() {
    killed_and_run_again(Point::PodCreated, None);
}

/// Issue 7, item 4.
#[test]
fn a_copy_killed_during_tar_resumes() {
    killed_and_run_again(Point::DuringTar, None);
}

/// Issue 7, item 4.
#[test]
fn a_copy_killed_during_verification_resumes() {
    killed_and_run_again(Point::DuringVerification, None);
}

/// Issue 7, item 4: across namespaces the source side's pod is recognised too.
#[test]
fn a_copy_across_namespaces_killed_during_tar_resumes() {
    killed_and_run_again(Point::DuringTar, Some("kubeflow-v17"));
}

/// Issue 7, item 4: Ctrl-C stops the copy, removes its pod and brings the owner back.
#[test]
fn ctrl_c_during_a_copy_restores_the_owner_and_removes_the_pod() {
    let (c, _) = setup(None);
    let child = spawn(&c, &copy_args("kcopy", None));
    until("the copy runs", || {
        c.jsonpath(&["pod", "migrate-pv-kcopy", "-n", NS], "{.status.phase}") == "Running"
    });
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let o = child.wait_with_output().expect("plugin ends");
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("interrupted"), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "1",
        "the owner is back"
    );
    assert!(migration_pods(&c).trim().is_empty(), "the pod is removed");
}
