//! Human durations in scenario files: `"250ms"`, `"10s"`, `"2m"`, `"1h"`,
//! or a bare number of seconds. Parsing never panics, however absurd the
//! number; the ranges each field accepts are in `ranges`.

use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// A [`Duration`] that deserializes from `"250ms"`, `"10s"`, `"2m"` or `10`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HumanDuration(pub Duration);

/// Parse `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`; a bare number means seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration; write e.g. \"500ms\", \"10s\" or \"2m\"")
    })?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}`; use ms, s, m or h"
            ));
        }
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{text}` is not a valid duration"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is too long a duration"))
}

/// `1 h`, `30 min`, `5 s`, `250 ms`, `1.5 s`: how messages show a duration.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let whole = d.subsec_nanos() == 0;
    if whole && secs > 0 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if whole && secs > 0 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else if whole {
        format!("{secs} s")
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as \"500ms\", \"10s\" or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse(v).map(HumanDuration).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(|s| HumanDuration(Duration::from_secs(s)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(HumanDuration(Duration::from_secs(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                parse(&v.to_string()).map(HumanDuration).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse("ten").is_err());
        assert!(parse("5d").is_err());
        assert!(parse("100000000000000000000s").is_err(), "no panic either");
        assert!(parse("1e400").is_err());
    }

    #[test]
    fn shows_durations_for_humans() {
        assert_eq!(human(Duration::from_secs(3600)), "1 h");
        assert_eq!(human(Duration::from_secs(1800)), "30 min");
        assert_eq!(human(Duration::from_secs(5)), "5 s");
        assert_eq!(human(Duration::ZERO), "0 s");
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
    }
}
