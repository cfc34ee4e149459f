//! Why staff revealed or shredded a secret, as the audit trail keeps it
//! (`detail.reason` of the event): one line of 3 to 500 characters, with
//! surrounding whitespace trimmed. The console, the API and the CLI read a
//! reason through [`Reason::parse`], so the same text is accepted everywhere.

/// A reason that can be written into the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

/// Why a reason was refused. Never quotes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 3 to 500 characters on one line (no control characters such as line breaks)")]
pub struct ReasonError;

impl Reason {
    /// Fewest characters, after trimming.
    pub const MIN_CHARS: usize = 3;
    /// Most characters, after trimming.
    pub const MAX_CHARS: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, ReasonError> {
        let r = raw.trim();
        let n = r.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&n) || r.chars().any(char::is_control) {
            return Err(ReasonError);
        }
        Ok(Self(r.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_one_trimmed_line_of_3_to_500_characters() {
        assert_eq!(
            Reason::parse("  ticket OPS-42 \n").unwrap().as_str(),
            "ticket OPS-42"
        );
        assert!(Reason::parse("abc").is_ok());
        assert!(Reason::parse(&"é".repeat(500)).is_ok());
        for bad in ["", "  ab  ", "line\nbreak", "tab\there", "nul\0x"] {
            assert_eq!(Reason::parse(bad), Err(ReasonError), "{bad:?}");
        }
        assert!(Reason::parse(&"x".repeat(501)).is_err());
    }
}
