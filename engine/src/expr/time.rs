//! Timestamps as unix milliseconds: parsing the ISO 8601 / RFC 3339 text APIs send, and writing
//! it back in one canonical form.
//!
//! Milliseconds are the engine's one time unit. Parsing floors to the millisecond (also before
//! 1970, where truncation would round towards the future) so that ordering and "older than"
//! comparisons never see a timestamp move forward. This file reads no clock and no time zone
//! database: text without an offset is UTC by definition.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

/// Parses an ISO 8601 / RFC 3339 timestamp into unix milliseconds, flooring sub-millisecond
/// precision.
///
/// Accepted: 0 to 9 fractional digits (`2020-03-13T19:15:41.6195833Z`), `Z` or numeric offsets
/// (`+02:00`, `+0200`), a space or lowercase `t` instead of `T`, minutes without seconds, text
/// without an offset (read as UTC) and a bare date (`2024-05-01`, midnight UTC). Surrounding
/// whitespace is ignored.
pub fn parse_timestamp_ms(s: &str) -> Result<i64, String> {
    let text = s.trim();
    let instant = match text.parse::<Timestamp>() {
        Ok(instant) => instant,
        Err(with_offset) => {
            // jiff's civil parser silently ignores an offset it cannot use, so the no-offset
            // reading is only tried when the time part really has no offset or zone marker.
            let time_part = text.get(10..).unwrap_or("");
            if time_part.contains(['+', '-', 'Z', 'z', '[']) {
                return Err(format!("`{s}` is not a valid timestamp: {with_offset}"));
            }
            let civil = text.parse::<DateTime>().map_err(|error| format!("`{s}` is not a valid timestamp: {error}"))?;
            Offset::UTC.to_timestamp(civil).map_err(|error| format!("`{s}` is out of range: {error}"))?
        }
    };
    floor_ms(instant)
}

/// Unix milliseconds of an instant, rounded towards negative infinity.
fn floor_ms(instant: Timestamp) -> Result<i64, String> {
    // jiff's `as_millisecond` truncates towards zero, which would move pre-1970 instants forward.
    let ms = instant.as_nanosecond().div_euclid(1_000_000);
    i64::try_from(ms).map_err(|_| format!("{instant} is out of range"))
}

/// Formats unix milliseconds as RFC 3339 in UTC with a `Z` suffix, without a fraction when the
/// instant is a whole second and with exactly three fractional digits otherwise.
pub fn format_iso_ms(ms: i64) -> Result<String, String> {
    let instant =
        Timestamp::from_millisecond(ms).map_err(|error| format!("{ms} is not a representable instant: {error}"))?;
    let pattern = if ms.rem_euclid(1000) == 0 { "%Y-%m-%dT%H:%M:%SZ" } else { "%Y-%m-%dT%H:%M:%S%.3fZ" };
    Ok(instant.strftime(pattern).to_string())
}
