//! End to end on real strongSwan, key rotation without a bounce: both ends of an ACTIVE
//! tunnel get a new pre-shared key while a ping runs at 20 packets/s, and not one packet
//! is lost (the SAs up are kept, only the key is loaded); a forced re-authentication then
//! authenticates with the new key; a new key on one end only, re-authenticated, fails on
//! both ends with AUTH_FAILED.
//!
//! Needs root (CI runs as root); without it these tests fail and say why. Every name
//! carries a random prefix, and everything started is removed, even when a test fails.

mod common;

use std::time::Duration;

use serde_json::json;
use vpnaas_model::Kind;

use common::*;

async fn new_key(lab: &Lab, conn: &str, psk: &str) {
    lab.client
        .update(Kind::SiteConnection, conn, json!({ "psk": psk }))
        .await
        .expect("new key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_on_both_ends_loses_no_packet_and_reauthentication_uses_it() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "the first key").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "the first key").await;
    for conn in [&c12, &c21] {
        lab.wait_status(conn, "ACTIVE", Duration::from_secs(20))
            .await;
    }
    assert!(lab.ping(1, 2), "the tunnel carries pings");
    let pids = (charon_pid(&lab, 1), charon_pid(&lab, 2));
    let seen = (lab.events(&c12).await.len(), lab.events(&c21).await.len());

    let mut pinger = Pinger::start(&lab, 1, 2, 8);
    tokio::time::sleep(Duration::from_millis(500)).await;
    new_key(&lab, &c12, "the second key").await;
    new_key(&lab, &c21, "the second key").await;
    for conn in [&c12, &c21] {
        lab.wait_rotation(conn, "credentials_loaded", 1).await;
    }
    assert!(
        pinger.child.try_wait().expect("ping").is_none(),
        "both agents loaded the new key while the ping ran"
    );
    let (sent, received) = pinger.finish();
    assert!(sent >= 150, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "{} of {sent} packets lost while both ends changed key",
        sent - received
    );
    assert_eq!(
        lab.events_since(&c12, seen.0).await,
        ["ACTIVE>ACTIVE CREDENTIALS_LOADED"],
        "no bounce: the only event says the key was loaded"
    );
    assert_eq!(
        lab.events_since(&c21, seen.1).await,
        ["ACTIVE>ACTIVE CREDENTIALS_LOADED"]
    );
    assert_eq!(
        (charon_pid(&lab, 1), charon_pid(&lab, 2)),
        pids,
        "charon kept"
    );

    // The next authentication, forced now, uses the new key on both ends.
    let seen = lab.events(&c12).await.len();
    let asked = lab
        .client
        .reauthenticate(&c12)
        .await
        .expect("reauthenticate");
    assert_eq!(asked["key_rotation"]["reauth"], 1, "{asked}");
    let done = lab.wait_rotation(&c12, "reauthenticated", 1).await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(10))
        .await;
    let events = lab.events_since(&c12, seen).await;
    assert!(
        events.iter().any(|e| e == "ACTIVE>ACTIVE REAUTHENTICATED"),
        "the re-authentication succeeded with the new key: {events:?} {done}"
    );
    eprintln!("re-authentication: {events:?}");
    until_ping(&lab, 1, 2, Duration::from_secs(10));
    let log = std::fs::read_to_string(
        lab._dir
            .path()
            .join("state")
            .join(lab.site(1)["router_id"].as_str().expect("router"))
            .join("strongswan/charon.log"),
    )
    .expect("charon.log");
    assert!(
        log.contains("reauthenticating IKE_SA"),
        "charon re-authenticated rather than rekeyed"
    );

    // A new key on one end only: what runs keeps running, the next authentication fails.
    new_key(&lab, &c12, "a key the peer never got").await;
    lab.wait_rotation(&c12, "credentials_loaded", 2).await;
    assert_eq!(
        lab.client
            .show(Kind::SiteConnection, &c12)
            .await
            .expect("show")["status"],
        "ACTIVE",
        "the IKE SA up is kept"
    );
    assert!(lab.ping(1, 2), "and carries traffic");
    lab.client
        .reauthenticate(&c12)
        .await
        .expect("reauthenticate");
    for conn in [&c12, &c21] {
        let events = lab
            .wait_reason(conn, "AUTH_FAILED", Duration::from_secs(20))
            .await;
        let last = events.last().expect("events");
        assert_eq!(last["to"], "DOWN", "{events:?}");
    }
    assert!(!lab.ping(1, 2), "no tunnel with different keys");
    eprintln!("both ends changed key: {received} of {sent} pings answered");
}
