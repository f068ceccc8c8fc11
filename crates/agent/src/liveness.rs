//! Sub-second liveness between the agents of HA routers, on a UDP socket of the agent's
//! own (`[ha] listen`), in a task of its own so that no reconcile ever delays an answer.
//! Every agent answers probes there (it tells the server the address in its
//! heartbeats). A standby probes each distinct active agent of its routers every
//! `probe_interval_ms`; when one has not answered for `dead_time_ms`, it claims that
//! agent's routers from the server, each under the lease epoch its desired state names,
//! and reconciles at once those granted. The server decides (docs/scale-out.md); the
//! heartbeat path stays the fallback.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use vpnaas_bus::ControlPlane;
use vpnaas_model::agent::{HaPeer, LeaseClaim, Probe, TakeoverClaim};

use crate::config::HaLiveness;

/// What a standby watches of one router: its active agent and the lease epoch of the
/// standby's desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// The active agent and its liveness address.
    pub peer: HaPeer,
    /// The epoch to claim under.
    pub lease_epoch: u64,
}

/// The routers a standby watches, by id.
pub type Watched = HashMap<String, Watch>;

/// Answers older than this many probes to the same agent do not count.
const NONCE_WINDOW: u64 = 64;

/// Largest datagram read (probes are a few dozen bytes).
const DATAGRAM: usize = 512;

/// What the standby heard of one active agent.
#[derive(Debug)]
struct Heard {
    /// Its last answer, or when the watch began (a new watch gets a full dead time).
    at: Instant,
    /// The nonce of the last probe sent to it.
    asked: u64,
}

/// The decisions of liveness, on a clock passed in (tests drive it by hand): whom to
/// probe, which answers count, which routers to claim.
#[derive(Debug)]
pub struct Tracker {
    dead_time: Duration,
    interval: Duration,
    peers: HashMap<HaPeer, Heard>,
    /// Routers claimed, with the epoch they were claimed under: not claimed again under it.
    claimed: HashSet<(String, u64)>,
    next_nonce: u64,
    last_tick: Option<Instant>,
}

impl Tracker {
    /// A tracker claiming after `dead_time` of silence, ticking every `interval`; nonces
    /// start at `first_nonce` (random, so a restarted agent counts no answer meant for
    /// its former self).
    pub fn new(dead_time: Duration, interval: Duration, first_nonce: u64) -> Tracker {
        Tracker {
            dead_time,
            interval,
            peers: HashMap::new(),
            claimed: HashSet::new(),
            next_nonce: first_nonce,
            last_tick: None,
        }
    }

    /// One tick at `now`: follows the watch list (a new active agent is given a full dead
    /// time, one no longer watched is forgotten), and returns the probes to send and the
    /// claims now due. A tick much later than its period means this agent itself did not
    /// run (frozen, starved): nobody is judged on a silence it could not have heard.
    pub fn tick(
        &mut self,
        watched: &Watched,
        now: Instant,
    ) -> (Vec<(HaPeer, u64)>, Vec<TakeoverClaim>) {
        let stalled = self
            .last_tick
            .is_some_and(|last| now.saturating_duration_since(last) > self.interval * 3);
        self.last_tick = Some(now);
        let wanted: HashSet<&HaPeer> = watched.values().map(|w| &w.peer).collect();
        self.peers.retain(|peer, _| wanted.contains(peer));
        for peer in wanted {
            let heard = self
                .peers
                .entry(peer.clone())
                .or_insert(Heard { at: now, asked: 0 });
            if stalled {
                heard.at = now;
            }
        }
        self.claimed
            .retain(|(router, epoch)| watched.get(router).is_some_and(|w| w.lease_epoch == *epoch));
        let claims = self.due(watched, now);
        let probes = self
            .peers
            .iter_mut()
            .map(|(peer, heard)| {
                self.next_nonce = self.next_nonce.wrapping_add(1);
                heard.asked = self.next_nonce;
                (peer.clone(), self.next_nonce)
            })
            .collect();
        (probes, claims)
    }

    /// An answer from `from`: it counts when it comes from the address of an agent of
    /// that host, to one of the recent probes sent there.
    pub fn answered(&mut self, from: SocketAddr, host: &str, nonce: u64, now: Instant) {
        let peer = HaPeer {
            host: host.to_string(),
            address: from,
        };
        if let Some(heard) = self.peers.get_mut(&peer)
            && heard.asked.wrapping_sub(nonce) < NONCE_WINDOW
        {
            heard.at = now;
        }
    }

    /// The routers of each agent silent for the dead time, not yet claimed under their
    /// epoch, one claim per silent agent.
    fn due(&mut self, watched: &Watched, now: Instant) -> Vec<TakeoverClaim> {
        let mut claims: HashMap<&str, Vec<LeaseClaim>> = HashMap::new();
        for (router_id, watch) in watched {
            let silent = self
                .peers
                .get(&watch.peer)
                .is_some_and(|heard| now.saturating_duration_since(heard.at) >= self.dead_time);
            if silent && self.claimed.insert((router_id.clone(), watch.lease_epoch)) {
                claims
                    .entry(&watch.peer.host)
                    .or_default()
                    .push(LeaseClaim {
                        router_id: router_id.clone(),
                        lease_epoch: watch.lease_epoch,
                    });
            }
        }
        claims
            .into_iter()
            .map(|(silent_host, mut routers)| {
                routers.sort_by(|a, b| a.router_id.cmp(&b.router_id));
                TakeoverClaim {
                    host: String::new(),
                    silent_host: silent_host.to_string(),
                    routers,
                }
            })
            .collect()
    }
}

/// The liveness task; it stops when this is dropped.
pub struct Liveness(tokio::task::JoinHandle<()>);

impl Drop for Liveness {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds the liveness socket; its address, as the server is told it.
pub async fn bind(config: &HaLiveness) -> std::io::Result<Option<UdpSocket>> {
    let Some(listen) = config.listen else {
        return Ok(None);
    };
    if listen.ip().is_unspecified() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "ha listen needs the address other agents reach this host at, not a wildcard",
        ));
    }
    UdpSocket::bind(listen).await.map(Some)
}

/// Where the task sends what it needs from the rest of the agent.
pub struct Links {
    /// The agent's host.
    pub host: String,
    /// The server.
    pub control: Arc<dyn ControlPlane>,
    /// The routers this agent is standby of.
    pub watched: watch::Receiver<Watched>,
    /// Routers whose lease was granted: the agent reconciles them at once.
    pub granted: mpsc::UnboundedSender<Vec<String>>,
}

impl Liveness {
    /// Answers probes on `socket` and, as a standby, probes and claims.
    pub fn start(socket: UdpSocket, config: &HaLiveness, links: Links) -> Liveness {
        let tracker = Tracker::new(config.dead_time(), config.interval(), random_nonce());
        let interval = config.interval();
        Liveness(tokio::spawn(run(socket, tracker, interval, links)))
    }
}

fn random_nonce() -> u64 {
    let mut bytes = [0u8; 8];
    // A fixed start only weakens the check against a restarted agent's stale answers.
    let _ = openssl::rand::rand_bytes(&mut bytes);
    u64::from_le_bytes(bytes)
}

async fn run(socket: UdpSocket, mut tracker: Tracker, interval: Duration, links: Links) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buffer = [0u8; DATAGRAM];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buffer) => match received {
                Ok((len, from)) => on_datagram(&socket, &mut tracker, &links.host, &buffer[..len], from).await,
                Err(error) => tracing::debug!(%error, "liveness socket"),
            },
            _ = tick.tick() => {
                let watched = links.watched.borrow().clone();
                let (probes, claims) = tracker.tick(&watched, Instant::now());
                for (peer, nonce) in probes {
                    send(&socket, &Probe::Ask { host: links.host.clone(), nonce }, peer.address).await;
                }
                for claim in claims {
                    spawn_claim(&links, claim);
                }
            }
        }
    }
}

async fn on_datagram(
    socket: &UdpSocket,
    tracker: &mut Tracker,
    me: &str,
    data: &[u8],
    from: SocketAddr,
) {
    match serde_json::from_slice::<Probe>(data) {
        Ok(Probe::Ask { nonce, .. }) => {
            let answer = Probe::Answer {
                host: me.to_string(),
                nonce,
            };
            send(socket, &answer, from).await;
        }
        Ok(Probe::Answer { host, nonce }) => tracker.answered(from, &host, nonce, Instant::now()),
        Err(error) => tracing::debug!(%error, %from, "not a liveness probe"),
    }
}

async fn send(socket: &UdpSocket, probe: &Probe, to: SocketAddr) {
    let Ok(data) = serde_json::to_vec(probe) else {
        return;
    };
    // A probe that cannot leave is an answer that does not come: the silence decides.
    if let Err(error) = socket.send_to(&data, to).await {
        tracing::debug!(%error, %to, "liveness probe not sent");
    }
}

/// Claims in a task of its own, so that probes go on being answered meanwhile.
fn spawn_claim(links: &Links, mut claim: TakeoverClaim) {
    claim.host = links.host.clone();
    let (control, granted) = (links.control.clone(), links.granted.clone());
    tracing::warn!(silent = %claim.silent_host, routers = claim.routers.len(), "active agent silent: claiming its routers");
    tokio::spawn(async move {
        match control.claim(&claim).await {
            Ok(ids) => {
                tracing::info!(silent = %claim.silent_host, granted = ids.len(), asked = claim.routers.len(), "takeover claim answered");
                if !ids.is_empty() {
                    let _ = granted.send(ids);
                }
            }
            // The heartbeat path takes over once the server hears again.
            Err(error) => tracing::warn!(%error, "takeover claim failed"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(100);
    const DEAD: Duration = Duration::from_millis(400);

    fn peer(host: &str, port: u16) -> HaPeer {
        HaPeer {
            host: host.into(),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn watched(entries: &[(&str, &HaPeer, u64)]) -> Watched {
        entries
            .iter()
            .map(|(router, peer, epoch)| {
                let watch = Watch {
                    peer: (*peer).clone(),
                    lease_epoch: *epoch,
                };
                (router.to_string(), watch)
            })
            .collect()
    }

    /// Ticks every period from `from` to `to` (inclusive), answering each probe to the
    /// peers in `answering`; the claims made.
    fn run(
        tracker: &mut Tracker,
        list: &Watched,
        from: Instant,
        periods: u32,
        answering: &[&HaPeer],
    ) -> Vec<(Duration, TakeoverClaim)> {
        let mut claims = Vec::new();
        for n in 0..=periods {
            let now = from + INTERVAL * n;
            let (probes, due) = tracker.tick(list, now);
            claims.extend(due.into_iter().map(|c| (now - from, c)));
            for (to, nonce) in probes {
                if answering.contains(&&to) {
                    tracker.answered(to.address, &to.host, nonce, now + Duration::from_millis(1));
                }
            }
        }
        claims
    }

    #[test]
    fn a_silent_active_agents_routers_are_claimed_once_after_the_dead_time() {
        let (a, b) = (peer("a", 1), peer("b", 2));
        let list = watched(&[("r1", &a, 3), ("r2", &a, 7), ("r3", &b, 1)]);
        let mut tracker = Tracker::new(DEAD, INTERVAL, 10);
        let start = Instant::now();
        assert!(
            run(&mut tracker, &list, start, 20, &[&a, &b]).is_empty(),
            "both answer"
        );
        let cut = start + INTERVAL * 21;
        let claims = run(&mut tracker, &list, cut, 20, &[&b]);
        assert_eq!(claims.len(), 1, "one claim, not one per tick: {claims:?}");
        let (after, claim) = &claims[0];
        assert!(
            *after >= DEAD - INTERVAL && *after <= DEAD + INTERVAL,
            "claimed {after:?} after the last answer"
        );
        assert_eq!(claim.silent_host, "a");
        let routers: Vec<(&str, u64)> = claim
            .routers
            .iter()
            .map(|r| (r.router_id.as_str(), r.lease_epoch))
            .collect();
        assert_eq!(routers, [("r1", 3), ("r2", 7)]);
    }

    #[test]
    fn a_new_epoch_may_be_claimed_again_and_a_new_watch_gets_a_full_dead_time() {
        let a = peer("a", 1);
        let mut tracker = Tracker::new(DEAD, INTERVAL, 0);
        let start = Instant::now();
        let claims = run(&mut tracker, &watched(&[("r", &a, 1)]), start, 10, &[]);
        assert_eq!(claims.len(), 1);
        assert!(
            claims[0].0 >= DEAD,
            "a new watch is not judged before the dead time"
        );
        let later = start + INTERVAL * 11;
        let claims = run(&mut tracker, &watched(&[("r", &a, 2)]), later, 10, &[]);
        assert_eq!(claims.len(), 1, "under the new epoch: {claims:?}");
    }

    #[test]
    fn answers_count_only_from_that_host_at_that_address_to_a_recent_probe() {
        let a = peer("a", 1);
        let list = watched(&[("r", &a, 1)]);
        let mut tracker = Tracker::new(DEAD, INTERVAL, 1000);
        let start = Instant::now();
        let mut claimed_at = Vec::new();
        for n in 0..=10u32 {
            let now = start + INTERVAL * n;
            let (probes, claims) = tracker.tick(&list, now);
            claimed_at.extend(claims.iter().map(|_| n));
            for (_, nonce) in probes {
                tracker.answered(a.address, "someone-else", nonce, now);
                tracker.answered(peer("a", 9).address, "a", nonce, now);
                tracker.answered(a.address, "a", nonce.wrapping_sub(NONCE_WINDOW), now);
                tracker.answered(a.address, "a", nonce.wrapping_add(1), now);
            }
        }
        assert_eq!(claimed_at, [4], "none of those answers counted");
    }

    #[test]
    fn an_agent_that_did_not_run_judges_no_silence_it_could_not_hear() {
        let a = peer("a", 1);
        let list = watched(&[("r", &a, 1)]);
        let mut tracker = Tracker::new(DEAD, INTERVAL, 0);
        let start = Instant::now();
        assert!(run(&mut tracker, &list, start, 2, &[&a]).is_empty());
        let resumed = start + Duration::from_secs(5);
        let (_, claims) = tracker.tick(&list, resumed);
        assert!(claims.is_empty(), "frozen for 5 s: the silence is ours");
        let claims = run(&mut tracker, &list, resumed + INTERVAL, 10, &[]);
        assert_eq!(claims.len(), 1, "then judged as usual");
    }
}
