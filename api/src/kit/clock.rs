//! Time comes from a `Clock`, so tests can move it (token expiry, lockouts).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

/// Business days and periods are in Shanghai time.
pub const BUSINESS_TZ: Tz = chrono_tz::Asia::Shanghai;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock, optionally shifted by tests.
#[derive(Default)]
pub struct SystemClock {
    offset_secs: AtomicI64,
}

impl SystemClock {
    pub fn advance(&self, secs: i64) {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::seconds(self.offset_secs.load(Ordering::SeqCst))
    }
}

/// `20261126`: the Shanghai calendar day of an instant.
pub fn business_day(t: DateTime<Utc>) -> String {
    t.with_timezone(&BUSINESS_TZ).format("%Y%m%d").to_string()
}

/// The Shanghai calendar date of an instant.
pub fn business_date(t: DateTime<Utc>) -> chrono::NaiveDate {
    t.with_timezone(&BUSINESS_TZ).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn shanghai_day_starts_at_16_utc() {
        let before = Utc.with_ymd_and_hms(2026, 11, 26, 15, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 26, 16, 0, 0).unwrap();
        assert_eq!(business_day(before), "20261126");
        assert_eq!(business_day(after), "20261127");
    }
}
