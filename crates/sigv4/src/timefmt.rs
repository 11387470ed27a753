//! The two timestamp shapes SigV4 meets: ISO 8601 basic (`20240101T000000Z`, in `X-Amz-Date`)
//! and the HTTP `Date` header's IMF-fixdate (`Mon, 01 Jan 2024 00:00:00 GMT`).

use time::macros::format_description;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Parses `YYYYMMDD'T'HHMMSS'Z'` exactly: AWS accepts no other shape in `X-Amz-Date`, and the
/// string to sign must be rebuilt byte for byte from it.
pub(crate) fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &b[r];
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let hour = u8::try_from(num(9..11)?).ok()?;
    let minute = u8::try_from(num(11..13)?).ok()?;
    let second = u8::try_from(num(13..15)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses the HTTP `Date` header: clients that sign with `Date` instead of `X-Amz-Date` may
/// put either shape there.
pub(crate) fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    if let Some(t) = parse_amz_date(s) {
        return Some(t);
    }
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Formats as `YYYYMMDD'T'HHMMSS'Z'` in UTC.
pub(crate) fn format_amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_shapes() {
        let t = parse_amz_date("20240229T235959Z").unwrap();
        assert_eq!(format_amz_date(t), "20240229T235959Z");
        for bad in [
            "",
            "20240230T000000Z",
            "2024-01-01T00:00:00Z",
            "20240101T000000",
            "20240101T240000Z",
            "2024010１T000000Z",
            "+2024101T000000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        let d = parse_http_date("Mon, 01 Jan 2024 00:00:00 GMT").unwrap();
        assert_eq!(format_amz_date(d), "20240101T000000Z");
    }
}
