//! Staff token scopes.

use std::fmt;

/// What a staff token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Metadata and audit.
    Read,
    /// Create and revoke drop links.
    Request,
    /// Read, reveal, mark ingested.
    Reveal,
    /// Everything.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Request, Scope::Reveal, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Request => "request",
            Scope::Reveal => "reveal",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s.trim())
            .ok_or_else(|| format!("unknown scope {s:?}: use read, request, reveal or admin"))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty set of scopes held by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Parses a comma-separated list such as `read,reveal`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut scopes = Vec::new();
        for part in list.split(',').filter(|p| !p.trim().is_empty()) {
            let s = Scope::parse(part)?;
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        if scopes.is_empty() {
            return Err("at least one scope is required: read, request, reveal or admin".into());
        }
        Ok(Self(scopes))
    }

    /// Builds from stored names, ignoring unknown ones.
    pub fn from_stored(names: &[String]) -> Self {
        Self(names.iter().filter_map(|n| Scope::parse(n).ok()).collect())
    }

    /// True when these scopes allow what `needed` guards.
    /// `admin` allows everything; `reveal` includes `read`.
    pub fn allows(&self, needed: Scope) -> bool {
        self.0.iter().any(|&have| {
            have == Scope::Admin
                || have == needed
                || (have == Scope::Reveal && needed == Scope::Read)
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_deduplicate() {
        assert_eq!(
            Scopes::parse("read, reveal,read").unwrap().names(),
            ["read", "reveal"]
        );
        assert!(Scopes::parse("").is_err());
        assert!(Scopes::parse("read,root").is_err());
    }

    #[test]
    fn admin_allows_all_and_reveal_includes_read() {
        let admin = Scopes::parse("admin").unwrap();
        assert!(Scope::ALL.iter().all(|&s| admin.allows(s)));
        let reveal = Scopes::parse("reveal").unwrap();
        assert!(reveal.allows(Scope::Read) && reveal.allows(Scope::Reveal));
        assert!(!reveal.allows(Scope::Request) && !reveal.allows(Scope::Admin));
        let read = Scopes::parse("read").unwrap();
        assert!(!read.allows(Scope::Reveal));
    }
}
