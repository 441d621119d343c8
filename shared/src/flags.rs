//! kubectl's connection flags and the client they build, so every plugin connects the way
//! `kubectl` itself would with the same flags.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

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
    /// How long to wait for a single request, as kubectl takes it (`0` = no limit, `30s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_duration, global = true)]
    pub request_timeout: DurationArg,
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
        if let Some(timeout) = self.request_timeout.0 {
            config.connect_timeout = Some(timeout);
            config.read_timeout = Some(timeout);
            config.write_timeout = Some(timeout);
        }
        if let Some(ns) = &self.namespace {
            config.default_namespace = ns.clone();
        }
        Ok(config)
    }

    /// A client plus the namespace to work in (the flag, else the context's).
    pub async fn client(&self) -> anyhow::Result<(kube::Client, String)> {
        let config = self.config().await?;
        let namespace = config.default_namespace.clone();
        let url = config.cluster_url.clone();
        let client = kube::Client::try_from(config)
            .with_context(|| format!("cannot build a client for {url}"))?;
        Ok((client, namespace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
