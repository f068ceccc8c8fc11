//! Applying one router's desired state to the host: its L3 (ports and NAT of its own in
//! standalone mode, vpnaas's chains beside Neutron's under `l3_mode = "neutron"`) and its
//! IKE daemon, on the driver its state asks for.

use vpnaas_model::agent::RouterState;
use vpnaas_model::enums::{DriverKind, HaRole};

use crate::driver::IkeDriver;
use crate::error::Teardown;
use crate::{Agent, Drivers, L3Mode, Result, l3};

impl Agent {
    /// The driver a router's state asks for (the agent's default when its services do not).
    pub(crate) fn kind(&self, state: &RouterState) -> DriverKind {
        state.driver.unwrap_or(self.config.driver)
    }

    pub(crate) fn driver(&self, kind: DriverKind) -> &dyn IkeDriver {
        match (&self.drivers, kind) {
            (Drivers::Fake(fake), _) => fake,
            (Drivers::Daemons(daemons), DriverKind::Strongswan) => &daemons.strongswan,
            (Drivers::Daemons(daemons), DriverKind::Libreswan) => &daemons.libreswan,
        }
    }

    /// Applies a router's state. Against `last` (the state applied before; `None` on a
    /// full resync) only what changed is touched: ports when ports changed, the nft table
    /// when its rules changed, and the daemon's connections by their own diff. An HA
    /// router's standby keeps ports without addresses and runs no daemon; a demoted agent
    /// stops the daemon before it lets go of the addresses, a promoted one takes the
    /// addresses before it starts the daemon; a daemon or files that would not go never
    /// keep the addresses on a demoted agent (both agents would answer for them).
    pub(crate) async fn apply(
        &mut self,
        state: &RouterState,
        last: Option<&RouterState>,
    ) -> Result<()> {
        if self.config.l3_mode == L3Mode::Neutron {
            return self.apply_beside_neutron(state, last).await;
        }
        let namespace = self.config.namespace(&state.router_id);
        if state.role == HaRole::Standby {
            let mut teardown = Teardown::default();
            teardown.step(self.stop_daemons(&state.router_id).await);
            teardown.step(self.apply_l3(&namespace, state, last).await);
            return teardown.finish();
        }
        self.apply_l3(&namespace, state, last).await?;
        self.ensure_daemon(&namespace, state, last).await
    }

    /// Under Neutron: vpnaas's chains in Neutron's namespace (checked on every apply:
    /// Neutron may have rewritten its own), and the daemon. An HA router's daemon runs
    /// where its gateway address is, i.e. where keepalived made the namespace primary,
    /// whatever Neutron's `ha_state` (and so the server's role) says yet: keepalived's
    /// address is the fence, as for Neutron's own VPN agent. The namespace is watched, so
    /// the address coming or going (and Neutron rewriting its rules) is applied at once.
    /// A namespace Neutron has not built yet is awaited (no daemon runs for the router
    /// meanwhile), and the router applied as soon as it is there.
    async fn apply_beside_neutron(
        &mut self,
        state: &RouterState,
        last: Option<&RouterState>,
    ) -> Result<()> {
        let namespace = self.config.namespace(&state.router_id);
        if !self.watches.watch(&state.router_id, &namespace).await {
            tracing::info!(router = %state.router_id, %namespace, "waiting for Neutron's namespace");
            self.gateway_here.remove(&state.router_id);
            return self.stop_daemons(&state.router_id).await;
        }
        l3::neutron::apply(&namespace, state).await?;
        if !state.ha {
            self.gateway_here.remove(&state.router_id);
            return self.ensure_daemon(&namespace, state, last).await;
        }
        let here = l3::neutron::holds_gateway(&namespace, state).await?;
        if self.gateway_here.insert(state.router_id.clone(), here) != Some(here) {
            tracing::info!(router = %state.router_id, here, "the HA router's gateway address");
        }
        if here {
            self.ensure_daemon(&namespace, state, last).await
        } else {
            self.stop_daemons(&state.router_id).await
        }
    }

    /// The router's daemon brought to `state` (the other daemon, if the router moved from
    /// it, stopped first).
    async fn ensure_daemon(
        &self,
        namespace: &str,
        state: &RouterState,
        last: Option<&RouterState>,
    ) -> Result<()> {
        let kind = self.kind(state);
        let daemons = matches!(self.drivers, Drivers::Daemons(_));
        if daemons && last.is_none_or(|l| self.kind(l) != kind) {
            // A router moved to another daemon (or a full resync): the other one goes.
            for other in [DriverKind::Strongswan, DriverKind::Libreswan] {
                if other != kind {
                    self.driver(other).remove(&state.router_id).await?;
                }
            }
        }
        self.driver(kind).ensure(namespace, state).await
    }

    /// In standalone mode, the router's ports (when they changed, or the namespace went)
    /// and its nft table (when its rules changed).
    async fn apply_l3(
        &self,
        namespace: &str,
        state: &RouterState,
        last: Option<&RouterState>,
    ) -> Result<()> {
        if self.config.l3_mode == L3Mode::Simulation {
            return Ok(());
        }
        let same_ports =
            last.filter(|l| l.gateway == state.gateway && l.interfaces == state.interfaces);
        let exists = l3::namespace_exists(namespace).await;
        let promoted = same_ports.is_some_and(|l| l.role == HaRole::Standby)
            && state.role == HaRole::Active
            && exists;
        let ports_changed = same_ports.is_none_or(|l| l.role != state.role);
        // A takeover: the standby's ports and NAT rules are in place, only the addresses
        // and the route are missing. Should they not be (a port gone), all is plumbed.
        let activated = promoted
            && match l3::activate(&self.config, namespace, state).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(%error, router = %state.router_id, "takeover: plumbing the router whole");
                    false
                }
            };
        if !activated && (ports_changed || !exists) {
            l3::ensure_ports(&self.config, namespace, state).await?;
        }
        let nat_changed = last.is_none_or(|l| l3::nat_ruleset(l) != l3::nat_ruleset(state));
        if (ports_changed && !activated) || nat_changed {
            l3::apply_nat(namespace, state).await?;
        }
        Ok(())
    }

    /// Stops whichever IKE daemon runs for the router, with its files (each driver is
    /// asked, whatever the other met).
    pub(crate) async fn stop_daemons(&self, router_id: &str) -> Result<()> {
        let mut teardown = Teardown::default();
        for kind in [DriverKind::Strongswan, DriverKind::Libreswan] {
            teardown.step(self.driver(kind).remove(router_id).await);
        }
        teardown.finish()
    }
}
