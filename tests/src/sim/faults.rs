//! Fault injection for reliability tests: failing or delaying the next requests to a resource,
//! dropping open watches, cutting exec streams, and meddling with one exec: running something
//! (changing a volume's files) just before its command starts, or flipping a byte of what it
//! prints, as a broken network or disk could. Container kills live in the kubelet.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::Method;
use serde_json::Value;
use tokio::sync::watch;

use super::errors::ApiError;
use super::http::Target;

/// One injected fault.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Plural resource name (`pods`), or `*` for every resource.
    pub resource: String,
    /// Verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`), or any when `None`.
    pub verb: Option<String>,
    /// How many matching requests it still affects.
    pub remaining: u32,
    /// The HTTP status to fail with, or `None` to only delay.
    pub code: Option<u16>,
    /// Delay before answering (or failing).
    pub delay: Duration,
}

/// What is done to the next exec whose command has every one of `arguments` among its own.
struct ExecRule {
    arguments: Vec<String>,
    action: ExecAction,
}

enum ExecAction {
    /// Run this just before the command starts.
    Before(Box<dyn FnOnce() + Send>),
    /// Invert the byte at this offset of the command's stdout.
    FlipStdout(u64),
}

/// What the exec handler is to do to one command.
#[derive(Default)]
pub(crate) struct ExecMeddling {
    /// Run before the command starts.
    pub before: Vec<Box<dyn FnOnce() + Send>>,
    /// Offset of stdout's byte to invert.
    pub flip_stdout: Option<u64>,
}

/// The fault injector shared by the server.
pub struct Faults {
    exec_rules: Mutex<Vec<ExecRule>>,
    rules: Mutex<Vec<FaultRule>>,
    drops: watch::Sender<u64>,
    cuts: watch::Sender<u64>,
    writes: AtomicU64,
    hold: Mutex<Option<(u64, Duration)>>,
    holding: AtomicU64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            exec_rules: Mutex::new(Vec::new()),
            rules: Mutex::new(Vec::new()),
            drops: watch::channel(0).0,
            cuts: watch::channel(0).0,
            writes: AtomicU64::new(0),
            hold: Mutex::new(None),
            holding: AtomicU64::new(0),
        }
    }
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

fn verb_of(method: &Method, t: &Target) -> &'static str {
    match (method, t.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false)
            if t.query
                .get("watch")
                .is_some_and(|w| w == "1" || w == "true") =>
        {
            "watch"
        }
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "other",
    }
}

impl Faults {
    /// Adds a rule.
    pub fn add(&self, rule: FaultRule) {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rule);
    }

    /// Fails the next `n` requests to `resource` (any verb when `verb` is `None`) with `code`.
    pub fn fail_next(&self, resource: &str, verb: Option<&str>, n: u32, code: u16) {
        self.add(FaultRule {
            resource: resource.into(),
            verb: verb.map(String::from),
            remaining: n,
            code: Some(code),
            delay: Duration::ZERO,
        });
    }

    /// Delays the next `n` requests to `resource`.
    pub fn delay_next(&self, resource: &str, n: u32, delay: Duration) {
        self.add(FaultRule {
            resource: resource.into(),
            verb: None,
            remaining: n,
            code: None,
            delay,
        });
    }

    /// Ends every open watch stream.
    pub fn drop_watches(&self) {
        self.drops.send_modify(|n| *n += 1);
    }

    /// Cuts every open exec stream without a status.
    pub fn cut_exec_streams(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Runs `action` just before the next exec command that has each of `arguments` among
    /// its own (a script's `$0` and a path, for instance) starts. The command waits for it, so
    /// a test can hold a command back until it has done something else.
    pub fn before_exec(&self, arguments: &[&str], action: impl FnOnce() + Send + 'static) {
        self.add_exec(arguments, ExecAction::Before(Box::new(action)));
    }

    /// Inverts the byte at `offset` of the stdout of the next exec command that has each of
    /// `arguments` among its own.
    pub fn flip_exec_stdout(&self, arguments: &[&str], offset: u64) {
        self.add_exec(arguments, ExecAction::FlipStdout(offset));
    }

    fn add_exec(&self, arguments: &[&str], action: ExecAction) {
        self.exec_rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ExecRule {
                arguments: arguments.iter().map(|a| a.to_string()).collect(),
                action,
            });
    }

    /// Takes the rules that match `command`: each applies once.
    pub(crate) fn meddling(&self, command: &[String]) -> ExecMeddling {
        let mut rules = self.exec_rules.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = ExecMeddling::default();
        let (matching, kept): (Vec<_>, Vec<_>) = rules
            .drain(..)
            .partition(|r| r.arguments.iter().all(|want| command.contains(want)));
        *rules = kept;
        for rule in matching {
            match rule.action {
                ExecAction::Before(f) => out.before.push(f),
                ExecAction::FlipStdout(at) => out.flip_stdout = Some(at),
            }
        }
        out
    }

    pub(crate) fn watch_drops(&self) -> watch::Receiver<u64> {
        self.drops.subscribe()
    }

    pub(crate) fn exec_cuts(&self) -> watch::Receiver<u64> {
        self.cuts.subscribe()
    }

    /// How many requests that change something (create, update, patch, delete, and exec,
    /// which RBAC counts as `create pods/exec`) clients have sent so far: a test kills a client
    /// once it has started changing the cluster.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Holds the change request that makes [`Faults::writes`] reach `count` for `delay` before
    /// it is served, so a test can kill its client while the request is in flight.
    pub fn hold_write(&self, count: u64, delay: Duration) {
        *self.hold.lock().unwrap_or_else(|p| p.into_inner()) = Some((count, delay));
    }

    /// Drops a hold that no request reached.
    pub fn release_hold(&self) {
        *self.hold.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// How many held requests are still waiting to be served.
    pub fn holding(&self) -> u64 {
        self.holding.load(Ordering::SeqCst)
    }

    /// Applies the first matching rule to a request: sleeps, then maybe fails it.
    pub(crate) async fn before(&self, t: &Target, method: &Method) -> Option<ApiError> {
        let plural = t
            .resource
            .as_ref()
            .map(|r| r.plural.clone())
            .unwrap_or_default();
        let verb = verb_of(method, t);
        if matches!(verb, "create" | "update" | "patch" | "delete")
            || matches!(t.sub.as_deref(), Some("exec" | "attach"))
        {
            let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
            let held = {
                let mut hold = self.hold.lock().unwrap_or_else(|p| p.into_inner());
                match *hold {
                    Some((at, delay)) if at == n => {
                        *hold = None;
                        Some(delay)
                    }
                    _ => None,
                }
            };
            if let Some(delay) = held {
                self.holding.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                self.holding.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let rule = {
            let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
            let idx = rules.iter().position(|r| {
                (r.resource == "*" || r.resource == plural)
                    && r.verb.as_deref().is_none_or(|v| v == verb)
            })?;
            rules[idx].remaining = rules[idx].remaining.saturating_sub(1);
            let rule = rules[idx].clone();
            if rules[idx].remaining == 0 {
                rules.remove(idx);
            }
            rule
        };
        if !rule.delay.is_zero() {
            tokio::time::sleep(rule.delay).await;
        }
        let code = rule.code?;
        Some(ApiError::custom(
            code,
            reason_for(code),
            format!("injected fault: {verb} {plural} failed with {code}"),
            Value::Null,
        ))
    }
}
