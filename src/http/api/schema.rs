//! Schema pieces the derive macros cannot write: enums whose values come from
//! a table at run time (the provider catalog, secret statuses) and patterns
//! that say exactly what the server's parsers accept (text rules, emails,
//! durations). Generated from the same tables the parsers use, so the
//! contract test (Schemathesis) finds no schema-valid input the server refuses.

use crate::domain::text::is_format;
use std::borrow::Cow;
use std::sync::LazyLock;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A provider id from the catalog (`keydrop providers`); anything else is refused.
pub struct ProviderId;

impl PartialSchema for ProviderId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(crate::providers::PROVIDERS.iter().map(|p| p.id)))
            .description(Some("A provider id from the catalog (`keydrop providers`)"))
            .into()
    }
}

impl ToSchema for ProviderId {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ProviderId")
    }
}

/// A secret's place in its lifecycle.
pub struct SecretStatus;

impl PartialSchema for SecretStatus {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(
                crate::domain::SecretStatus::ALL.map(crate::domain::SecretStatus::as_str),
            ))
            .into()
    }
}

impl ToSchema for SecretStatus {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SecretStatus")
    }
}

/// For `#[schema(schema_with = …)]` on a status field.
pub fn secret_status() -> Ref {
    Ref::from_schema_name(SecretStatus::name())
}

/// A character class body (no brackets) of every control character (Unicode
/// Cc) and, with `format`, every invisible formatting character (Cf), as
/// Python/ECMAScript regex escapes. Built from the Unicode tables that
/// `domain::text` checks against.
fn class(format: bool) -> String {
    ranges(|c| c.is_control() || (format && is_format(c)))
}

/// A character class body of every character `member` holds, as ranges.
fn ranges(member: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    let mut start: Option<char> = None;
    let mut prev = '\0';
    let push = |a: char, b: char, out: &mut String| {
        out.push_str(&escape(a));
        if b != a {
            out.push('-');
            out.push_str(&escape(b));
        }
    };
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        match (member(c), start) {
            (true, None) => start = Some(c),
            (false, Some(s)) => {
                push(s, prev, &mut out);
                start = None;
            }
            _ => {}
        }
        prev = c;
    }
    if let Some(s) = start {
        push(s, prev, &mut out);
    }
    out
}

/// `\uXXXX` in the Basic Multilingual Plane; above it the character itself
/// (both regex dialects Schemathesis and JSON Schema validators use read a
/// literal character the same way, while their escapes differ).
fn escape(c: char) -> String {
    match u32::from(c) {
        n if n <= 0xFFFF => format!("\\u{n:04x}"),
        _ => c.to_string(),
    }
}

/// A one-line identifier (`domain::text::identifier`): some visible text, no
/// control or formatting characters.
pub static IDENTIFIER: LazyLock<String> = LazyLock::new(|| {
    let c = class(true);
    format!("^[^{c}]*[^{c}\\s][^{c}]*$")
});

/// Free text (`domain::text::multiline`): line breaks (`\n`, `\r\n`) and tabs,
/// no other control character.
pub static MULTILINE: LazyLock<String> =
    LazyLock::new(|| "^(?:[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]|\\r\\n)*$".to_owned());

/// A reason for a reveal or a shred (`domain::Reason`): after trimming
/// whitespace (`char::is_whitespace`), 3 to 500 characters with no control
/// character.
pub static REASON: LazyLock<String> = LazyLock::new(|| {
    let ws = ranges(char::is_whitespace);
    let cc = class(false);
    let (inner_min, inner_max) = (
        crate::domain::Reason::MIN_CHARS - 2,
        crate::domain::Reason::MAX_CHARS - 2,
    );
    format!("^[{ws}]*[^{ws}{cc}][^{cc}]{{{inner_min},{inner_max}}}[^{ws}{cc}][{ws}]*$")
});

/// A query filter (`domain::text::filter`): anything but control characters.
pub static FILTER: LazyLock<String> = LazyLock::new(|| format!("^[^{}]*$", class(false)));

/// What `domain::Email::parse` accepts: ASCII, a dot-atom local part of at
/// most 64 characters, a domain of two or more labels whose last has a letter.
pub const EMAIL: &str = concat!(
    r"^[\t\n\u000b\u000c\r ]*(?=[^@]{1,64}@)",
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*",
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+",
    r"(?=[A-Za-z0-9-]*[A-Za-z-])[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9]",
    r"[\t\n\u000b\u000c\r ]*$"
);

/// Durations as `domain::HumanDuration` reads them, in one unit and small
/// enough to stay under its 10-year limit: `90m`, `48h`, `7d`, `2w`.
pub const DURATION: &str =
    r"^(?:[1-9][0-9]{0,5}s|[1-9][0-9]{0,4}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d|[1-9][0-9]?w)$";

/// A `next_cursor` value (a positive whole number), or blank for the first page.
pub const CURSOR: &str = r"^(?:[1-9][0-9]{0,17})?$";

/// A string schema with a pattern and length bounds; `nullable` adds JSON `null`.
fn string(pattern: &str, min: Option<usize>, max: Option<usize>, nullable: bool) -> Schema {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .pattern(Some(pattern))
        .min_length(min)
        .max_length(max)
        .into()
}

/// `organization` of a new link.
pub fn organization() -> Schema {
    string(&IDENTIFIER, Some(1), Some(200), false)
}

/// `note` of a new link.
pub fn note() -> Schema {
    string(&MULTILINE, None, Some(2000), true)
}

/// `contact_email` of a new link: an address, or empty/`null` for none.
pub fn contact_email() -> Schema {
    let either = format!("{EMAIL}|^[\\t\\n\\u000b\\u000c\\r ]*$");
    string(&either, None, Some(254), true)
}

/// `send_to` of a new link: an address (no blank: a link to email needs one).
pub fn send_to() -> Schema {
    string(EMAIL, None, Some(254), true)
}

/// `expires_in` of a new link; `null` or absent means the default.
pub fn expires_in() -> Schema {
    string(DURATION, None, None, true)
}

/// `reason` of a reveal or a shred; `null` or absent for none.
pub fn reason() -> Schema {
    string(&REASON, None, None, true)
}

/// A free-text query filter.
pub fn filter() -> Schema {
    string(&FILTER, None, None, false)
}

/// The audit list's `cursor`.
pub fn cursor() -> Schema {
    string(CURSOR, None, None, false)
}

/// `inner`, or an empty value: a blank query parameter means the same as
/// leaving it out (as an HTML form sends an empty field).
fn blank_or(inner: impl Into<RefOr<Schema>>) -> Schema {
    let blank = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .max_length(Some(0));
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(inner)
        .item(blank)
        .into()
}

fn formatted(format: KnownFormat) -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .format(Some(SchemaFormat::KnownFormat(format)))
        .into()
}

/// An id filter (a UUID).
pub fn uuid_filter() -> Schema {
    blank_or(formatted(KnownFormat::Uuid))
}

/// A time filter (RFC 3339).
pub fn time_filter() -> Schema {
    blank_or(formatted(KnownFormat::DateTime))
}

/// A provider filter.
pub fn provider_filter() -> Schema {
    blank_or(Ref::from_schema_name(ProviderId::name()))
}

/// A link status filter.
pub fn link_status_filter() -> Schema {
    blank_or(Ref::from_schema_name("LinkStatus"))
}

/// A secret status filter.
pub fn secret_status_filter() -> Schema {
    blank_or(secret_status())
}

/// A list's `limit`: 1 to 1000.
pub fn limit() -> Schema {
    let n = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .minimum(Some(1))
        .maximum(Some(1000));
    blank_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The characters a class body built by [`class`] names.
    fn members(class: &str) -> impl Fn(char) -> bool + '_ {
        let mut ranges = Vec::new();
        let mut chars = class.chars().peekable();
        let next = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let c = chars.next()?;
            if c != '\\' {
                return Some(c);
            }
            assert_eq!(chars.next(), Some('u'));
            let hex: String = chars.by_ref().take(4).collect();
            char::from_u32(u32::from_str_radix(&hex, 16).unwrap())
        };
        while let Some(a) = next(&mut chars) {
            let b = if chars.peek() == Some(&'-') {
                chars.next();
                next(&mut chars).unwrap()
            } else {
                a
            };
            ranges.push((a, b));
        }
        move |c| ranges.iter().any(|&(a, b)| (a..=b).contains(&c))
    }

    #[test]
    fn the_schema_classes_refuse_exactly_what_the_text_rules_refuse() {
        let format = class(true);
        let refused = members(&format);
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let rule = crate::domain::text::identifier(&format!("a{c}b"), 200).is_err();
            assert_eq!(refused(c), rule, "{c:?}");
        }
        let control = class(false);
        let refused = members(&control);
        assert!(refused('\u{1b}') && refused('\u{85}') && !refused('\u{202e}'));
    }
}
