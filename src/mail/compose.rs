//! The emails themselves: plain text and HTML (askama templates under
//! `templates/mail/`), in the operator's brand.
//!
//! Header values come only from parsed types (`Email`, `Mailbox`) and checked
//! text (organization, brand name: no control characters), and lettre encodes
//! them; a CR/LF never reaches a header.

use crate::domain::brand::Brand;
use askama::Template;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use uuid::Uuid;

/// The drop-link email (or its reminder). Holds the link: never log it.
pub struct LinkMail<'a> {
    pub brand: &'a Brand,
    pub logo_url: Option<String>,
    pub reminder: bool,
    pub organization: &'a str,
    pub provider_name: &'a str,
    pub short_name: &'a str,
    pub credential: &'a str,
    pub note: Option<&'a str>,
    pub asked_by: &'a str,
    pub url: &'a str,
    pub expires: String,
    pub max_uses: i32,
}

#[derive(Template)]
#[template(path = "mail/link.txt")]
struct LinkText<'a> {
    m: &'a LinkMail<'a>,
}

#[derive(Template)]
#[template(path = "mail/link.html")]
struct LinkHtml<'a> {
    m: &'a LinkMail<'a>,
}

/// A note to staff: metadata only.
pub struct StaffMail<'a> {
    pub brand: &'a Brand,
    pub headline: String,
    pub organization: &'a str,
    pub provider: &'a str,
    pub check_status: &'a str,
    pub missing: Vec<String>,
    pub submitter_email: Option<&'a str>,
    pub secret_id: Uuid,
    pub console_url: Option<String>,
}

#[derive(Template)]
#[template(path = "mail/staff.txt")]
struct StaffText<'a> {
    m: &'a StaffMail<'a>,
}

#[derive(Template)]
#[template(path = "mail/staff.html")]
struct StaffHtml<'a> {
    m: &'a StaffMail<'a>,
}

/// Why a message could not be built (a bug or bad stored data, not the relay).
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("rendering the email failed: {0}")]
    Render(#[from] askama::Error),
    #[error("building the email failed: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("an address is not valid: {0}")]
    Address(#[from] lettre::address::AddressError),
}

impl LinkMail<'_> {
    pub fn subject(&self) -> String {
        let what = format!("{} credential for {}", self.short_name, self.organization);
        if self.reminder {
            format!("Reminder: {} is waiting for the {what}", self.brand.name)
        } else {
            format!("{} asks for the {what}", self.brand.name)
        }
    }

    pub fn message(&self, from: &Mailbox, to: &str) -> Result<Message, ComposeError> {
        build(
            from,
            &[to],
            &self.subject(),
            self.brand,
            LinkText { m: self }.render()?,
            LinkHtml { m: self }.render()?,
        )
    }
}

impl StaffMail<'_> {
    pub fn message(&self, from: &Mailbox, to: &[&str]) -> Result<Message, ComposeError> {
        let subject = format!("{}: {}", self.brand.name, self.headline);
        build(
            from,
            to,
            &subject,
            self.brand,
            StaffText { m: self }.render()?,
            StaffHtml { m: self }.render()?,
        )
    }
}

fn build(
    from: &Mailbox,
    to: &[&str],
    subject: &str,
    brand: &Brand,
    text: String,
    html: String,
) -> Result<Message, ComposeError> {
    let mut b = Message::builder().from(from.clone()).subject(subject);
    for addr in to {
        b = b.to(Mailbox::new(None, addr.parse()?));
    }
    if let Some(support) = &brand.support_email {
        b = b.reply_to(Mailbox::new(Some(brand.name.clone()), support.parse()?));
    }
    Ok(b.multipart(
        MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html),
            ),
    )?)
}
