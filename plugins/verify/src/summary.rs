//! Summaries of data volumes (regular files and their bytes), read through a running pod that
//! mounts the claim: the volume is looked at where the application sees it, read-only, and
//! nothing is started for it. A volume no running pod mounts is left without a summary (the
//! baseline says so).
//!
//! The count runs `find MOUNT -xdev -type f` in the container (`-xdev`: other volumes mounted
//! below stay out) and sums sizes with `stat`, which GNU coreutils and busybox both have. A
//! read error fails the count; it is never taken as an empty directory. A `--deep` baseline's
//! volumes are counted by their digests instead (see [`crate::digest`]).

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use upgrade_shared::exec::{self, Command, Input};

use crate::baseline::VolumeSummary;
use crate::state::State;

/// The script: files and bytes under `$1`, printed as `FILES BYTES`. A file or directory it
/// cannot read makes it fail with find's message (an unreadable directory would otherwise count
/// as empty); `lost+found` at the root belongs to the file system and is left out, as the tree
/// digests leave it out.
pub const SCRIPT: &str = r#"cd -- "$1" && { find . -xdev \( -path ./lost+found -type d -prune \) -o -type f -exec stat -c %s {} +; echo "status $?"; } | awk '$1 == "status" {s = $2; next} {n++; b += $1} END {if (s != "0") exit 1; printf "%d %d\n", n, b}'"#;

/// Where a claim can be read: a running pod, its container and the mount path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub pod: String,
    pub container: String,
    pub path: String,
}

/// A running pod's container that mounts `claim` in `namespace`, if any.
pub fn mount_of(state: &State, namespace: &str, claim: &str) -> Option<Mount> {
    state
        .pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .find_map(|p| {
            let spec = p.spec.as_ref()?;
            let volume = spec.volumes.iter().flatten().find(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == claim)
            })?;
            spec.containers.iter().find_map(|c| {
                let m = c
                    .volume_mounts
                    .iter()
                    .flatten()
                    .find(|m| m.name == volume.name && m.sub_path.is_none())?;
                Some(Mount {
                    pod: p.metadata.name.clone().unwrap_or_default(),
                    container: c.name.clone(),
                    path: m.mount_path.clone(),
                })
            })
        })
}

/// Parses the script's `FILES BYTES` line.
pub fn parse(text: &str) -> Option<(u64, u64)> {
    let mut parts = text.split_whitespace();
    let files = parts.next()?.parse().ok()?;
    let bytes = parts.next()?.parse().ok()?;
    Some((files, bytes))
}

/// Reads the summary of one mount.
pub async fn read(
    client: &kube::Client,
    namespace: &str,
    mount: &Mount,
) -> anyhow::Result<VolumeSummary> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
        "kubectl-upgrade-verify".to_string(),
        mount.path.clone(),
    ];
    let cmd = Command::new(&mount.pod, Some(&mount.container), argv)
        .timeout(Some(std::time::Duration::from_secs(300)));
    let out = exec::capture(&pods, &cmd, Input::None, "counting the volume's files").await?;
    let text = String::from_utf8_lossy(&out);
    let (files, bytes) = parse(&text).ok_or_else(|| {
        anyhow::anyhow!(
            "pod/{} printed {:?} instead of a file count",
            mount.pod,
            text.trim()
        )
    })?;
    Ok(VolumeSummary {
        files,
        bytes,
        digest: None,
        pod: mount.pod.clone(),
    })
}

/// Summaries of the data claims a running pod mounts; the others are named in the gaps.
pub async fn read_all(
    client: &kube::Client,
    state: &State,
    claims: &[(String, String)],
) -> (Vec<((String, String), VolumeSummary)>, Vec<String>) {
    let mut found = Vec::new();
    let mut gaps = Vec::new();
    for (ns, claim) in claims {
        let Some(mount) = mount_of(state, ns, claim) else {
            gaps.push(format!(
                "the contents of pvc {ns}/{claim}: no running pod mounts it"
            ));
            continue;
        };
        match read(client, ns, &mount).await {
            Ok(s) => found.push(((ns.clone(), claim.clone()), s)),
            Err(e) => gaps.push(format!("the contents of pvc {ns}/{claim}: {e:#}")),
        }
    }
    (found, gaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs [`SCRIPT`] on `dir` as user nobody: (exit code, stdout, stderr).
    fn run_as_nobody(dir: &std::path::Path) -> (Option<i32>, String, String) {
        let out = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
            ])
            .arg(SCRIPT)
            .arg("summary")
            .arg(dir)
            .output()
            .expect("setpriv runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn the_script_counts_files_and_fails_on_a_directory_it_cannot_read() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let mode = |p: &std::path::Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
        };
        mode(root, 0o755);
        std::fs::write(root.join("a"), b"12345").expect("write");
        std::fs::create_dir(root.join("lost+found")).expect("mkdir");
        mode(&root.join("lost+found"), 0o700);
        std::fs::create_dir(root.join("d")).expect("mkdir");
        std::fs::write(root.join("d/b"), b"123").expect("write");
        mode(&root.join("d"), 0o755);
        let (code, out, err) = run_as_nobody(root);
        assert_eq!((code, out.as_str()), (Some(0), "2 8\n"), "{err}");
        // The application's user cannot read a directory: the count fails, naming it.
        mode(&root.join("d"), 0o700);
        let (code, out, err) = run_as_nobody(root);
        assert_ne!(code, Some(0), "{out}");
        assert!(
            err.contains("./d") && err.contains("Permission denied"),
            "{err}"
        );
        assert_eq!(out, "", "{err}");
    }

    #[test]
    fn the_count_line_parses() {
        assert_eq!(parse("12 34567\n"), Some((12, 34567)));
        assert_eq!(parse("0 0"), Some((0, 0)));
        assert_eq!(parse("find: not found"), None);
    }
}
