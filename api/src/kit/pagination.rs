//! Keyset pagination: a page is `first` rows after an opaque cursor. The cursor carries the
//! sort key of the last row seen (an id, or a time or date with the id as tie-breaker),
//! so a page is an index range scan, never an OFFSET.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::error::{AppError, AppResult, Msg};

/// A sort key that can travel in a cursor.
pub trait CursorKey: Sized {
    fn encode(&self) -> String;
    fn decode(s: &str) -> Option<Self>;
}

/// Ids (UUID v7) sort by creation time.
impl CursorKey for Uuid {
    fn encode(&self) -> String {
        self.simple().to_string()
    }
    fn decode(s: &str) -> Option<Self> {
        Uuid::parse_str(s).ok()
    }
}

impl CursorKey for (DateTime<Utc>, Uuid) {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.0.timestamp_micros(), self.1.simple()))
    }
    fn decode(s: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let (t, id) = raw.split_once('|')?;
        Some((DateTime::from_timestamp_micros(t.parse().ok()?)?, Uuid::parse_str(id).ok()?))
    }
}

impl CursorKey for (NaiveDate, Uuid) {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.0, self.1.simple()))
    }
    fn decode(s: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let (d, id) = raw.split_once('|')?;
        Some((d.parse().ok()?, Uuid::parse_str(id).ok()?))
    }
}

/// A rank (higher first) before a date-and-id key: lists ordered by importance or urgency.
impl CursorKey for (i16, NaiveDate, Uuid) {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}|{}", self.0, self.1, self.2.simple()))
    }
    fn decode(s: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let mut it = raw.splitn(3, '|');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?, Uuid::parse_str(it.next()?).ok()?))
    }
}

impl CursorKey for (i16, DateTime<Utc>, Uuid) {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}|{}", self.0, self.1.timestamp_micros(), self.2.simple()))
    }
    fn decode(s: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let mut it = raw.splitn(3, '|');
        Some((
            it.next()?.parse().ok()?,
            DateTime::from_timestamp_micros(it.next()?.parse().ok()?)?,
            Uuid::parse_str(it.next()?).ok()?,
        ))
    }
}

/// One page: rows after `after`, at most `limit`. Services fetch `limit + 1` rows; the
/// extra one only tells that a next page exists.
#[derive(Debug, Clone)]
pub struct Page<K> {
    pub after: Option<K>,
    pub limit: usize,
}

impl<K: CursorKey> Page<K> {
    /// `first` within `1..=max` (default `default`), `after` a cursor from an earlier page.
    pub fn parse(first: Option<i32>, after: Option<&str>, default: usize, max: usize) -> AppResult<Self> {
        let limit = match first {
            None => default,
            Some(n) if n >= 1 && (n as usize) <= max => n as usize,
            Some(_) => {
                return Err(AppError::validation(
                    "first",
                    Msg::owned(format!("每页条数应在1到{max}之间"), format!("first must be between 1 and {max}")),
                ));
            }
        };
        let after = match after {
            None => None,
            Some(c) => Some(
                K::decode(c)
                    .ok_or_else(|| AppError::validation("after", Msg::new("分页游标无效", "Invalid cursor")))?,
            ),
        };
        Ok(Page { after, limit })
    }

    /// How many rows to fetch.
    pub fn fetch(&self) -> usize {
        self.limit + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let id = Uuid::now_v7();
        let t = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
        assert_eq!(Uuid::decode(&id.encode()), Some(id));
        assert_eq!(<(DateTime<Utc>, Uuid)>::decode(&(t, id).encode()), Some((t, id)));
        assert_eq!(<(NaiveDate, Uuid)>::decode(&(d, id).encode()), Some((d, id)));
        assert!(<(DateTime<Utc>, Uuid)>::decode("not-a-cursor").is_none());
    }

    #[test]
    fn page_limits() {
        assert_eq!(Page::<Uuid>::parse(None, None, 20, 100).unwrap().limit, 20);
        assert_eq!(Page::<Uuid>::parse(Some(5), None, 20, 100).unwrap().fetch(), 6);
        assert!(Page::<Uuid>::parse(Some(0), None, 20, 100).is_err());
        assert!(Page::<Uuid>::parse(Some(101), None, 20, 100).is_err());
        assert!(Page::<Uuid>::parse(None, Some("zz"), 20, 100).is_err());
    }
}
