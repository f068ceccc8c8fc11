//! A loopback port of the machine made reachable inside a simulated host: a listener on
//! `127.0.0.1:PORT` in the host's network namespace whose connections are carried to
//! `127.0.0.1:PORT` of the machine (RabbitMQ for its Neutron agents, the vpnaas server for
//! its vpnaas agent), so no service listens beyond loopback.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A running forward; it stops taking connections on drop.
pub struct Forward {
    stop: Arc<AtomicBool>,
}

impl Forward {
    /// Forwards `port` into the network namespace named `netns`.
    ///
    /// # Panics
    /// When the listener cannot be opened there.
    pub fn start(netns: &str, port: u16) -> Forward {
        let listener = listen_in(netns, port)
            .unwrap_or_else(|e| panic!("cannot listen on port {port} in {netns}: {e}"));
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((inside, _)) => carry(inside, port),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Forward { stop }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The listener, opened by a thread of its own that entered the namespace (`setns`
/// changes the calling thread only) and ends right after: the socket stays in the
/// namespace it was made in.
fn listen_in(netns: &str, port: u16) -> io::Result<TcpListener> {
    let path = std::path::Path::new("/run/netns").join(netns);
    std::thread::spawn(move || {
        let namespace = std::fs::File::open(path)?;
        rustix::thread::move_into_link_name_space(
            namespace.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        TcpListener::bind(("127.0.0.1", port))
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
}

/// Copies both ways between a connection made inside and a new one to the machine's port.
fn carry(inside: TcpStream, port: u16) {
    let _ = inside.set_nonblocking(false);
    let Ok(outside) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    for (mut from, mut to) in [
        (inside.try_clone(), outside.try_clone()),
        (outside.try_clone(), inside.try_clone()),
    ]
    .into_iter()
    .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
    {
        std::thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    }
}
