//! What the test suites of several crates share, written once: scratch PostgreSQL
//! databases ([`scratch`]), a nats-server of a test's own ([`nats`]) and free loopback
//! ports ([`free_port`]). Each crate's own harness (the server's, the lab of the
//! end-to-end tests) builds on these.

pub mod nats;
pub mod scratch;

/// A loopback port nothing listens on now (the OS picks it; a test binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}
