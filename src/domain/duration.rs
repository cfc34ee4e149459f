//! Durations as people write them: `90m`, `7d`, `1h30m`.

use std::{fmt, str::FromStr};

/// A positive duration of at most ten years, written with units s, m, h, d, w.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(std::time::Duration);

const MAX_SECS: u64 = 10 * 366 * 24 * 3600;

impl HumanDuration {
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        if s.is_empty() {
            return Err("a duration is required, e.g. 90m or 7d".into());
        }
        let mut total: u64 = 0;
        if s.ends_with("ms") && s[..s.len() - 2].bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{input:?}: milliseconds are not supported; use whole seconds, e.g. 1s"
            ));
        }
        let mut digits = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(format!("{input:?} is not a duration: use a number with s, m, h, d or w, e.g. 90m or 7d")),
            };
            if digits.is_empty() {
                return Err(format!(
                    "{input:?} is not a duration: a unit needs a number before it, e.g. 7d"
                ));
            }
            // Only digits: parsing fails only when the number overflows.
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("{input:?} is too long: at most 10 years"))?;
            digits.clear();
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .filter(|v| *v <= MAX_SECS)
                .ok_or_else(|| format!("{input:?} is too long: at most 10 years"))?;
        }
        if !digits.is_empty() {
            return Err(format!(
                "{input:?} needs a unit after {digits}: s, m, h, d or w"
            ));
        }
        if total == 0 {
            return Err(format!("{input:?} must be longer than zero"));
        }
        Ok(Self(std::time::Duration::from_secs(total)))
    }

    /// `d` written the way [`HumanDuration::parse`] reads it (`7d`, `36h`, `45s`).
    pub fn display(d: std::time::Duration) -> String {
        Self(d).to_string()
    }

    pub fn as_std(&self) -> std::time::Duration {
        self.0
    }

    pub fn as_chrono(&self) -> chrono::Duration {
        // Bounded by MAX_SECS, so this cannot overflow.
        chrono::Duration::seconds(self.0.as_secs() as i64)
    }
}

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if secs.is_multiple_of(len) {
                return write!(f, "{}{unit}", secs / len);
            }
        }
        write!(f, "{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        HumanDuration::parse(s).unwrap().as_std().as_secs()
    }

    #[test]
    fn units_and_combinations_parse() {
        assert_eq!(secs("90m"), 5400);
        assert_eq!(secs("7d"), 604_800);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("2w"), 1_209_600);
        assert_eq!(secs(" 45s "), 45);
    }

    #[test]
    fn nonsense_zero_and_overflow_are_rejected() {
        for bad in [
            "",
            "7",
            "d",
            "7x",
            "-1d",
            "0m",
            "1.5h",
            "99999999999999999999d",
            "5000w",
        ] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn milliseconds_and_overflow_get_their_own_messages() {
        let e = HumanDuration::parse("500ms").unwrap_err();
        assert!(e.contains("milliseconds"), "{e}");
        let e = HumanDuration::parse("99999999999999999999d").unwrap_err();
        assert!(e.contains("too long"), "{e}");
        let e = HumanDuration::parse("d").unwrap_err();
        assert!(e.contains("needs a number"), "{e}");
    }

    #[test]
    fn display_uses_the_largest_whole_unit() {
        assert_eq!(HumanDuration::parse("168h").unwrap().to_string(), "7d");
        assert_eq!(HumanDuration::parse("90m").unwrap().to_string(), "90m");
        assert_eq!(HumanDuration::parse("61s").unwrap().to_string(), "61s");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const UNITS: [(char, u64); 5] = [
        ('s', 1),
        ('m', 60),
        ('h', 3600),
        ('d', 86_400),
        ('w', 604_800),
    ];

    proptest! {
        #[test]
        fn any_input_parses_to_a_bounded_positive_duration_or_an_error(s in any::<String>()) {
            if let Ok(d) = HumanDuration::parse(&s) {
                let secs = d.as_std().as_secs();
                prop_assert!(secs > 0 && secs <= MAX_SECS);
                prop_assert!(s.trim().bytes().all(|b| b.is_ascii_digit() || b"smhdw".contains(&b)));
            }
        }

        #[test]
        fn number_unit_sequences_add_up(parts in prop::collection::vec((0u64..5000, 0usize..5), 1..5)) {
            let text: String = parts.iter().map(|(n, u)| format!("{n}{}", UNITS[*u].0)).collect();
            let total: u64 = parts.iter().map(|(n, u)| n * UNITS[*u].1).sum();
            match HumanDuration::parse(&text) {
                Ok(d) => prop_assert_eq!(d.as_std().as_secs(), total),
                Err(_) => prop_assert!(total == 0 || total > MAX_SECS, "{text} = {total}s refused"),
            }
        }

        #[test]
        fn display_parses_back_to_the_same_duration(secs in 1..=MAX_SECS) {
            let d = HumanDuration(std::time::Duration::from_secs(secs));
            prop_assert_eq!(HumanDuration::parse(&d.to_string()).unwrap(), d);
            prop_assert_eq!(d.as_chrono().num_seconds(), secs as i64);
        }
    }
}
