//! The operator's brand on the public pages: reading `KEYDROP_BRAND_*`,
//! serving the logo and the colour stylesheet from memory, and filling the
//! brand into every HTML page.
//!
//! Pages are filled by a response layer rather than a field on every
//! template: error pages are also made where no state is at hand (a panic,
//! the 404 fallback, extractor rejections), and they must carry the brand
//! too. `templates/base.html` marks the places; the layer replaces them with
//! fragments rendered once at start-up (askama, so every value is escaped).

use crate::domain::brand::{Brand, Logo};
use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ring::digest::{digest, SHA256};
use std::sync::Arc;

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<span class="brand">{% if let Some(p) = logo %}<img src="{{ p }}" alt="" height="28"> {% endif %}{{ b.name }}</span>"#
)]
struct Header<'a> {
    b: &'a Brand,
    logo: Option<String>,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"{% if let Some(s) = b.support_email %}<p class="support">Questions? Write to <a href="mailto:{{ s }}">{{ s }}</a>.</p>{% endif %}{% if let Some(p) = b.privacy_url %}<p class="privacy"><a href="{{ p }}">Privacy notice</a></p>{% endif %}<p class="poweredby">Secure key drop by Keydrop</p>"#
)]
struct Footer<'a> {
    b: &'a Brand,
}

#[derive(Template)]
#[template(ext = "html", source = "{{ name }}")]
struct Escaped<'a> {
    name: &'a str,
}

/// The brand as page fragments and assets, made once.
#[derive(Debug)]
pub struct BrandAssets {
    title: String,
    header: String,
    head: String,
    footer: String,
    css: String,
    css_path: String,
    logo: Option<Logo>,
}

impl BrandAssets {
    pub fn new(brand: &Brand) -> Self {
        let css = format!(
            ":root {{ --accent: {c}; }}\nheader.site {{ border-top: 4px solid {c}; }}\nbutton:hover {{ background: {c}; filter: brightness(0.88); }}\na {{ color: {c}; }}\n",
            c = brand.color
        );
        let hash = digest(&SHA256, css.as_bytes());
        let css_path = format!(
            "/brand/theme-{}.css",
            hash.as_ref()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let render = |t: &dyn askama::DynTemplate| t.dyn_render().unwrap_or_default();
        Self {
            title: format!(" · {}</title>", render(&Escaped { name: &brand.name })),
            header: render(&Header {
                b: brand,
                logo: brand.logo.as_ref().map(Logo::path),
            }),
            head: format!(r#"<link rel="stylesheet" href="{css_path}">"#),
            footer: render(&Footer { b: brand }),
            css,
            css_path,
            logo: brand.logo.clone(),
        }
    }

    /// Fills the brand into a page rendered from `templates/base.html`:
    /// the title's suffix and the `<!--kd:…-->…<!--/kd:…-->` places (the
    /// first of each), in one pass that copies the page once.
    pub fn fill(&self, html: &str) -> String {
        const TITLE_TAIL: &str = " · Keydrop";
        let places = [
            ("<!--kd:brand-->", "<!--/kd:brand-->", &self.header),
            ("<!--kd:head-->", "<!--/kd:head-->", &self.head),
            ("<!--kd:footer-->", "<!--/kd:footer-->", &self.footer),
        ];
        // One walk over the page's `<`s (a memchr search), noting the first
        // title end and the first opening and closing mark of each place:
        // seven substring searches over the whole page cost more than the
        // rest of the fill.
        let mut title = None;
        let (mut open, mut close) = ([None; 3], [None; 3]);
        let mut at = 0;
        while let Some(i) = html[at..].find('<') {
            let p = at + i;
            let rest = &html[p..];
            if rest.starts_with("</title>") {
                if title.is_none() && html[..p].ends_with(TITLE_TAIL) {
                    title = Some(p - TITLE_TAIL.len());
                }
            } else if rest.starts_with("<!--") {
                for (k, (o, c, _)) in places.iter().enumerate() {
                    if open[k].is_none() && rest.starts_with(o) {
                        open[k] = Some(p);
                    } else if close[k].is_none() && rest.starts_with(c) {
                        close[k] = Some(p);
                    }
                }
            }
            at = p + 1;
        }
        let mut spans: [Option<(usize, usize, &str)>; 4] = [None; 4];
        spans[0] = title.map(|a| {
            (
                a,
                a + TITLE_TAIL.len() + "</title>".len(),
                self.title.as_str(),
            )
        });
        for (k, (_, c, with)) in places.iter().enumerate() {
            if let (Some(a), Some(b)) = (open[k], close[k]) {
                if a < b {
                    spans[k + 1] = Some((a, b + c.len(), with.as_str()));
                }
            }
        }
        let mut spans: Vec<_> = spans.into_iter().flatten().collect();
        spans.sort_unstable_by_key(|s| s.0);
        let mut out = String::with_capacity(html.len() + 512);
        let mut at = 0;
        for (a, b, with) in spans {
            if a < at {
                // Overlapping places: not a page of ours; fill one by one.
                return self.fill_slowly(html);
            }
            out.push_str(&html[at..a]);
            out.push_str(with);
            at = b;
        }
        out.push_str(&html[at..]);
        out
    }

    /// [`Self::fill`] one place after the other (each in the page as the
    /// previous replacement left it), for pages whose places overlap.
    fn fill_slowly(&self, html: &str) -> String {
        let mut out = html.replacen(" · Keydrop</title>", &self.title, 1);
        for (marker, with) in [
            ("brand", &self.header),
            ("head", &self.head),
            ("footer", &self.footer),
        ] {
            let (open, close) = (
                format!("<!--kd:{marker}-->"),
                format!("<!--/kd:{marker}-->"),
            );
            if let (Some(a), Some(b)) = (out.find(&open), out.find(&close)) {
                if a < b {
                    out.replace_range(a..b + close.len(), with);
                }
            }
        }
        out
    }
}

/// `/brand/…`: the logo and the colour stylesheet, from memory.
pub fn router(assets: Arc<BrandAssets>) -> Router {
    Router::new().route(
        "/brand/{file}",
        get(
            move |axum::extract::Path(file): axum::extract::Path<String>| {
                let assets = assets.clone();
                async move { serve(&assets, &file) }
            },
        ),
    )
}

fn serve(assets: &BrandAssets, file: &str) -> Response {
    let immutable = HeaderValue::from_static("public, max-age=31536000, immutable");
    if format!("/brand/{file}") == assets.css_path {
        return (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/css; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, immutable),
            ],
            assets.css.clone(),
        )
            .into_response();
    }
    match &assets.logo {
        Some(logo) if format!("/brand/{file}") == logo.path() => {
            let mut resp = (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(logo.kind.content_type()),
                    ),
                    (header::CACHE_CONTROL, immutable),
                ],
                logo.bytes.clone(),
            )
                .into_response();
            // An SVG opened on its own is a document: it gets its own policy,
            // which the security layer keeps (it only sets defaults).
            resp.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'"),
            );
            resp
        }
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Largest page the layer rewrites; anything bigger passes untouched.
const MAX_PAGE: usize = 2 * 1024 * 1024;

/// The response layer: HTML pages get the brand filled in (the public
/// listener only: the internal listener's pages are the console's own).
pub async fn layer(assets: Arc<BrandAssets>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if !is_html {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    let html = match std::str::from_utf8(&bytes) {
        Ok(s) => assets.fill(s),
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_fill_is_the_place_by_place_fill() {
        let brand = Brand {
            name: "Acme <Co> & \"Sons\"".into(),
            support_email: Some("help@acme.example".into()),
            privacy_url: Some("https://acme.example/privacy".into()),
            ..Brand::default()
        };
        let assets = BrandAssets::new(&brand);
        let page = "<title>Receipt · Keydrop</title><!--kd:head--><!--/kd:head--></head>\
                    <header><!--kd:brand--><span>Keydrop</span><!--/kd:brand--></header>\
                    <main>· Keydrop</title> <!--kd:brand--></main>\
                    <footer><!--kd:footer--><!--/kd:footer--></footer>";
        let filled = assets.fill(page);
        assert_eq!(filled, assets.fill_slowly(page));
        assert!(filled.contains("Acme &#60;Co&#62;"), "{filled}");
        assert!(filled.contains("help@acme.example"), "{filled}");
        assert!(!filled.contains("<span>Keydrop</span>"), "{filled}");
        // Pages without places, with a place missing its end, or with places
        // out of order are filled the same way too.
        for page in [
            "plain",
            "<!--kd:head-->x",
            "<!--/kd:footer--><!--kd:footer-->",
            "<!--kd:brand--><!--kd:head--><!--/kd:brand--><!--/kd:head-->",
        ] {
            assert_eq!(assets.fill(page), assets.fill_slowly(page), "{page}");
        }
    }
}
