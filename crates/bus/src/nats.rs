//! The bus over NATS (`--bus nats://…`): the same messages as in process. An agent's calls
//! are requests on `vpnaas.agent` answered by any server of the queue group
//! `vpnaas-servers` (so servers can come and go), hints are published on
//! `vpnaas.hints.<host in hex>`. Clients reconnect by themselves; hints published while
//! an agent was cut off are lost, so an agent that reconnects asks which routers it hosts
//! and takes a hint for each (it applies only differences, and reports).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use vpnaas_model::agent::{Heartbeat, RouterChanged, RouterState, StatusReport, TakeoverClaim};

use crate::{ControlPlane, Error, Notifier, Result};

const CALLS: &str = "vpnaas.agent";
const QUEUE: &str = "vpnaas-servers";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a reconnected agent asks for its routers before leaving it to the resync.
const CATCH_UP_ATTEMPTS: u32 = 50;

/// One call of an agent, as it travels.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
enum Call {
    Heartbeat {
        host: String,
        #[serde(default)]
        ha_address: Option<std::net::SocketAddr>,
    },
    HostedRouters {
        host: String,
    },
    RouterStates {
        host: String,
        router_ids: Vec<String>,
    },
    Reports {
        reports: Vec<StatusReport>,
    },
    Takeover {
        claim: TakeoverClaim,
    },
}

/// A server's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Ok(Value),
    Failed(String),
}

fn hints_subject(host: &str) -> String {
    let hex: String = host.bytes().map(|b| format!("{b:02x}")).collect();
    format!("vpnaas.hints.{hex}")
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

/// Connects to NATS; returns at once even when NATS is not up yet (the client keeps
/// trying), and reports every (re)connection on the returned channel.
pub async fn connect(url: &str) -> Result<(async_nats::Client, broadcast::Sender<()>)> {
    let (connected, _) = broadcast::channel(16);
    let events = connected.clone();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .request_timeout(Some(REQUEST_TIMEOUT))
        // The default backoff grows to seconds; a bus that comes back should be used at once.
        .reconnect_delay_callback(|attempts| Duration::from_millis(100 * attempts.min(10) as u64))
        .event_callback(move |event| {
            let events = events.clone();
            async move {
                tracing::info!(%event, "nats");
                if matches!(event, async_nats::Event::Connected) {
                    let _ = events.send(());
                }
            }
        })
        .connect(url)
        .await
        .map_err(unavailable)?;
    Ok((client, connected))
}

/// The agent's side: calls become requests any server answers.
pub struct NatsControlPlane {
    client: async_nats::Client,
    connected: broadcast::Sender<()>,
}

impl NatsControlPlane {
    /// An agent's bus on the NATS server(s) at `url`.
    pub async fn connect(url: &str) -> Result<Arc<Self>> {
        let (client, connected) = connect(url).await?;
        Ok(Arc::new(NatsControlPlane { client, connected }))
    }

    async fn call(&self, call: Call) -> Result<Value> {
        let payload = serde_json::to_vec(&call).map_err(unavailable)?;
        let message = self
            .client
            .request(CALLS, payload.into())
            .await
            .map_err(unavailable)?;
        match serde_json::from_slice::<Reply>(&message.payload).map_err(unavailable)? {
            Reply::Ok(value) => Ok(value),
            Reply::Failed(reason) => Err(Error::Unavailable(reason)),
        }
    }

    /// The hints for `host`, and after every reconnection one per router it hosts.
    pub fn hints(self: &Arc<Self>, host: &str) -> broadcast::Receiver<RouterChanged> {
        let (sender, receiver) = broadcast::channel(1024);
        let (me, host) = (self.clone(), host.to_string());
        let mut reconnected = self.connected.subscribe();
        tokio::spawn(async move {
            let Ok(mut hints) = me.client.subscribe(hints_subject(&host)).await else {
                tracing::error!(%host, "cannot subscribe to hints");
                return;
            };
            loop {
                tokio::select! {
                    Some(message) = hints.next() => {
                        if let Ok(hint) = serde_json::from_slice::<RouterChanged>(&message.payload)
                            && sender.send(hint).is_err()
                        {
                            return;
                        }
                    }
                    Ok(()) = reconnected.recv() => me.catch_up(&host, &sender).await,
                    else => return,
                }
            }
        });
        receiver
    }

    /// Asks which routers the host has (retrying: the servers reconnect at the same time
    /// and may not be answering yet) and sends a hint for each.
    async fn catch_up(&self, host: &str, sender: &broadcast::Sender<RouterChanged>) {
        for attempt in 1..=CATCH_UP_ATTEMPTS {
            match self.hosted_routers(host).await {
                Ok(routers) => {
                    for router_id in routers {
                        let _ = sender.send(RouterChanged {
                            router_id,
                            revision: 0,
                        });
                    }
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, attempt, "no server answers yet after reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        tracing::warn!("no server answered after reconnecting; the periodic resync will catch up");
    }
}

#[async_trait]
impl ControlPlane for NatsControlPlane {
    async fn beat(&self, beat: &Heartbeat) -> Result<()> {
        let call = Call::Heartbeat {
            host: beat.host.clone(),
            ha_address: beat.ha_address,
        };
        self.call(call).await.map(|_| ())
    }

    async fn hosted_routers(&self, host: &str) -> Result<Vec<String>> {
        let value = self.call(Call::HostedRouters { host: host.into() }).await?;
        serde_json::from_value(value).map_err(unavailable)
    }

    async fn router_states(&self, host: &str, router_ids: &[String]) -> Result<Vec<RouterState>> {
        let value = self
            .call(Call::RouterStates {
                host: host.into(),
                router_ids: router_ids.to_vec(),
            })
            .await?;
        serde_json::from_value(value).map_err(unavailable)
    }

    async fn reports(&self, reports: Vec<StatusReport>) -> Result<()> {
        self.call(Call::Reports { reports }).await.map(|_| ())
    }

    async fn claim(&self, claim: &TakeoverClaim) -> Result<Vec<String>> {
        let value = self
            .call(Call::Takeover {
                claim: claim.clone(),
            })
            .await?;
        serde_json::from_value(value).map_err(unavailable)
    }
}

/// The server's side of hints: published for the host's agent, wherever it runs.
pub struct NatsNotifier {
    client: async_nats::Client,
}

impl NatsNotifier {
    /// Hints over `client`.
    pub fn new(client: async_nats::Client) -> Self {
        NatsNotifier { client }
    }
}

impl Notifier for NatsNotifier {
    fn router_changed(&self, host: &str, event: RouterChanged) {
        let (client, subject) = (self.client.clone(), hints_subject(host));
        tokio::spawn(async move {
            let Ok(payload) = serde_json::to_vec(&event) else {
                return;
            };
            // A hint NATS cannot take is healed by the agent's catch-up or resync.
            if let Err(error) = client.publish(subject, payload.into()).await {
                tracing::warn!(%error, "hint not published");
            }
        });
    }

    fn subscribe(&self, host: &str) -> broadcast::Receiver<RouterChanged> {
        let (sender, receiver) = broadcast::channel(1024);
        let (client, subject) = (self.client.clone(), hints_subject(host));
        tokio::spawn(async move {
            let Ok(mut hints) = client.subscribe(subject).await else {
                return;
            };
            while let Some(message) = hints.next().await {
                if let Ok(hint) = serde_json::from_slice::<RouterChanged>(&message.payload)
                    && sender.send(hint).is_err()
                {
                    return;
                }
            }
        });
        receiver
    }
}

/// Answers agents' calls on `client` with `control` (the server's own control plane), as
/// one member of the servers' queue group.
pub async fn serve(
    client: async_nats::Client,
    control: Arc<dyn ControlPlane>,
) -> Result<JoinHandle<()>> {
    let mut calls = client
        .queue_subscribe(CALLS, QUEUE.to_string())
        .await
        .map_err(unavailable)?;
    Ok(tokio::spawn(async move {
        while let Some(message) = calls.next().await {
            let (client, control) = (client.clone(), control.clone());
            tokio::spawn(async move {
                let Some(reply_to) = message.reply else {
                    return;
                };
                let reply = match serde_json::from_slice::<Call>(&message.payload) {
                    Ok(call) => answer(control.as_ref(), call).await,
                    Err(error) => Reply::Failed(format!("malformed call: {error}")),
                };
                let Ok(payload) = serde_json::to_vec(&reply) else {
                    return;
                };
                if let Err(error) = client.publish(reply_to, payload.into()).await {
                    tracing::warn!(%error, "reply not sent");
                }
            });
        }
    }))
}

async fn answer(control: &dyn ControlPlane, call: Call) -> Reply {
    let result = match call {
        Call::Heartbeat { host, ha_address } => control
            .beat(&Heartbeat { host, ha_address })
            .await
            .map(|()| Value::Null),
        Call::HostedRouters { host } => control
            .hosted_routers(&host)
            .await
            .and_then(|r| serde_json::to_value(r).map_err(unavailable)),
        Call::RouterStates { host, router_ids } => control
            .router_states(&host, &router_ids)
            .await
            .and_then(|s| serde_json::to_value(s).map_err(unavailable)),
        Call::Reports { reports } => control.reports(reports).await.map(|()| Value::Null),
        Call::Takeover { claim } => control
            .claim(&claim)
            .await
            .and_then(|granted| serde_json::to_value(granted).map_err(unavailable)),
    };
    match result {
        Ok(value) => Reply::Ok(value),
        Err(error) => Reply::Failed(error.to_string()),
    }
}
