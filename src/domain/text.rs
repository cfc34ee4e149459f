//! Rules for text that people type and other people later read: names,
//! organizations, notes, filters.
//!
//! Two kinds of character are refused, because what is stored must be what
//! is shown:
//! * control characters (NUL, ESC, BEL, …): Postgres cannot store NUL in
//!   `text`, and ESC sequences reach a staff member's terminal through the CLI;
//! * Unicode format characters (general category Cf: the bidirectional
//!   overrides and isolates such as U+202E, zero-width joiners, soft hyphens):
//!   they make `Ali` + U+202E + `gnp.exe` display as `Aliexe.png`, and can
//!   reverse the rest of a sentence on a page. A name or an organization
//!   never needs them.
//!
//! The category comes from `unicode-properties` (the Unicode tables), not a
//! hand-kept list, so new Cf characters are covered when the crate updates.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Why a piece of text was refused. The messages never quote the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("is required")]
    Empty,
    #[error("is too long (at most {0} characters)")]
    TooLong(usize),
    #[error("must not contain control characters such as line breaks, tabs or NUL")]
    Control,
    #[error("must not contain invisible formatting characters such as right-to-left overrides")]
    Format,
}

/// True for a Unicode format character (Cf): bidi controls, zero-width marks.
pub fn is_format(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
}

/// A one-line identifier (an organization, a person's name): trimmed, not
/// empty, at most `max` characters, no control or format characters.
pub fn identifier(raw: &str, max: usize) -> Result<&str, TextError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(TextError::Empty);
    }
    if s.chars().count() > max {
        return Err(TextError::TooLong(max));
    }
    if s.chars().any(char::is_control) {
        return Err(TextError::Control);
    }
    if s.chars().any(is_format) {
        return Err(TextError::Format);
    }
    Ok(s)
}

/// Free text that may span lines (a note): line breaks (`\n`, `\r\n`) and
/// tabs are allowed, every other control character is refused. Format
/// characters are allowed (a note may quote right-to-left text); pages and
/// tools isolate it when they show it.
pub fn multiline(raw: &str, max: usize) -> Result<&str, TextError> {
    let s = raw.trim();
    if s.chars().count() > max {
        return Err(TextError::TooLong(max));
    }
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let ok = match c {
            '\n' | '\t' => true,
            '\r' => chars.peek() == Some(&'\n'),
            c => !c.is_control(),
        };
        if !ok {
            return Err(TextError::Control);
        }
    }
    Ok(s)
}

/// A filter value in a query string: anything but control characters (which
/// can match nothing stored, and NUL which Postgres refuses outright).
pub fn filter(raw: &str) -> Result<&str, TextError> {
    if raw.chars().any(char::is_control) {
        return Err(TextError::Control);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_trimmed_and_refuse_control_and_format_characters() {
        assert_eq!(identifier("  Acme Corp ", 200), Ok("Acme Corp"));
        assert_eq!(
            identifier("Zoë Ñandú 株式会社", 200),
            Ok("Zoë Ñandú 株式会社")
        );
        assert_eq!(identifier("  ", 200), Err(TextError::Empty));
        assert_eq!(identifier("abc", 2), Err(TextError::TooLong(2)));
        for bad in [
            "a\0b",
            "a\u{1b}[31mb",
            "a\u{7}b",
            "a\nb",
            "a\tb",
            "a\u{85}b",
        ] {
            assert_eq!(identifier(bad, 200), Err(TextError::Control), "{bad:?}");
        }
        for bad in [
            "Ali\u{202e}gnp.exe",
            "a\u{2066}b",
            "a\u{200b}b",
            "a\u{200d}b",
            "a\u{ad}b",
            "a\u{feff}b",
            "a\u{61c}b",
        ] {
            assert_eq!(identifier(bad, 200), Err(TextError::Format), "{bad:?}");
        }
    }

    #[test]
    fn multiline_text_keeps_line_breaks_and_tabs_only() {
        assert_eq!(
            multiline("one\ntwo\r\n\tthree", 100),
            Ok("one\ntwo\r\n\tthree")
        );
        assert_eq!(multiline("", 100), Ok(""));
        assert_eq!(multiline("\u{202e}quoted", 100), Ok("\u{202e}quoted"));
        for bad in ["a\0b", "a\u{1b}]0;x\u{7}", "a\rb", "a\u{7f}"] {
            assert_eq!(multiline(bad, 100), Err(TextError::Control), "{bad:?}");
        }
        assert_eq!(multiline("abc", 2), Err(TextError::TooLong(2)));
    }

    #[test]
    fn filters_refuse_control_characters_only() {
        assert_eq!(filter("secret.*"), Ok("secret.*"));
        assert_eq!(filter(" x "), Ok(" x "));
        assert_eq!(filter("a\0"), Err(TextError::Control));
    }
}
