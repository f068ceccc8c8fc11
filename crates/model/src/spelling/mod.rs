//! How each IKE daemon spells the API's closed values (algorithms, groups, identities):
//! shared by the agent, which configures its daemons with them, and the server, which
//! writes the configuration of a connection's far end with the same words.

pub mod libreswan;
pub mod libreswan_conn;
pub mod strongswan;
