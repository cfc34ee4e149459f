//! A per-client request budget (`KEYDROP_RATE_LIMIT`,
//! `KEYDROP_AUTH_FAILURE_LIMIT`), parsed once from text like `30/min`.

/// A per-IP request budget: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per: std::time::Duration,
}

impl RateLimit {
    /// Parses `30/min`, `5/s`, `100/h`, `1000/d`, or `off`.
    pub fn parse(s: &str) -> Result<Option<Self>, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let err = || format!("{s:?} is not a rate limit: use e.g. 30/min, 5/s, 100/h or off");
        let (count, unit) = s.split_once('/').ok_or_else(err)?;
        let count: u32 = count.trim().parse().map_err(|_| err())?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            _ => return Err(err()),
        };
        if count == 0 {
            return Err(err());
        }
        Ok(Some(Self {
            count,
            per: std::time::Duration::from_secs(secs),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[test]
    fn budgets_read_like_a_count_per_unit_or_off() {
        assert_eq!(RateLimit::parse(" off ").unwrap(), None);
        let l = RateLimit::parse("100/h").unwrap().unwrap();
        assert_eq!((l.count, l.per.as_secs()), (100, 3600));
        assert!(RateLimit::parse("30").is_err());
        assert!(RateLimit::parse("x/min").is_err());
    }
}
