//! Prometheus metrics of an agent: reconcile duration and errors, daemon restarts after a
//! crash, failed status reports, rekeys, hosted routers, connections by the status and
//! reason it last reported, and the data plane it chose. The owner of the process decides
//! where they are served.

use std::collections::HashMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use vpnaas_model::agent::ConnectionStatus;

use crate::data_plane::Esp;

/// Buckets from 1 ms to about 65 s.
fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// What started a reconcile.
#[derive(Clone, Copy, Debug)]
pub enum Trigger {
    /// A hint that the router changed: only the difference is applied.
    Change,
    /// The periodic (or first) resync: everything is re-applied.
    Resync,
    /// A daemon event: the daemon is re-checked and the status reported.
    DaemonEvent,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Change => "change",
            Trigger::Resync => "resync",
            Trigger::DaemonEvent => "daemon_event",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlaneLabels {
    plane: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    status: &'static str,
    reason: &'static str,
}

/// Handles to the agent's metrics; clones share the same values.
#[derive(Clone)]
pub struct Metrics {
    reconcile: Family<TriggerLabels, Histogram, fn() -> Histogram>,
    reconcile_errors: Counter,
    resync: Histogram,
    daemon_restarts: Counter,
    report_failures: Counter,
    rekeys: Counter,
    routers: Gauge,
    connections: Family<ConnectionLabels, Gauge>,
    data_plane: Family<PlaneLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconcile: Family::new_with_constructor(reconcile_histogram),
            reconcile_errors: Counter::default(),
            resync: reconcile_histogram(),
            daemon_restarts: Counter::default(),
            report_failures: Counter::default(),
            rekeys: Counter::default(),
            routers: Gauge::default(),
            connections: Family::default(),
            data_plane: Family::default(),
        }
    }
}

impl Metrics {
    /// Adds every metric to `registry`, named `vpnaas_agent_*`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "vpnaas_agent_reconcile_duration_seconds",
            "Time to bring one router to its desired state and report it, by trigger",
            self.reconcile.clone(),
        );
        registry.register(
            "vpnaas_agent_reconcile_errors",
            "Reconciles that failed (desired state unreadable, or not applied)",
            self.reconcile_errors.clone(),
        );
        registry.register(
            "vpnaas_agent_resync_duration_seconds",
            "Time of a full resync: every hosted router reconciled",
            self.resync.clone(),
        );
        registry.register(
            "vpnaas_agent_daemon_restarts",
            "IKE daemons restarted after they exited on their own",
            self.daemon_restarts.clone(),
        );
        registry.register(
            "vpnaas_agent_report_failures",
            "Status reports the server did not accept (retried by a resync)",
            self.report_failures.clone(),
        );
        registry.register(
            "vpnaas_agent_rekeys",
            "Child SA rekeys seen on this host's daemons",
            self.rekeys.clone(),
        );
        registry.register(
            "vpnaas_agent_routers",
            "Routers this agent hosts",
            self.routers.clone(),
        );
        registry.register(
            "vpnaas_agent_connections",
            "Connections on this host by the status and reason last reported",
            self.connections.clone(),
        );
        registry.register(
            "vpnaas_agent_data_plane",
            "Where this agent's ESP runs (1 on the label of the plane chosen at start)",
            self.data_plane.clone(),
        );
    }

    /// Records the data plane chosen at start.
    pub fn data_plane(&self, esp: Esp) {
        self.data_plane.clear();
        self.data_plane
            .get_or_create(&PlaneLabels {
                plane: esp.as_str(),
            })
            .set(1);
    }

    /// Records one reconcile.
    pub fn reconciled(&self, trigger: Trigger, seconds: f64) {
        self.reconcile
            .get_or_create(&TriggerLabels {
                trigger: trigger.as_str(),
            })
            .observe(seconds);
    }

    /// Records a full resync.
    pub fn resynced(&self, seconds: f64) {
        self.resync.observe(seconds);
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self) {
        self.reconcile_errors.inc();
    }

    /// Counts a restart of a daemon that had exited on its own.
    pub fn daemon_restarted(&self) {
        self.daemon_restarts.inc();
    }

    /// Counts status reports the server did not take.
    pub fn report_failed(&self, reports: usize) {
        self.report_failures.inc_by(reports as u64);
    }

    /// Counts a child SA rekey.
    pub fn rekeyed(&self) {
        self.rekeys.inc();
    }

    /// Sets the gauges from the last report of every hosted router.
    pub fn hosted(&self, reported: &HashMap<String, Vec<ConnectionStatus>>) {
        self.routers.set(reported.len() as i64);
        let mut counts: HashMap<ConnectionLabels, i64> = HashMap::new();
        for connection in reported.values().flatten() {
            let labels = ConnectionLabels {
                status: connection.status.as_str(),
                reason: connection.reason.as_str(),
            };
            *counts.entry(labels).or_default() += 1;
        }
        self.connections.clear();
        for (labels, count) in counts {
            self.connections.get_or_create(&labels).set(count);
        }
    }
}
