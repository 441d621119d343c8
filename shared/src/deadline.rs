//! A time limit on every ordinary API request, headers and body together, so a server that
//! accepts a connection and never answers ends the command instead of hanging it.
//!
//! Long-running requests are left alone, as kube-apiserver itself leaves them out of its own
//! request timeout (`--request-timeout`, default 1m, applies to everything but the
//! `longRunningRequestCheck` requests: watches, exec, attach, port-forward, proxy and followed
//! logs). kube-rs's own `read_timeout` is not used for this because it would also cut an exec
//! session whose command is silent for a while.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower::{BoxError, Layer, Service};

/// The request got no complete answer in time.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the API server within {}s (--request-timeout)", limit.as_secs_f64())]
pub struct TimedOut {
    /// The limit that passed.
    pub limit: Duration,
}

/// True when a client error is this module's time limit running out.
pub fn timed_out(err: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<TimedOut>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// True for the requests kube-apiserver treats as long-running (its `longRunningRequestCheck`):
/// watches, followed logs, and exec, attach, port-forward and proxy connections.
pub fn long_running<B>(req: &Request<B>) -> bool {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or_default();
    let flag = |name: &str| {
        query
            .split('&')
            .any(|kv| kv == format!("{name}=true") || kv == format!("{name}=1"))
    };
    req.headers().contains_key(http::header::UPGRADE)
        || flag("watch")
        || flag("follow")
        || path.contains("/watch/")
        || ["/exec", "/attach", "/portforward", "/proxy"]
            .iter()
            .any(|end| path.ends_with(end))
        || path.contains("/proxy/")
}

/// Puts [`Deadline`] around a client's service stack.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    limit: Option<Duration>,
}

impl DeadlineLayer {
    /// A layer limiting ordinary requests to `limit` (`None`: no limit).
    pub fn new(limit: Option<Duration>) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

/// A service that fails ordinary requests whose response has not fully arrived in time.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Option<Duration>,
}

impl<S, ReqBody, B> Service<Request<ReqBody>> for Deadline<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Response = Response<DeadlineBody<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let limit = self.limit.filter(|_| !long_running(&req));
        let response = self.inner.call(req);
        Box::pin(async move {
            let Some(limit) = limit else {
                let res = response.await.map_err(Into::into)?;
                return Ok(res.map(|body| DeadlineBody {
                    inner: body,
                    sleep: None,
                    limit: Duration::ZERO,
                }));
            };
            let deadline = Instant::now() + limit;
            match tokio::time::timeout_at(deadline, response).await {
                Ok(res) => Ok(res.map_err(Into::into)?.map(|body| DeadlineBody {
                    inner: body,
                    sleep: Some(Box::pin(tokio::time::sleep_until(deadline))),
                    limit,
                })),
                Err(_) => Err(Box::new(TimedOut { limit }) as BoxError),
            }
        })
    }
}

/// A response body that fails once the request's deadline has passed.
pub struct DeadlineBody<B> {
    inner: B,
    sleep: Option<Pin<Box<Sleep>>>,
    limit: Duration,
}

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(sleep) = &mut this.sleep
            && sleep.as_mut().poll(cx).is_ready()
        {
            this.sleep = None;
            return Poll::Ready(Some(Err(Box::new(TimedOut { limit: this.limit }))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> Request<()> {
        Request::get(uri).body(()).unwrap_or_default()
    }

    #[test]
    fn long_running_requests_are_those_the_api_server_exempts() {
        for uri in [
            "/api/v1/namespaces/a/pods?watch=true&resourceVersion=1",
            "/api/v1/namespaces/a/pods?labelSelector=x&watch=1",
            "/api/v1/namespaces/a/pods/p/log?follow=true&container=c",
            "/api/v1/namespaces/a/pods/p/exec?command=ls&stdout=true",
            "/api/v1/namespaces/a/pods/p/attach?stdin=true",
            "/api/v1/namespaces/a/pods/p/portforward?ports=80",
            "/api/v1/namespaces/a/services/s/proxy/metrics",
            "/api/v1/watch/namespaces/a/pods",
        ] {
            assert!(long_running(&get(uri)), "{uri}");
        }
        for uri in [
            "/api/v1/namespaces/a/pods?limit=500",
            "/api/v1/namespaces/a/pods/p/log?container=c",
            "/apis/apps/v1/namespaces/a/deployments/d/scale",
            "/api/v1/namespaces/watchers/pods",
        ] {
            assert!(!long_running(&get(uri)), "{uri}");
        }
    }
}
