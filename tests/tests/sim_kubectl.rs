//! Conformance of the simulated cluster through the real `kubectl`: one behaviour per test.

use std::time::Duration;

use upgrade_e2e::harness::TestCluster;

const WAIT: Duration = Duration::from_secs(30);

fn cluster() -> TestCluster {
    TestCluster::start(&[]).expect("cluster starts")
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: main
        image: busybox:1.36
        command: [sh, -c, 'echo started $HOSTNAME $(GREETING); exec sleep 1000']
        env: [{name: GREETING, value: hello}]
"#;

const STATEFULSET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: main, image: busybox:1.36, command: [sleep, "1000"]}]
"#;

#[test]
fn api_resources_lists_the_supported_kinds() {
    let c = cluster();
    let out = c.kubectl(&["api-resources", "-o", "name"]).ok();
    for r in [
        "pods",
        "persistentvolumeclaims",
        "persistentvolumes",
        "statefulsets.apps",
        "deployments.apps",
        "jobs.batch",
        "poddisruptionbudgets.policy",
        "storageclasses.storage.k8s.io",
        "customresourcedefinitions.apiextensions.k8s.io",
    ] {
        assert!(out.lines().any(|l| l == r), "{r} missing from:\n{out}");
    }
}

#[test]
fn get_of_a_missing_claim_is_not_found() {
    let c = cluster();
    let r = c.kubectl(&["get", "pvc", "x"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "Error from server (NotFound): persistentvolumeclaims \"x\" not found"
    );
}

#[test]
fn create_twice_is_already_exists() {
    let c = cluster();
    c.kubectl(&["create", "configmap", "cfg", "--from-literal=a=b"])
        .ok();
    let r = c.kubectl(&["create", "configmap", "cfg", "--from-literal=a=b"]);
    assert_eq!(
        r.stderr.trim(),
        "error: failed to create configmap: configmaps \"cfg\" already exists"
    );
}

#[test]
fn plain_get_prints_a_table() {
    let c = cluster();
    c.kubectl(&["create", "configmap", "cfg", "--from-literal=a=b"])
        .ok();
    let out = c.kubectl(&["get", "configmaps"]).ok();
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "DATA", "AGE"]);
    assert!(
        out.lines().nth(1).is_some_and(|l| l.starts_with("cfg ")),
        "{out}"
    );
}

#[test]
fn deployment_rolls_out_and_scales() {
    let c = cluster();
    c.apply(DEPLOYMENT);
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .ok();
    c.kubectl(&["scale", "deployment/web", "--replicas=3"]).ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .ok();
    let pods = c.get_json(&["pods", "-l", "app=web"]);
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(3));
}

#[test]
fn rollout_restart_replaces_every_pod() {
    let c = cluster();
    c.apply(DEPLOYMENT);
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .ok();
    let before = c
        .kubectl(&["get", "pods", "-l", "app=web", "-o", "name"])
        .ok();
    c.kubectl(&["rollout", "restart", "deployment/web"]).ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .ok();
    let deadline = std::time::Instant::now() + WAIT;
    let after = loop {
        let names = c
            .kubectl(&["get", "pods", "-l", "app=web", "-o", "name"])
            .ok();
        if names.lines().count() == 2 {
            break names;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "old pods never went: {names}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for p in before.lines() {
        assert!(!after.contains(p), "{p} survived the restart: {after}");
    }
}

#[test]
fn statefulset_spec_update_outside_the_allowed_fields_is_invalid() {
    let c = cluster();
    c.apply(STATEFULSET);
    let r = c.kubectl(&[
        "patch",
        "statefulset",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec":{"serviceName":"other"}}"#,
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "The StatefulSet \"db\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );
}

#[test]
fn exec_passes_stdin_streams_and_exit_code() {
    let c = cluster();
    c.apply(DEPLOYMENT);
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .ok();
    let r = c.kubectl(&[
        "exec",
        "deploy/web",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(r.code, 7);
    assert_eq!(r.stdout, "out\n");
    assert!(r.stderr.starts_with("err\n"), "{}", r.stderr);
    let echoed = c
        .kubectl_stdin(
            &["exec", "-i", "deploy/web", "--", "cat"],
            Some("through stdin\n"),
        )
        .ok();
    assert_eq!(echoed, "through stdin\n");
}

#[test]
fn logs_show_container_output_with_expanded_env() {
    let c = cluster();
    c.apply(DEPLOYMENT);
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .ok();
    let pod = c
        .kubectl(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .ok();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let out = c.kubectl(&["logs", &pod]).ok();
        if out == format!("started {pod} hello\n") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "logs: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn delete_then_wait_for_delete() {
    let c = cluster();
    c.apply(STATEFULSET);
    db_0_ready(&c);
    c.kubectl(&["delete", "statefulset", "db", "--wait=false"])
        .ok();
    c.kubectl(&["wait", "--for=delete", "pod/db-0", "--timeout=30s"])
        .ok();
}

#[test]
fn server_dry_run_persists_nothing() {
    let c = cluster();
    let out = c
        .kubectl(&[
            "create",
            "configmap",
            "cfg",
            "--from-literal=a=b",
            "--dry-run=server",
        ])
        .ok();
    assert_eq!(out.trim(), "configmap/cfg created (server dry run)");
    assert_eq!(c.kubectl(&["get", "configmap", "cfg"]).code, 1);
}

#[test]
fn custom_resources_are_served_with_status() {
    let c = cluster();
    c.apply(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#,
    );
    c.apply("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1}\n");
    c.kubectl(&[
        "patch",
        "wd",
        "w",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Ready"}}"#,
    ])
    .ok();
    c.kubectl(&[
        "patch",
        "wd",
        "w",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":2},"status":{"phase":"Ignored"}}"#,
    ])
    .ok();
    let w = c.get_json(&["widget", "w"]);
    assert_eq!(w["status"]["phase"], "Ready");
    assert_eq!(w["spec"]["size"], 2);
    assert_eq!(w["metadata"]["generation"], 2);
}

#[test]
fn server_side_apply_creates_then_merges() {
    let c = cluster();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '1'}\n";
    c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(cm))
        .ok();
    c.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {b: '2'}\n"),
    )
    .ok();
    let got = c.get_json(&["configmap", "cfg", "--show-managed-fields"]);
    assert_eq!(got["data"]["b"], "2");
    // The manager applied `a` before and leaves it out now: server-side apply removes it.
    assert!(got["data"]["a"].is_null(), "{got}");
    assert_eq!(
        got["metadata"]["managedFields"][0]["fieldsV1"]["f:data"],
        serde_json::json!({"f:b": {}})
    );
    assert_eq!(got["metadata"]["managedFields"][0]["manager"], "kubectl");
}

#[test]
fn strategic_merge_patch_merges_containers_by_name() {
    let c = cluster();
    c.apply(DEPLOYMENT);
    c.kubectl(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"busybox:1.37"}]}}}}"#,
    ])
    .ok();
    let d = c.get_json(&["deployment", "web"]);
    let containers = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1));
    assert_eq!(containers[0]["image"], "busybox:1.37");
    assert_eq!(containers[0]["command"][0], "sh");
}

#[test]
fn rollout_undo_returns_to_the_previous_replica_set() {
    let c = cluster();
    c.apply(DEPLOYMENT);
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .ok();
    let first = c
        .kubectl(&[
            "get",
            "rs",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .ok();
    c.kubectl(&["set", "image", "deployment/web", "main=busybox:1.37"])
        .ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .ok();
    c.kubectl(&["rollout", "undo", "deployment/web"]).ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .ok();
    let rs = c.get_json(&["rs", &first]);
    assert_eq!(rs["spec"]["replicas"], 2);
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
}

#[test]
fn drain_evicts_pods_from_the_node() {
    let c = cluster();
    c.apply(STATEFULSET);
    db_0_ready(&c);
    let out = c.kubectl(&["drain", "sim-node", "--timeout=30s"]).ok();
    assert!(out.contains("pod/db-0 evicted"), "{out}");
    let node = c.get_json(&["node", "sim-node"]);
    assert_eq!(node["spec"]["unschedulable"], true);
    // The replacement waits for a schedulable node.
    c.wait_for(
        &["pod", "db-0"],
        "{.status.conditions[?(@.type==\"PodScheduled\")].reason}",
        "Unschedulable",
        WAIT,
    );
    c.kubectl(&["uncordon", "sim-node"]).ok();
    db_0_ready(&c);
}

#[test]
fn create_deployment_and_job_from_kubectl_generators() {
    let c = cluster();
    c.kubectl(&[
        "create",
        "deployment",
        "nginx",
        "--image=nginx:1.25",
        "--replicas=2",
        "--port=80",
    ])
    .ok();
    c.kubectl(&["rollout", "status", "deployment/nginx", "--timeout=30s"])
        .ok();
    let d = c.get_json(&["deployment", "nginx"]);
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "nginx");
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    assert!(d["spec"]["template"]["metadata"].get("name").is_none());
    c.kubectl(&[
        "create",
        "job",
        "once",
        "--image=busybox",
        "--",
        "sh",
        "-c",
        "echo finished",
    ])
    .ok();
    c.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/once",
        "--timeout=30s",
    ])
    .ok();
    assert_eq!(c.kubectl(&["logs", "job/once"]).ok(), "finished\n");
}

#[test]
fn create_from_a_list_document() {
    let c = cluster();
    let list = r#"{"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}]}"#;
    c.kubectl_stdin(&["create", "-f", "-"], Some(list)).ok();
    assert_eq!(
        c.kubectl(&["get", "configmaps", "-o", "name"]).ok(),
        "configmap/a\nconfigmap/b\n"
    );
}

#[test]
fn orphaned_statefulset_pods_are_adopted_by_a_new_statefulset() {
    let c = cluster();
    c.apply(STATEFULSET);
    db_0_ready(&c);
    let pod_uid = c
        .kubectl(&["get", "pod", "db-0", "-o", "jsonpath={.metadata.uid}"])
        .ok();
    c.kubectl(&["delete", "sts", "db", "--cascade=orphan"]).ok();
    c.wait_for(&["pod", "db-0"], "{.metadata.ownerReferences}", "", WAIT);
    c.apply(STATEFULSET);
    let sts_uid = c
        .kubectl(&["get", "sts", "db", "-o", "jsonpath={.metadata.uid}"])
        .ok();
    c.wait_for(
        &["pod", "db-0"],
        "{.metadata.ownerReferences[0].uid}",
        &sts_uid,
        WAIT,
    );
    assert_eq!(
        c.kubectl(&["get", "pod", "db-0", "-o", "jsonpath={.metadata.uid}"])
            .ok(),
        pod_uid
    );
}

#[test]
fn controllers_record_events() {
    let c = cluster();
    c.apply(STATEFULSET);
    db_0_ready(&c);
    let reasons = c
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=db-0",
            "-o",
            "jsonpath={.items[*].reason}",
        ])
        .ok();
    assert!(
        reasons.contains("Scheduled") && reasons.contains("Started"),
        "{reasons}"
    );
    let described = c.kubectl(&["describe", "pod", "db-0"]).ok();
    assert!(
        described.contains("Successfully assigned default/db-0 to sim-node"),
        "{described}"
    );
}

#[test]
fn daemonset_runs_one_pod_and_rolls_it_on_template_change() {
    let c = cluster();
    let ds = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: main, image: busybox:1.36, command: [sleep, "1000"]}]
"#;
    c.apply(ds);
    c.kubectl(&["rollout", "status", "ds/agent", "--timeout=30s"])
        .ok();
    let first = c
        .kubectl(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .ok();
    c.kubectl(&["rollout", "restart", "ds/agent"]).ok();
    c.kubectl(&["rollout", "status", "ds/agent", "--timeout=30s"])
        .ok();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now = c
            .kubectl(&[
                "get",
                "pods",
                "-l",
                "app=agent",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ])
            .ok();
        if !now.is_empty() && !now.contains(' ') && now != first {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pod never replaced: {now}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn logs_follow_ends_when_the_container_exits() {
    let c = cluster();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: brief}\nspec:\n  restartPolicy: Never\n  containers: [{name: main, image: busybox, command: [sh, -c, 'echo one; sleep 1; echo two']}]\n");
    c.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/brief",
        "--timeout=30s",
    ])
    .ok();
    let out = c.kubectl(&["logs", "-f", "brief"]).ok();
    assert_eq!(out, "one\ntwo\n");
}

#[test]
fn statefulset_rollout_history_and_undo() {
    let c = cluster();
    c.apply(STATEFULSET);
    c.kubectl(&["rollout", "status", "sts/db", "--timeout=30s"])
        .ok();
    c.kubectl(&["set", "image", "sts/db", "main=busybox:1.37"])
        .ok();
    c.kubectl(&["rollout", "status", "sts/db", "--timeout=30s"])
        .ok();
    let history = c.kubectl(&["rollout", "history", "sts/db"]).ok();
    let revisions: Vec<&str> = history
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    c.kubectl(&["rollout", "undo", "sts/db"]).ok();
    c.kubectl(&["rollout", "status", "sts/db", "--timeout=30s"])
        .ok();
    c.wait_for(
        &["pod", "db-0"],
        "{.spec.containers[0].image}",
        "busybox:1.36",
        WAIT,
    );
}

/// Waits until the StatefulSet's pod exists and is Ready. (`kubectl wait pod/db-0` fails at
/// once with NotFound while the controller has not created the pod yet.)
fn db_0_ready(c: &TestCluster) {
    c.wait_for(
        &["pod", "db-0"],
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        "True",
        WAIT,
    );
}
