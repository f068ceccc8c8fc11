//! Connections' traffic over time for the dashboard's charts: the counters each committed
//! change carries ([`crate::changes::Change::traffic`]) are kept as samples in memory,
//! the last [`KEPT`] per connection, since this server started (the store keeps only
//! the latest counters). Drawn as an SVG by the server.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use maud::{Markup, html};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::App;
use crate::changes::Change;
use vpnaas_model::Kind;

/// Samples kept per connection.
pub const KEPT: usize = 240;

/// One reading of a connection's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When (milliseconds since the epoch).
    pub at_ms: u64,
    /// Bytes received so far.
    pub bytes_in: u64,
    /// Bytes sent so far.
    pub bytes_out: u64,
}

/// The samples of every connection.
#[derive(Debug, Default)]
pub struct History(Mutex<HashMap<String, VecDeque<Sample>>>);

impl History {
    /// Adds a reading (a repeat of the last one is not a new sample).
    pub fn record(&self, id: &str, sample: Sample) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let samples = all.entry(id.to_string()).or_default();
        let same =
            |last: &Sample| (last.bytes_in, last.bytes_out) == (sample.bytes_in, sample.bytes_out);
        if samples.back().is_some_and(same) {
            return;
        }
        if samples.len() == KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Forgets a deleted connection.
    pub fn forget(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// A connection's samples, oldest first.
    pub fn of(&self, id: &str) -> Vec<Sample> {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.get(id)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Keeps the history from the change stream while the server runs.
pub async fn follow(app: App) {
    let mut changes = app.changes.subscribe();
    loop {
        match changes.recv().await {
            Ok(change) => keep(&app, &change),
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

fn keep(app: &App, change: &Change) {
    if change.kind != Kind::SiteConnection {
        return;
    }
    if change.deleted {
        app.traffic.forget(&change.id);
    } else if let Some(traffic) = &change.traffic {
        app.traffic
            .record(&change.id, sample(traffic, app.clock.now_ms()));
    }
}

/// A reading from a connection's `traffic` attribute.
pub fn sample(traffic: &Value, at_ms: u64) -> Sample {
    let count = |name: &str| traffic[name].as_u64().unwrap_or(0);
    Sample {
        at_ms,
        bytes_in: count("bytes_in"),
        bytes_out: count("bytes_out"),
    }
}

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;

/// Bytes in and out so far, over time, as an SVG chart (in solid, out dashed: the line
/// style tells them apart without colour).
pub(super) fn chart(samples: &[Sample]) -> Markup {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return html! { p.muted #traffic-chart { "No traffic counters yet." } };
    };
    let span = (last.at_ms - first.at_ms).max(1) as f64;
    let top = samples
        .iter()
        .map(|s| s.bytes_in.max(s.bytes_out))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let line = |pick: fn(&Sample) -> u64| -> String {
        samples
            .iter()
            .map(|s| {
                let x = (s.at_ms - first.at_ms) as f64 / span * WIDTH;
                let y = HEIGHT - pick(s) as f64 / top * HEIGHT;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let seconds = (last.at_ms - first.at_ms) / 1000;
    html! {
        figure #traffic-chart {
            svg viewBox={ "-4 -4 " (WIDTH + 8.0) " " (HEIGHT + 8.0) } role="img"
                aria-label={ "Bytes in and out over the last " (seconds) " s" } {
                rect.frame x="0" y="0" width=(WIDTH) height=(HEIGHT) {}
                polyline.in points=(line(|s| s.bytes_in)) {}
                polyline.out points=(line(|s| s.bytes_out)) {}
            }
            figcaption {
                "— in " (super::view::bytes(last.bytes_in)) " · ‒ ‒ out " (super::view::bytes(last.bytes_out))
                " · " (samples.len()) " samples over " (seconds) " s"
            }
        }
    }
}
