//! The operator's brand: the name, logo and colour a customer admin sees on
//! every drop page, receipt, error page and email.
//!
//! The customer is asked to paste a credential into a page: it must be
//! recognisably the page of the company that asked, not of the software.
//! Every value is checked once at start-up (a logo that is not an image, a
//! colour too pale to read on white) so a bad value stops the process with a
//! message naming its variable instead of reaching a customer.

use ring::digest::{digest, SHA256};
use std::fmt::Write as _;

/// Largest logo accepted (`KEYDROP_BRAND_LOGO_FILE`).
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
/// WCAG AA contrast for normal text.
pub const MIN_CONTRAST: f64 = 4.5;

/// Everything shown as the operator's brand. Defaults are Keydrop's own.
#[derive(Debug, Clone)]
pub struct Brand {
    pub name: String,
    pub logo: Option<Logo>,
    /// `#rrggbb`, checked for contrast against white.
    pub color: String,
    pub support_email: Option<String>,
    pub privacy_url: Option<String>,
}

impl Default for Brand {
    fn default() -> Self {
        Self {
            name: "Keydrop".into(),
            logo: None,
            color: DEFAULT_COLOR.into(),
            support_email: None,
            privacy_url: None,
        }
    }
}

/// Keydrop's own accent (the stylesheet's link colour): 5.9:1 on white.
pub const DEFAULT_COLOR: &str = "#1d5fbf";

/// A logo held in memory, addressed by a hash of its bytes so it can be
/// cached for good and a new file gets a new URL.
#[derive(Clone)]
pub struct Logo {
    pub bytes: Vec<u8>,
    pub kind: LogoKind,
    /// First 16 hex digits of the SHA-256 of `bytes`.
    pub hash: String,
}

impl std::fmt::Debug for Logo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logo")
            .field("kind", &self.kind)
            .field("bytes", &self.bytes.len())
            .field("hash", &self.hash)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoKind {
    Svg,
    Png,
}

impl LogoKind {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Svg => "image/svg+xml",
            Self::Png => "image/png",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Self::Svg => "svg",
            Self::Png => "png",
        }
    }
}

impl Logo {
    /// Checks that `bytes` are a PNG (decodable header) or a well-formed SVG
    /// document (root element `svg`, no script or external references) of at
    /// most [`MAX_LOGO_BYTES`].
    pub fn parse(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() > MAX_LOGO_BYTES {
            return Err(format!(
                "the logo is {} KiB; at most {} KiB is accepted",
                bytes.len().div_ceil(1024),
                MAX_LOGO_BYTES / 1024
            ));
        }
        let kind = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes[..]))
                .read_info()
                .map_err(|e| format!("the PNG logo cannot be read: {e}"))?;
            // Decode the image too: a valid header over a broken body is no logo.
            let mut buf = vec![0; reader.output_buffer_size()];
            reader
                .next_frame(&mut buf)
                .map_err(|e| format!("the PNG logo cannot be read: {e}"))?;
            LogoKind::Png
        } else {
            check_svg(&bytes)?;
            LogoKind::Svg
        };
        let hash = digest(&SHA256, &bytes).as_ref()[..8]
            .iter()
            .fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
        Ok(Self { bytes, kind, hash })
    }

    /// The path the public listener serves it at.
    pub fn path(&self) -> String {
        format!("/brand/logo-{}.{}", self.hash, self.kind.extension())
    }
}

/// A well-formed SVG without script, event handlers or outside references.
/// It is served with `Content-Security-Policy: default-src 'none'` and shown
/// through `<img>` (where scripts never run) anyway; refusing them at start
/// tells the operator early rather than leaving a surprise in the file.
fn check_svg(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "the logo is neither a PNG nor an SVG (UTF-8 XML) file".to_owned())?;
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| format!("the logo is neither a PNG nor a well-formed SVG file ({e})"))?;
    if doc.root_element().tag_name().name() != "svg" {
        return Err("the logo is XML but not SVG (its root element is not <svg>)".into());
    }
    for node in doc.descendants().filter(|n| n.is_element()) {
        let name = node.tag_name().name();
        if matches!(name, "script" | "foreignObject") {
            return Err(format!("the SVG logo contains a <{name}> element"));
        }
        for attr in node.attributes() {
            let value = attr.value().trim_start().to_ascii_lowercase();
            if attr.name().starts_with("on") {
                return Err(format!(
                    "the SVG logo has an event handler ({})",
                    attr.name()
                ));
            }
            if attr.name() == "href" && !value.starts_with('#') && !value.starts_with("data:") {
                return Err("the SVG logo refers to an outside resource (href)".into());
            }
        }
    }
    Ok(())
}

/// Parses `#rgb` or `#rrggbb` and refuses colours whose contrast with white
/// is below WCAG AA (4.5:1), since links and buttons draw text in it on white.
pub fn parse_color(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let hex = s
        .strip_prefix('#')
        .filter(|h| (h.len() == 3 || h.len() == 6) && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("{s:?} is not a hex colour like #1d5fbf"))?;
    let full: String = if hex.len() == 3 {
        hex.chars().flat_map(|c| [c, c]).collect()
    } else {
        hex.to_owned()
    };
    let channel = |i: usize| u8::from_str_radix(&full[i..i + 2], 16).unwrap_or(0);
    let ratio = contrast_with_white([channel(0), channel(2), channel(4)]);
    if ratio < MIN_CONTRAST {
        return Err(format!(
            "{s} has a contrast of {ratio:.2}:1 against white; text in it needs at least \
             {MIN_CONTRAST}:1 (WCAG AA): choose a darker colour"
        ));
    }
    Ok(format!("#{}", full.to_ascii_lowercase()))
}

/// WCAG 2 contrast ratio of an sRGB colour against white. Hand-written: it is
/// the two formulas of the WCAG definition (relative luminance, ratio).
pub fn contrast_with_white(rgb: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
    1.05 / (l + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_colours_pass_and_pale_ones_are_refused_with_their_ratio() {
        assert_eq!(parse_color("#1D5FBF").unwrap(), "#1d5fbf");
        assert_eq!(parse_color("#000").unwrap(), "#000000");
        let e = parse_color("#ffcc00").unwrap_err();
        assert!(e.contains(":1") && e.contains("4.5"), "{e}");
        // #767676 is the classic lightest grey that passes AA on white.
        assert!(parse_color("#767676").is_ok());
        assert!(parse_color("#777777").is_err());
        assert!(parse_color("blue").is_err());
        assert!(parse_color("#12345").is_err());
    }

    #[test]
    fn the_contrast_of_black_on_white_is_21() {
        assert!((contrast_with_white([0, 0, 0]) - 21.0).abs() < 1e-9);
        assert!((contrast_with_white([255, 255, 255]) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn an_svg_logo_is_accepted_and_hashed_into_its_path() {
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#123"/></svg>"##;
        let logo = Logo::parse(svg.to_vec()).unwrap();
        assert_eq!(logo.kind, LogoKind::Svg);
        assert!(logo.path().starts_with("/brand/logo-") && logo.path().ends_with(".svg"));
        assert_eq!(logo.hash.len(), 16);
    }

    #[test]
    fn scripts_handlers_outside_references_and_non_images_are_refused() {
        for (bad, why) in [
            (&br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#[..], "script"),
            (br#"<svg xmlns="http://www.w3.org/2000/svg" onload="x()"></svg>"#, "event handler"),
            (br#"<svg xmlns="http://www.w3.org/2000/svg"><image href="https://evil.example/x.png"/></svg>"#, "outside"),
            (b"<html></html>", "not SVG"),
            (b"GIF89a....", "neither"),
            (b"\x89PNG\r\n\x1a\nbroken", "PNG"),
        ] {
            let e = Logo::parse(bad.to_vec()).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let e = Logo::parse(vec![b' '; MAX_LOGO_BYTES + 1]).unwrap_err();
        assert!(e.contains("256 KiB"), "{e}");
    }
}
