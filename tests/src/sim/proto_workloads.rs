//! Protobuf decoding of the workload kinds kubectl's typed clients create
//! (`kubectl create deployment|job`), driven by field tables that follow
//! k8s.io/api/{apps,batch,core}/v1/generated.proto for the fields those commands set. As on a
//! real server (proto → Go struct → JSON with `omitempty`), empty strings, `false` and zeros are
//! dropped, except for counts where zero means something.

use serde_json::{Map, Value, json};

use super::proto::{Field, fields, object_meta};

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    Meta,
    IntOrStr,
    Msg(&'static [Spec]),
    RepStr,
    RepMsg(&'static [Spec]),
    MapStr,
    MapQuantity,
}

type Spec = (u64, &'static str, Kind);

const REQUIREMENT: &[Spec] = &[
    (1, "key", Kind::Str),
    (2, "operator", Kind::Str),
    (3, "values", Kind::RepStr),
];
const LABEL_SELECTOR: &[Spec] = &[
    (1, "matchLabels", Kind::MapStr),
    (2, "matchExpressions", Kind::RepMsg(REQUIREMENT)),
];
const PORT: &[Spec] = &[
    (1, "name", Kind::Str),
    (2, "hostPort", Kind::Int),
    (3, "containerPort", Kind::Int),
    (4, "protocol", Kind::Str),
    (5, "hostIP", Kind::Str),
];
const ENV: &[Spec] = &[(1, "name", Kind::Str), (2, "value", Kind::Str)];
const RESOURCES: &[Spec] = &[
    (1, "limits", Kind::MapQuantity),
    (2, "requests", Kind::MapQuantity),
];
const CONTAINER: &[Spec] = &[
    (1, "name", Kind::Str),
    (2, "image", Kind::Str),
    (3, "command", Kind::RepStr),
    (4, "args", Kind::RepStr),
    (5, "workingDir", Kind::Str),
    (6, "ports", Kind::RepMsg(PORT)),
    (7, "env", Kind::RepMsg(ENV)),
    (8, "resources", Kind::Msg(RESOURCES)),
    (13, "terminationMessagePath", Kind::Str),
    (14, "imagePullPolicy", Kind::Str),
    (20, "terminationMessagePolicy", Kind::Str),
];
const POD_SPEC: &[Spec] = &[
    (2, "containers", Kind::RepMsg(CONTAINER)),
    (3, "restartPolicy", Kind::Str),
    (4, "terminationGracePeriodSeconds", Kind::Int),
    (5, "activeDeadlineSeconds", Kind::Int),
    (6, "dnsPolicy", Kind::Str),
    (7, "nodeSelector", Kind::MapStr),
    (8, "serviceAccountName", Kind::Str),
    (10, "nodeName", Kind::Str),
    (16, "hostname", Kind::Str),
    (17, "subdomain", Kind::Str),
    (19, "schedulerName", Kind::Str),
    (20, "initContainers", Kind::RepMsg(CONTAINER)),
];
const TEMPLATE: &[Spec] = &[
    (1, "metadata", Kind::Meta),
    (2, "spec", Kind::Msg(POD_SPEC)),
];
const ROLLING: &[Spec] = &[
    (1, "maxUnavailable", Kind::IntOrStr),
    (2, "maxSurge", Kind::IntOrStr),
];
const STRATEGY: &[Spec] = &[
    (1, "type", Kind::Str),
    (2, "rollingUpdate", Kind::Msg(ROLLING)),
];
const DEPLOYMENT_SPEC: &[Spec] = &[
    (1, "replicas", Kind::Int),
    (2, "selector", Kind::Msg(LABEL_SELECTOR)),
    (3, "template", Kind::Msg(TEMPLATE)),
    (4, "strategy", Kind::Msg(STRATEGY)),
    (5, "minReadySeconds", Kind::Int),
    (6, "revisionHistoryLimit", Kind::Int),
    (7, "paused", Kind::Bool),
    (9, "progressDeadlineSeconds", Kind::Int),
];
const JOB_SPEC: &[Spec] = &[
    (1, "parallelism", Kind::Int),
    (2, "completions", Kind::Int),
    (3, "activeDeadlineSeconds", Kind::Int),
    (4, "selector", Kind::Msg(LABEL_SELECTOR)),
    (5, "manualSelector", Kind::Bool),
    (6, "template", Kind::Msg(TEMPLATE)),
    (7, "backoffLimit", Kind::Int),
    (8, "ttlSecondsAfterFinished", Kind::Int),
    (9, "completionMode", Kind::Str),
    (10, "suspend", Kind::Bool),
];

/// Zero is meaningful for these (pointer fields in Go, sent only when set).
fn zero_kept(name: &str) -> bool {
    matches!(
        name,
        "replicas" | "parallelism" | "completions" | "backoffLimit" | "ttlSecondsAfterFinished"
    )
}

fn int_or_str(b: &[u8]) -> Value {
    let fs = fields(b).unwrap_or_default();
    let is_str = fs
        .iter()
        .any(|(n, f)| *n == 1 && matches!(f, Field::Varint(1)));
    for (n, f) in &fs {
        match (n, f) {
            (2, Field::Varint(v)) if !is_str => return json!(*v as i64),
            (3, Field::Bytes(x)) if is_str => return json!(String::from_utf8_lossy(x)),
            _ => {}
        }
    }
    if is_str { json!("") } else { json!(0) }
}

fn map_entry(b: &[u8], quantity: bool) -> (String, Value) {
    let mut k = String::new();
    let mut v = json!("");
    for (n, f) in fields(b).unwrap_or_default() {
        if let Field::Bytes(x) = f {
            match n {
                1 => k = String::from_utf8_lossy(x).into_owned(),
                2 if quantity => v = decode(x, &[(1, "string", Kind::Str)])["string"].clone(),
                2 => v = json!(String::from_utf8_lossy(x)),
                _ => {}
            }
        }
    }
    (k, v)
}

fn decode(buf: &[u8], spec: &[Spec]) -> Value {
    let mut out = Map::new();
    for (n, f) in fields(buf).unwrap_or_default() {
        let Some((_, name, kind)) = spec.iter().find(|(sn, _, _)| *sn == n) else {
            continue;
        };
        let name = name.to_string();
        match (kind, f) {
            (Kind::Str, Field::Bytes(x)) if !x.is_empty() => {
                _ = out.insert(name, json!(String::from_utf8_lossy(x)))
            }
            (Kind::Int, Field::Varint(v)) if v != 0 || zero_kept(&name) => {
                _ = out.insert(name, json!(v as i64))
            }
            (Kind::Bool, Field::Varint(v)) if v != 0 => _ = out.insert(name, json!(true)),
            (Kind::Meta, Field::Bytes(x)) => _ = out.insert(name, object_meta(x)),
            (Kind::IntOrStr, Field::Bytes(x)) => _ = out.insert(name, int_or_str(x)),
            (Kind::Msg(s), Field::Bytes(x)) => _ = out.insert(name, decode(x, s)),
            (Kind::RepStr, Field::Bytes(x)) => {
                push(&mut out, name, json!(String::from_utf8_lossy(x)))
            }
            (Kind::RepMsg(s), Field::Bytes(x)) => push(&mut out, name, decode(x, s)),
            (Kind::MapStr | Kind::MapQuantity, Field::Bytes(x)) => {
                let (k, v) = map_entry(x, matches!(kind, Kind::MapQuantity));
                if let Value::Object(m) = out.entry(name).or_insert_with(|| json!({})) {
                    m.insert(k, v);
                }
            }
            _ => {}
        }
    }
    Value::Object(out)
}

fn push(out: &mut Map<String, Value>, name: String, v: Value) {
    if let Value::Array(a) = out.entry(name).or_insert_with(|| json!([])) {
        a.push(v);
    }
}

/// The spec of a Deployment or Job body, or `None` for other kinds.
pub fn spec_of(kind: &str, raw_spec: &[u8]) -> Option<Value> {
    match kind {
        "Deployment" => Some(decode(raw_spec, DEPLOYMENT_SPEC)),
        "Job" => Some(decode(raw_spec, JOB_SPEC)),
        _ => None,
    }
}
