//! The restart backoff of a daemon that keeps dying: restarted at once, then after 0.5 s,
//! 1 s, 2 s … up to 30 s while it keeps dying; a minute of health resets it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A daemon that ran this long is healthy again: its next restart is immediate.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// Longest wait between restarts of a daemon that keeps dying.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// The first wait after a crash that follows a recent start.
const FIRST_DELAY: Duration = Duration::from_millis(500);

#[derive(Clone, Copy)]
struct Starts {
    last: Instant,
    delay: Duration,
}

/// Restart history per router.
#[derive(Default)]
pub struct Backoff(Mutex<HashMap<String, Starts>>);

impl Backoff {
    /// After a crash: how long to wait before starting again (`None`: now).
    fn wait(&self, router_id: &str) -> Option<Duration> {
        let starts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = starts.get(router_id)?;
        let wait_until = entry.last + entry.delay;
        let now = Instant::now();
        (wait_until > now).then(|| wait_until - now)
    }

    /// Before (re)starting a router's daemon (`crashed`: it died on its own): `Err(wait)`
    /// while its backoff runs, after which `wake` is told the router's id; otherwise the
    /// start is recorded (and a restart after a crash counted).
    pub fn may_start(
        &self,
        router_id: &str,
        crashed: bool,
        wake: &tokio::sync::mpsc::UnboundedSender<String>,
        metrics: &crate::Metrics,
    ) -> Result<(), Duration> {
        if let Some(wait) = crashed.then(|| self.wait(router_id)).flatten() {
            let (wake, router) = (wake.clone(), router_id.to_string());
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let _ = wake.send(router);
            });
            return Err(wait);
        }
        self.started(router_id, crashed);
        if crashed {
            metrics.daemon_restarted();
        }
        Ok(())
    }

    /// Records a start. After a crash the next delay doubles unless the daemon had run for
    /// a minute; a start that follows no crash resets it.
    fn started(&self, router_id: &str, after_crash: bool) {
        let mut starts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let delay = match starts.get(router_id) {
            Some(last)
                if after_crash && now.saturating_duration_since(last.last) < HEALTHY_AFTER =>
            {
                (last.delay * 2).clamp(FIRST_DELAY, MAX_RESTART_DELAY)
            }
            _ => FIRST_DELAY,
        };
        starts.insert(router_id.to_string(), Starts { last: now, delay });
    }
}
