//! Change events from the router namespaces Neutron owns (`l3_mode = "neutron"`): their
//! addresses (keepalived moving an HA router's gateway address in or out) and their
//! nf_tables rules (neutron-l3-agent rewriting its chains, which moves vpnaas's jumps below
//! its own). Each namespace gets two netlink sockets opened inside it, so the agent hears
//! of a change as it happens instead of at the next resync. What changed is not parsed:
//! the router's id is sent on the agent's wake channel and the router is reconciled, which
//! reads the namespace as it is.
//!
//! A socket holds its namespace alive, so a watch follows the namespace *file*: when
//! Neutron deletes the namespace, or deletes and creates it again (the router moved away
//! and back), [`Watches::watch`] drops the old sockets and opens new ones.
//!
//! A router whose namespace does not exist yet (Neutron just scheduled it here and its L3
//! agent is still building it) has nothing to watch: its namespace is *awaited*, looked
//! for every [`AWAIT_POLL`] by the agent while any is (there is no event for a namespace
//! being made), and the router is reconciled as soon as it is there.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use rustix::event::epoll;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType};
use tokio::sync::mpsc;

/// `RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR`: addresses added to or removed from a device.
const ADDRESS_GROUPS: u32 = 0x10 | 0x100;
/// `NFNLGRP_NFTABLES` (group 7) as a bind mask: any change of the nf_tables ruleset,
/// which is where `iptables` (nf_tables backend, Neutron's default) writes.
const NFTABLES_GROUPS: u32 = 1 << (7 - 1);
/// How often the event thread looks whether its watches are still wanted.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// How often an awaited namespace is looked for.
pub const AWAIT_POLL: Duration = Duration::from_millis(200);

/// The namespace file a watch was opened on (device and inode), to tell a namespace
/// deleted and created again under the same name.
type Identity = (u64, u64);

/// A router's watch: the namespace it was opened on and its sockets' tokens.
struct Watch {
    identity: Identity,
    tokens: [u64; 2],
}

/// What the event thread shares with [`Watches`]: the epoll set and, by token, each
/// socket with the router it wakes.
struct Shared {
    epoll: OwnedFd,
    sockets: Mutex<HashMap<u64, (String, OwnedFd)>>,
    wake: mpsc::UnboundedSender<String>,
}

/// The watches of the routers an agent hosts under Neutron. One thread waits on all their
/// sockets (epoll), started on first use and ended when this is dropped.
pub struct Watches {
    wake: mpsc::UnboundedSender<String>,
    shared: Option<Arc<Shared>>,
    watches: HashMap<String, Watch>,
    /// The namespace file of each router whose namespace is awaited.
    awaited: HashMap<String, PathBuf>,
    next_token: AtomicU64,
}

impl Watches {
    /// Watches whose events wake the agent with the router's id.
    pub fn new(wake: mpsc::UnboundedSender<String>) -> Watches {
        Watches {
            wake,
            shared: None,
            watches: HashMap::new(),
            awaited: HashMap::new(),
            next_token: AtomicU64::new(0),
        }
    }

    /// Makes sure the router's namespace is watched: opens the sockets on first use, or
    /// again when the namespace under that name is not the one watched. A namespace that
    /// does not exist (or is not mounted yet) is awaited instead. Returns whether it
    /// exists.
    pub async fn watch(&mut self, router_id: &str, namespace: &str) -> bool {
        let path = PathBuf::from("/run/netns").join(namespace);
        let Some(identity) = mounted(&path) else {
            self.unwatch(router_id);
            self.awaited.insert(router_id.to_string(), path);
            return false;
        };
        self.awaited.remove(router_id);
        if self
            .watches
            .get(router_id)
            .is_some_and(|w| w.identity == identity)
        {
            return true;
        }
        self.unwatch(router_id);
        if let Err(error) = self.open(router_id, path, identity).await {
            tracing::warn!(%error, namespace, "cannot watch the namespace; its changes are seen at the next resync");
        }
        true
    }

    /// Whether some router's namespace is awaited.
    pub fn awaiting(&self) -> bool {
        !self.awaited.is_empty()
    }

    /// The routers whose awaited namespace is there now, no longer awaited (reconciling
    /// them watches it).
    pub fn appeared(&mut self) -> Vec<String> {
        let appeared: Vec<String> = self
            .awaited
            .iter()
            .filter(|(_, path)| mounted(path).is_some())
            .map(|(router_id, _)| router_id.clone())
            .collect();
        for router_id in &appeared {
            self.awaited.remove(router_id);
        }
        appeared
    }

    async fn open(&mut self, router_id: &str, path: PathBuf, identity: Identity) -> io::Result<()> {
        let sockets = open_in(path).await?;
        let shared = self.shared()?;
        let mut tokens = [0; 2];
        for (token, socket) in tokens.iter_mut().zip(sockets) {
            *token = self.next_token.fetch_add(1, Ordering::Relaxed);
            epoll::add(
                &shared.epoll,
                &socket,
                epoll::EventData::new_u64(*token),
                epoll::EventFlags::IN,
            )?;
            shared
                .sockets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(*token, (router_id.to_string(), socket));
        }
        self.watches
            .insert(router_id.to_string(), Watch { identity, tokens });
        Ok(())
    }

    /// The event thread's shared state, the thread started on first use.
    fn shared(&mut self) -> io::Result<Arc<Shared>> {
        if let Some(shared) = &self.shared {
            return Ok(shared.clone());
        }
        let shared = Arc::new(Shared {
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
            sockets: Mutex::new(HashMap::new()),
            wake: self.wake.clone(),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("namespace-events".into())
            .spawn(move || run(&weak))?;
        self.shared = Some(shared.clone());
        Ok(shared)
    }

    /// Stops watching (or awaiting) the router's namespace (its sockets closed: the
    /// namespace is not held alive by them).
    pub fn unwatch(&mut self, router_id: &str) {
        self.awaited.remove(router_id);
        let (Some(watch), Some(shared)) = (self.watches.remove(router_id), &self.shared) else {
            return;
        };
        let mut sockets = shared
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for token in watch.tokens {
            if let Some((_, socket)) = sockets.remove(&token) {
                let _ = epoll::delete(&shared.epoll, &socket);
            }
        }
    }
}

/// The identity of the namespace file at `path` once a namespace is mounted on it. `ip
/// netns add` creates the file empty on `/run/netns`'s own filesystem and mounts the
/// namespace on it afterwards: until then it has the directory's device, and entering it
/// fails.
fn mounted(path: &Path) -> Option<Identity> {
    let file = std::fs::metadata(path).ok()?;
    let dir = std::fs::metadata(path.parent()?).ok()?;
    (file.dev() != dir.dev()).then(|| (file.dev(), file.ino()))
}

/// The event thread: for each socket with messages, reads them all and wakes its router
/// once; ends when [`Watches`] is gone.
fn run(shared: &Weak<Shared>) {
    let mut events = Vec::with_capacity(64);
    let timeout = rustix::event::Timespec {
        tv_sec: IDLE_CHECK.as_secs() as i64,
        tv_nsec: 0,
    };
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        events.clear();
        let waited = epoll::wait(
            &shared.epoll,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timeout),
        );
        if waited.is_err() {
            continue;
        }
        let sockets = shared
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for event in &events {
            if let Some((router_id, socket)) = sockets.get(&event.data.u64()) {
                drain(socket);
                let _ = shared.wake.send(router_id.clone());
            }
        }
    }
}

/// Opens the address and nf_tables sockets inside the namespace at `path`. `setns`
/// changes the calling thread only, so it runs on a thread of its own that ends right
/// after (never on a tokio worker or a pooled blocking thread, which would stay in the
/// router's namespace); a socket keeps the namespace it was created in.
async fn open_in(path: PathBuf) -> io::Result<[OwnedFd; 2]> {
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            let namespace = std::fs::File::open(&path)?;
            rustix::thread::move_into_link_name_space(
                namespace.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            Ok([
                subscribe(None, ADDRESS_GROUPS)?,
                subscribe(Some(rustix::net::netlink::NETFILTER), NFTABLES_GROUPS)?,
            ])
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    })
    .await
    .unwrap_or_else(|error| Err(io::Error::other(error)))
}

/// A non-blocking netlink socket of `protocol` (route when `None`) bound to `groups`.
fn subscribe(protocol: Option<rustix::net::Protocol>, groups: u32) -> io::Result<OwnedFd> {
    let socket = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        protocol,
    )?;
    rustix::net::bind(&socket, &SocketAddrNetlink::new(0, groups))?;
    Ok(socket)
}

/// Reads every message the socket holds. An overrun (`ENOBUFS`: events were lost) is
/// an event too: the router is reconciled whatever was lost.
fn drain(socket: &OwnedFd) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match rustix::net::recv(socket, &mut buffer[..], RecvFlags::DONTWAIT) {
            Ok(_) | Err(rustix::io::Errno::NOBUFS | rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}
