//! What the lab's routers have on this machine until their agents remove them: the
//! router namespaces (of any agent, whatever its namespace prefix: each name ends with
//! the router's id) and the processes running in them (IKE daemons). `lab down` deletes
//! the routers through the API, then watches the machine until all of it is gone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use vpnaas_agent::{command, l3, process};

/// The namespaces and daemons of some routers, as last seen.
pub struct RouterRemnants {
    router_ids: Vec<String>,
    /// Every process seen in one of the routers' namespaces: pid → (name, namespace). A
    /// daemon outlives its namespace's name if nobody stops it, so it is followed by pid.
    daemons: BTreeMap<u32, (String, String)>,
}

impl RouterRemnants {
    /// What the routers have on this machine now.
    pub async fn of(router_ids: Vec<String>) -> RouterRemnants {
        let mut remnants = RouterRemnants {
            router_ids,
            daemons: BTreeMap::new(),
        };
        remnants.namespaces_now().await;
        remnants
    }

    /// The routers' namespaces now; notes the processes running in them.
    async fn namespaces_now(&mut self) -> Vec<String> {
        let namespaces: Vec<String> = l3::namespaces_with_prefix("")
            .await
            .into_iter()
            .filter(|n| self.router_ids.iter().any(|id| n.ends_with(id.as_str())))
            .collect();
        for namespace in &namespaces {
            let pids = command::run("ip", &["netns", "pids", namespace])
                .await
                .unwrap_or_default();
            for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
                let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                self.daemons.insert(pid, (name, namespace.clone()));
            }
        }
        namespaces
    }

    /// What is left: namespaces, and processes still running as what they were.
    async fn left(&mut self) -> Vec<String> {
        let namespaces = self.namespaces_now().await;
        let daemons = self
            .daemons
            .iter()
            .filter(|(pid, (name, _))| process::alive(**pid) && process::is_named(**pid, name))
            .map(|(pid, (name, namespace))| format!("{name} (pid {pid}, in {namespace})"));
        namespaces
            .iter()
            .map(|n| format!("namespace {n}"))
            .chain(daemons)
            .collect()
    }

    /// Waits until the routers' agents have removed their namespaces and daemons; fails
    /// after `within`, naming what is left.
    pub async fn wait_gone(&mut self, within: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let left = self.left().await;
            if left.is_empty() {
                return Ok(());
            }
            if started.elapsed() > within {
                bail!(
                    "the agents did not remove the lab's routers within {within:?}; left: {}",
                    left.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
