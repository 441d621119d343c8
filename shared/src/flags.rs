//! kubectl's connection flags and the client they build, so every plugin connects the way
//! `kubectl` itself would with the same flags — and never waits without a limit: connecting
//! has a default timeout, every ordinary request a default time limit (see [`crate::deadline`]),
//! and failed requests are retried within a bounded [`RetryBudget`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// How long to wait for a TCP (and TLS) connection to the API server, unless
/// `--request-timeout` is shorter.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default `--request-timeout`: kube-apiserver ends ordinary requests itself after 60 s
/// (its own `--request-timeout` default), and the suite's requests are small pages, scale
/// changes and patches that answer in milliseconds; a server silent for this long is not
/// going to answer.
pub const DEFAULT_REQUEST_TIMEOUT: &str = "30s";

/// How often and for how long a failed request is tried again: at most `attempts` tries in
/// all, pauses doubling from `first_pause`, and no new try once `total` has passed since the
/// first one started. A request that used up its whole time limit is not tried again: the
/// server had that long to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// Tries in all, the first one included.
    pub attempts: u32,
    /// The pause after the first failure; each later pause doubles.
    pub first_pause: Duration,
    /// No try starts later than this after the first.
    pub total: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            attempts: 6,
            first_pause: Duration::from_millis(200),
            total: Duration::from_secs(15),
        }
    }
}

impl RetryBudget {
    /// The pause before the next try after `tried` tries that took `elapsed` so far and
    /// ended in `err`, or `None` when the budget is spent or the error was a timeout. Whether
    /// the error is worth another try at all is the caller's call.
    pub fn next_pause(&self, tried: u32, elapsed: Duration, err: &kube::Error) -> Option<Duration> {
        if crate::deadline::timed_out(err) || tried >= self.attempts {
            return None;
        }
        let pause = self
            .first_pause
            .saturating_mul(2u32.saturating_pow(tried.saturating_sub(1)));
        (elapsed.saturating_add(pause) <= self.total).then_some(pause)
    }
}

/// `--kubeconfig`, `--context`, `--cluster`, `--user`, `-n/--namespace`, `--request-timeout`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeArgs {
    /// Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config, then the
    /// in-cluster service account).
    #[arg(long, value_name = "PATH", global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, value_name = "NAME", global = true)]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,
    /// The namespace to work in (default: the context's namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// How long to wait for the answer to a single request (`0` = no limit, `30s`, `1m`).
    /// Watches, exec sessions and followed logs are not limited.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_REQUEST_TIMEOUT, value_parser = parse_duration, global = true)]
    pub request_timeout: DurationArg,
}

/// `--dry-run[=none|client|server]` as kubectl spells it: a bare `--dry-run` is `client`.
/// `client` and `server` both print the plan and change nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRun {
    #[default]
    None,
    Client,
    Server,
}

impl DryRun {
    /// Whether this is a dry run (`client` or `server`).
    pub fn is_dry(self) -> bool {
        self != DryRun::None
    }
}

/// A parsed `--request-timeout` (`None` means no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurationArg(pub Option<Duration>);

/// Parses kubectl durations: a bare number of seconds or a number with `s`, `m` or `h`
/// (combinations like `1m30s` too).
pub fn parse_duration(text: &str) -> Result<DurationArg, String> {
    let bad = || {
        format!(
            "invalid duration {text:?}: use a number of seconds or units s, m, h (e.g. 30s, 1m)"
        )
    };
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(DurationArg((secs > 0).then(|| Duration::from_secs(secs))));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(bad());
    }
    Ok(DurationArg((total > 0).then(|| Duration::from_secs(total))))
}

impl KubeArgs {
    fn options(&self) -> KubeConfigOptions {
        KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        }
    }

    /// Builds the client configuration the way kubectl resolves it.
    pub async fn config(&self) -> anyhow::Result<kube::Config> {
        let mut config = if let Some(path) = &self.kubeconfig {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &self.options())
                .await
                .with_context(|| format!("cannot use kubeconfig {}", path.display()))?
        } else {
            match kube::Config::from_kubeconfig(&self.options()).await {
                Ok(config) => config,
                Err(file_err) => {
                    let flags_given =
                        self.context.is_some() || self.cluster.is_some() || self.user.is_some();
                    match kube::Config::incluster() {
                        Ok(config) if !flags_given => config,
                        _ => {
                            return Err(anyhow::Error::new(file_err).context(
                                "cannot load a kubeconfig ($KUBECONFIG or ~/.kube/config) and not running in a cluster; pass --kubeconfig",
                            ));
                        }
                    }
                }
            }
        };
        config.connect_timeout = Some(
            self.request_timeout
                .0
                .map_or(DEFAULT_CONNECT_TIMEOUT, |t| t.min(DEFAULT_CONNECT_TIMEOUT)),
        );
        // kube-rs retries 429, 503 and 504 answers on its own for minutes; retries are made
        // explicitly, within a RetryBudget, so an eviction a budget refuses comes back at once.
        config.default_retry = false;
        if let Some(ns) = &self.namespace {
            config.default_namespace = ns.clone();
        }
        Ok(config)
    }

    /// A client plus the namespace to work in (the flag, else the context's). Ordinary
    /// requests fail after `--request-timeout`.
    pub async fn client(&self) -> anyhow::Result<(kube::Client, String)> {
        let config = self.config().await?;
        let namespace = config.default_namespace.clone();
        let url = config.cluster_url.clone();
        let client = kube::client::ClientBuilder::try_from(config)
            .with_context(|| format!("cannot build a client for {url}"))?
            .with_layer(&crate::deadline::DeadlineLayer::new(self.request_timeout.0))
            .build();
        Ok((client, namespace))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kube: KubeArgs,
    }

    /// A kubeconfig for `server` in a temporary directory.
    fn kubeconfig(server: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\"}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: ns}}\ncurrent-context: x\n"
            ),
        )
        .unwrap();
        (dir, path)
    }

    /// A listener that accepts connections, reads what comes and never answers.
    fn silent_server() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let _ = std::io::copy(&mut stream, &mut std::io::sink());
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn by_default_connecting_and_every_request_have_a_limit() {
        let (_dir, path) = kubeconfig("http://127.0.0.1:9");
        let mut cli = Cli::parse_from(["x"]);
        assert_eq!(
            cli.kube.request_timeout,
            DurationArg(Some(Duration::from_secs(30)))
        );
        cli.kube.kubeconfig = Some(path);
        let config = cli.kube.config().await.unwrap();
        assert_eq!(config.connect_timeout, Some(DEFAULT_CONNECT_TIMEOUT));
        assert!(!config.default_retry, "retries are bounded by RetryBudget");
        cli.kube.request_timeout = DurationArg(Some(Duration::from_secs(2)));
        let config = cli.kube.config().await.unwrap();
        assert_eq!(config.connect_timeout, Some(Duration::from_secs(2)));
        cli.kube.request_timeout = DurationArg(None);
        let config = cli.kube.config().await.unwrap();
        assert_eq!(
            config.connect_timeout,
            Some(DEFAULT_CONNECT_TIMEOUT),
            "no request limit still connects within a limit"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_ends_the_request_at_its_limit() {
        let (_dir, path) = kubeconfig(&silent_server());
        let args = KubeArgs {
            kubeconfig: Some(path),
            request_timeout: DurationArg(Some(Duration::from_millis(800))),
            ..KubeArgs::default()
        };
        let (client, ns) = args.client().await.unwrap();
        assert_eq!(ns, "ns");
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, &ns);
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(20), api.list(&Default::default()))
            .await
            .expect("the request ends by itself");
        let err = result.unwrap_err();
        assert!(crate::deadline::timed_out(&err), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            crate::api::describe(&err).contains("no answer from the API server within 0.8s"),
            "{}",
            crate::api::describe(&err)
        );
        assert_eq!(
            RetryBudget::default().next_pause(1, started.elapsed(), &err),
            None,
            "a request that used its whole limit is not tried again"
        );
    }

    #[test]
    fn the_retry_budget_bounds_tries_and_time() {
        let budget = RetryBudget::default();
        let err = kube::Error::Api(Box::new(
            kube::core::Status::failure("x", "ServiceUnavailable").with_code(503),
        ));
        let ms = Duration::from_millis;
        assert_eq!(budget.next_pause(1, ms(10), &err), Some(ms(200)));
        assert_eq!(budget.next_pause(2, ms(300), &err), Some(ms(400)));
        assert_eq!(budget.next_pause(5, ms(4000), &err), Some(ms(3200)));
        assert_eq!(
            budget.next_pause(6, ms(8000), &err),
            None,
            "six tries in all"
        );
        assert_eq!(
            budget.next_pause(2, Duration::from_secs(15), &err),
            None,
            "no try starts after the total"
        );
    }

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(parse_duration("0"), Ok(DurationArg(None)));
        assert_eq!(
            parse_duration("30"),
            Ok(DurationArg(Some(Duration::from_secs(30))))
        );
        assert_eq!(
            parse_duration("30s"),
            Ok(DurationArg(Some(Duration::from_secs(30))))
        );
        assert_eq!(
            parse_duration("1m30s"),
            Ok(DurationArg(Some(Duration::from_secs(90))))
        );
        assert_eq!(
            parse_duration("2h"),
            Ok(DurationArg(Some(Duration::from_secs(7200))))
        );
        for bad in ["", "s", "1x", "1m3", "-1"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
