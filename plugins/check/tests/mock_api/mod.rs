//! A minimal Kubernetes API stand-in for live-mode tests: serves lists of the objects in a
//! fixture, one item per page for deployments (to exercise `continue`), and records requests.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct MockApi {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster: {{server: \"{server}\"}}\nusers:\n- name: mock\n  user: {{}}\ncontexts:\n- name: mock\n  context: {{cluster: mock, user: mock, namespace: default}}\ncurrent-context: mock\n"
    )
}

fn plural(kind: &str) -> String {
    format!("{}s", kind.to_lowercase())
}

impl MockApi {
    pub fn start(fixture: &Path) -> MockApi {
        let objects = upgrade_shared::yaml::read_objects(fixture).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (objects, log) = (objects.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &objects, &log));
            }
        });
        MockApi { port, requests }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Answers the requests of one keep-alive connection.
fn serve(mut stream: std::net::TcpStream, objects: &[serde_json::Value], log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        log.lock().unwrap().push(target.clone());
        let (status, body) = respond(objects, &target);
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(reply.as_bytes()).is_err() {
            break;
        }
    }
}

fn respond(objects: &[serde_json::Value], target: &str) -> (&'static str, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let resource = path.rsplit('/').next().unwrap_or_default();
    let namespace = path
        .split("/namespaces/")
        .nth(1)
        .and_then(|r| r.split('/').next());
    let kind_of = |o: &serde_json::Value| plural(o["kind"].as_str().unwrap_or_default());
    if ![
        "pods",
        "persistentvolumeclaims",
        "persistentvolumes",
        "deployments",
        "statefulsets",
        "daemonsets",
        "poddisruptionbudgets",
        "configmaps",
    ]
    .contains(&resource)
    {
        let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "the server could not find the requested resource"});
        return ("404 Not Found", status.to_string());
    }
    let items: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| kind_of(o) == resource)
        .filter(|o| {
            namespace.is_none_or(|ns| {
                o.pointer("/metadata/namespace").and_then(|n| n.as_str()) == Some(ns)
            })
        })
        .collect();
    let (items, next) = if resource == "deployments" {
        let page: usize = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("continue="))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let next = (page + 1 < items.len()).then(|| (page + 1).to_string());
        (items.into_iter().skip(page).take(1).collect(), next)
    } else {
        (items, None)
    };
    let mut metadata = serde_json::json!({"resourceVersion": "42"});
    if let Some(next) = next {
        metadata["continue"] = next.into();
    }
    let list = serde_json::json!({"kind": "List", "apiVersion": "v1", "metadata": metadata, "items": items});
    ("200 OK", list.to_string())
}
