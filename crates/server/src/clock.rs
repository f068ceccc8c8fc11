//! The server's time, behind one seam: agent liveness, leases, the scheduler's patience
//! after a restart and the times of status events all read it. Production runs on the
//! system clock; tests drive a [`ManualClock`] so that "an agent has been silent for
//! longer than `agent_down_time`" is a step they take, not a wait they hope is long
//! enough on a busy machine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Seconds since the Unix epoch.
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// Now in RFC 3339 (UTC, milliseconds), as status events carry it.
    fn rfc3339(&self) -> String {
        rfc3339(self.now_ms())
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or_default()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A clock standing at the current system time.
    pub fn starting_now() -> Self {
        ManualClock {
            ms: AtomicU64::new(SystemClock.now_ms()),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ms.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// A time in milliseconds since the epoch in RFC 3339 (UTC, milliseconds).
pub fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let Ok(time) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return String::new();
    };
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::starting_now();
        let start = clock.now_ms();
        assert_eq!(clock.now_ms(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now_ms(), start + 1500);
        assert_eq!(clock.now_secs(), (start + 1500) / 1000);
    }

    #[test]
    fn times_render_as_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339(1_764_748_800_123), "2025-12-03T08:00:00.123Z");
    }
}
