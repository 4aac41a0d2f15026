//! RFC 3339 UTC timestamps with whole seconds and `Z`: `2025-12-06T10:00:00Z`.

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::error::{EncodingError, shown, string_form};

/// A point in time, to the second, in its one textual form `YYYY-MM-DDTHH:MM:SSZ`.
///
/// Years 0000–9999 only, so the text form always has the same shape and sorts as it compares.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Unix seconds of 0000-01-01T00:00:00Z and of 9999-12-31T23:59:59Z.
const MIN_UNIX: i64 = -62_167_219_200;
const MAX_UNIX: i64 = 253_402_300_799;

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const EPOCH: Self = Self(0);

    /// From seconds since the Unix epoch; `None` outside years 0000–9999.
    pub fn from_unix(seconds: i64) -> Option<Self> {
        (MIN_UNIX..=MAX_UNIX)
            .contains(&seconds)
            .then_some(Self(seconds))
    }

    /// Seconds since the Unix epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// This time plus `seconds` (which may be negative), saturating at the representable range.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds).clamp(MIN_UNIX, MAX_UNIX))
    }

    /// Seconds from `earlier` to `self` (negative when `earlier` is later).
    pub const fn seconds_since(self, earlier: Timestamp) -> i64 {
        self.0 - earlier.0
    }

    fn datetime(self) -> OffsetDateTime {
        // In range by construction (MIN_UNIX..=MAX_UNIX), which `time` represents.
        OffsetDateTime::from_unix_timestamp(self.0).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl FromStr for Timestamp {
    type Err = EncodingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| EncodingError::Timestamp {
            value: shown(s),
            reason: reason.to_owned(),
        };
        let b = s.as_bytes();
        // YYYY-MM-DDTHH:MM:SSZ is exactly 20 bytes; anything else (fractions, offsets,
        // lower-case t/z, spaces) is a different form of the same time and is refused so that
        // signed documents have one encoding.
        if b.len() != 20 {
            return Err(err(
                "expected YYYY-MM-DDTHH:MM:SSZ (UTC, whole seconds, upper-case T and Z)",
            ));
        }
        let shape_ok = b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'Z';
        if !shape_ok {
            return Err(err(
                "expected YYYY-MM-DDTHH:MM:SSZ (UTC, whole seconds, upper-case T and Z)",
            ));
        }
        let num = |range: std::ops::Range<usize>| -> Result<u32, EncodingError> {
            let part = &b[range];
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(err("date and time fields must be decimal digits"));
            }
            Ok(part
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or_else(|| err("month must be 01-12"))?;
        let year = i32::try_from(year).map_err(|_| err("year out of range"))?;
        let day = u8::try_from(day).map_err(|_| err("day out of range"))?;
        let date = Date::from_calendar_date(year, month, day)
            .map_err(|_| err("no such day in that month"))?;
        // Leap seconds (:60) are refused: Unix time cannot hold them.
        let clock = u8::try_from(hour)
            .ok()
            .zip(u8::try_from(minute).ok())
            .zip(u8::try_from(second).ok())
            .and_then(|((h, m), s)| Time::from_hms(h, m, s).ok())
            .ok_or_else(|| err("hour must be 00-23, minute and second 00-59"))?;
        let unix = PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp();
        Ok(Self(unix))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dt = self.datetime();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

string_form!(Timestamp);
