//! Following changes instead of polling: after a list, wait for the next change to what it
//! listed through a watch from the list's resourceVersion, as kubectl's `rollout status` and
//! `wait` do (client-go's `UntilWithSync`: list, then watch from that version). The caller
//! reads again after every change, so the watch only says *when* to look; a watch that cannot
//! be opened, or keeps ending, leaves the caller polling at its own pace.

use std::fmt::Debug;
use std::pin::Pin;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use kube::api::{Api, WatchEvent, WatchParams};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

type Events<K> = Pin<Box<dyn Stream<Item = kube::Result<WatchEvent<K>>> + Send>>;

/// The server ends a watch after this long (kube-apiserver picks 30 to 60 min without one);
/// it is opened again from the caller's newest version.
const WATCH_SECONDS: u32 = 290;

/// A watch kept open between reads, opened again from the newest version read when it ends.
pub struct Changes<K> {
    api: Api<K>,
    params: WatchParams,
    events: Option<Events<K>>,
    /// Watches in a row that ended without delivering a change.
    broken: u32,
}

impl<K> Changes<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    /// Follows every object `api` reaches.
    pub fn new(api: Api<K>) -> Self {
        Self {
            api,
            params: WatchParams::default().timeout(WATCH_SECONDS),
            events: None,
            broken: 0,
        }
    }

    /// Waits until an object changes after `version` (the resourceVersion of the caller's
    /// last list), for at most `within`. True when something changed (or the watch ended and
    /// the caller should read again), false when `within` passed. A watch that cannot be
    /// opened, or ends twice in a row with no change, waits out `within`, so a caller that
    /// reads again each time never spins.
    pub async fn next(&mut self, version: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let events = match self.events.as_mut() {
                Some(e) => e,
                None => {
                    match tokio::time::timeout_at(deadline, self.api.watch(&self.params, version))
                        .await
                    {
                        Ok(Ok(stream)) => self.events.insert(Box::pin(stream)),
                        Ok(Err(_)) => {
                            tokio::time::sleep_until(deadline).await;
                            return false;
                        }
                        Err(_) => return false,
                    }
                }
            };
            match tokio::time::timeout_at(deadline, events.next()).await {
                Err(_) => return false,
                Ok(Some(Ok(WatchEvent::Bookmark(_)))) => {}
                Ok(Some(Ok(
                    WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_),
                ))) => {
                    self.broken = 0;
                    // Take the changes that already arrived too: one read covers a burst
                    // (twenty pods deleted together) instead of one read per event.
                    loop {
                        match events.next().now_or_never() {
                            Some(Some(Ok(WatchEvent::Error(_)) | Err(_)) | None) => {
                                self.events = None;
                                break;
                            }
                            Some(Some(Ok(_))) => {}
                            None => break,
                        }
                    }
                    return true;
                }
                // An `ERROR` event (410 Expired: the version is older than the server keeps),
                // a broken stream, or the server ending the watch: read again, then watch from
                // the newer version.
                Ok(Some(Ok(WatchEvent::Error(_))) | Some(Err(_)) | None) => {
                    self.events = None;
                    self.broken += 1;
                    if self.broken > 1 {
                        tokio::time::sleep_until(deadline).await;
                    }
                    return true;
                }
            }
        }
    }
}
