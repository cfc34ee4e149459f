//! Email addresses of submitters and contacts.

use std::fmt;

/// A plausible email address: `local@domain.tld`, ASCII, at most 254 characters.
///
/// Non-ASCII is refused on purpose: look-alike characters in an address a
/// staff member may later write to are a phishing risk, and B2B admins rarely
/// use internationalised addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let s = input.trim();
        if s.is_empty() {
            return Err("Enter your email address.");
        }
        if s.len() > 254 {
            return Err("That email address is too long.");
        }
        if !s.is_ascii() {
            return Err(
                "Use an email address with plain letters (no accents or look-alike characters).",
            );
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or("Enter an email address like name@example.com.")?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && !tld.bytes().all(|b| b.is_ascii_digit()));
        if !(local_ok && domain_ok) {
            return Err("Enter an email address like name@example.com.");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_accepted() {
        for ok in [
            "a@b.co",
            "jane.doe+hr@example.com",
            "x_y@sub.example.org",
            " pad@example.com ",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            Email::parse(" pad@example.com ").unwrap().as_str(),
            "pad@example.com"
        );
    }

    #[test]
    fn malformed_and_look_alike_addresses_are_rejected() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@.com",
            "a..b@example.com",
            "a@exa mple.com",
            "a@example.c",
            "a@-x.com",
            "<script>@x.com",
            "jane@exаmple.com",
            "a@1.2.3.4",
            "a\"b@example.com",
            "a@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// Ordinary addresses: dotted local part, subdomains, a letter TLD.
    const ADDRESS: &str = "[a-z0-9_+-]{1,20}(\\.[a-z0-9]{1,10})?@[a-z0-9]{1,15}(-[a-z0-9]{1,5})?(\\.[a-z0-9]{1,10}){0,2}\\.[a-z]{2,6}";

    proptest! {
        #[test]
        fn any_accepted_input_is_a_trimmed_plain_ascii_address(s in any::<String>()) {
            if let Ok(e) = Email::parse(&s) {
                let a = e.as_str();
                prop_assert_eq!(a, s.trim());
                prop_assert!(a.is_ascii() && a.len() <= 254);
                prop_assert!(!a.bytes().any(|b| b.is_ascii_whitespace() || b"<>\"\\();:,[]".contains(&b)));
                prop_assert_eq!(a.matches('@').count(), 1);
            }
        }

        #[test]
        fn ordinary_addresses_are_accepted_verbatim(a in ADDRESS) {
            prop_assert_eq!(Email::parse(&a).map(|e| e.to_string()), Ok(a.clone()));
        }

        /// Look-alike letters (Cyrillic, Greek, accents, fullwidth) anywhere are refused.
        #[test]
        fn a_non_ascii_character_anywhere_is_refused(a in ADDRESS, at in any::<prop::sample::Index>(), c in "[^\\x00-\\x7f]") {
            let i = at.index(a.len() + 1);
            let spoofed = format!("{}{c}{}", &a[..i], &a[i..]);
            prop_assert!(Email::parse(&spoofed).is_err(), "{spoofed}");
        }

        #[test]
        fn whitespace_or_markup_inside_is_refused(a in ADDRESS, at in any::<prop::sample::Index>(), c in "[ \\t\\n<>\"]") {
            let i = 1 + at.index(a.len() - 1);
            let bad = format!("{}{c}{}", &a[..i], &a[i..]);
            prop_assert!(Email::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
