//! A driver without daemons, for simulating many routers on one machine: every enabled
//! connection "comes up" `delay` after the driver first sees it (as a real tunnel would
//! after its IKE exchange) and stays up until it changes or goes. Never used for a
//! tenant's router unless the agent runs with `fake_tunnel_delay_ms` set.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use vpnaas_model::agent::{ConnectionSpec, RouterState};
use vpnaas_model::enums::{Status, StatusReason};
use vpnaas_model::site_connection::Traffic;

use crate::Result;
use crate::driver::IkeDriver;
use crate::status::{ConnectionState, Observed};

/// A router's fake tunnels: connection id → (spec, when it was loaded).
type Tunnels = HashMap<String, (ConnectionSpec, Instant)>;

/// In-memory tunnels per router.
pub struct FakeDriver {
    delay: Duration,
    wake: mpsc::UnboundedSender<String>,
    routers: Mutex<HashMap<String, Tunnels>>,
}

impl FakeDriver {
    /// Tunnels come up `delay` after they are loaded; `wake` is told when they do.
    pub fn new(delay: Duration, wake: mpsc::UnboundedSender<String>) -> Self {
        FakeDriver {
            delay,
            wake,
            routers: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl IkeDriver for FakeDriver {
    async fn ensure(&self, _namespace: &str, state: &RouterState) -> Result<()> {
        let mut routers = self.routers.lock().await;
        let loaded = routers.entry(state.router_id.clone()).or_default();
        let wanted: HashMap<&str, &ConnectionSpec> = state
            .connections
            .iter()
            .filter(|c| c.enabled)
            .map(|c| (c.id.as_str(), c))
            .collect();
        loaded.retain(|id, (spec, _)| wanted.get(id.as_str()).is_some_and(|w| *w == spec));
        let mut added = false;
        for (id, spec) in wanted {
            if !loaded.contains_key(id) {
                loaded.insert(id.to_string(), (spec.clone(), Instant::now()));
                added = true;
            }
        }
        if added {
            let (wake, router, delay) = (self.wake.clone(), state.router_id.clone(), self.delay);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = wake.send(router);
            });
        }
        if loaded.is_empty() {
            routers.remove(&state.router_id);
        }
        Ok(())
    }

    async fn remove(&self, router_id: &str) -> Result<()> {
        self.routers.lock().await.remove(router_id);
        Ok(())
    }

    async fn observe(&self, router_id: &str) -> Observed {
        let routers = self.routers.lock().await;
        let Some(loaded) = routers.get(router_id) else {
            return Observed::default();
        };
        let connections = loaded
            .iter()
            .map(|(id, (spec, since))| {
                let up = since.elapsed() >= self.delay;
                let state = ConnectionState {
                    status: if up { Status::Active } else { Status::Down },
                    reason: if up {
                        StatusReason::Established
                    } else {
                        StatusReason::Connecting
                    },
                    detail: String::new(),
                    traffic: up.then(Traffic::default),
                    applied: spec.generations,
                };
                (id.clone(), state)
            })
            .collect();
        Observed {
            daemon_running: true,
            connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::connection;

    fn state(connections: serde_json::Value) -> RouterState {
        serde_json::from_value(serde_json::json!({
            "router_id": "r", "revision": 1, "admin_state_up": true, "gateway": [], "enable_snat": false,
            "interfaces": [], "services": [], "connections": connections,
        }))
        .expect("state")
    }

    #[tokio::test]
    async fn tunnels_come_up_after_the_delay_and_a_change_starts_one_again() {
        let (wake, mut woken) = mpsc::unbounded_channel();
        let driver = FakeDriver::new(Duration::from_millis(200), wake);
        let status = |observed: &Observed, id: &str| observed.connections[id].status;
        driver
            .ensure(
                "ns",
                &state(serde_json::json!([
                    connection("a", 1500),
                    connection("b", 1500)
                ])),
            )
            .await
            .expect("ensure");
        assert_eq!(status(&driver.observe("r").await, "a"), Status::Down);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            woken.recv().await.as_deref(),
            Some("r"),
            "the agent is woken"
        );
        let observed = driver.observe("r").await;
        assert_eq!(
            (status(&observed, "a"), status(&observed, "b")),
            (Status::Active, Status::Active)
        );
        driver
            .ensure(
                "ns",
                &state(serde_json::json!([
                    connection("a", 1400),
                    connection("b", 1500)
                ])),
            )
            .await
            .expect("change a");
        let observed = driver.observe("r").await;
        assert_eq!(
            (status(&observed, "a"), status(&observed, "b")),
            (Status::Down, Status::Active),
            "only the changed tunnel starts again"
        );
        driver.remove("r").await.expect("remove");
        assert!(!driver.observe("r").await.daemon_running);
    }
}
