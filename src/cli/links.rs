//! `keydrop request create|list|revoke|resend`: drop links. With `KEYDROP_API_URL`
//! through the internal API; otherwise on the database, through the same
//! service functions as the API. `--json` prints the API's views either way.

use super::connect;
use super::remote::Remote;
use crate::http::api::views::{CreatedLink, EmailStatus, LinkList, LinkView, NewLink};
use crate::service::links::{self, LinkInput, RawLink, ResendError, RevokeError};
use crate::store::{audit::Actor, requests};
use anyhow::{bail, Context as _};
use chrono::Utc;
use clap::{Args, Subcommand};
use reqwest::Method;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum RequestCmd {
    /// Create a drop link; prints the URL alone.
    Create(CreateLink),
    /// List drop links, newest first.
    List {
        /// Print the list as JSON (`{"items":[…]}`, as the API answers).
        #[arg(long)]
        json: bool,
    },
    /// Revoke a drop link by id or by its URL (through the API: by id).
    Revoke {
        /// The link's id (printed by `request create`) or the drop link URL itself.
        link: String,
        /// Print the revoked link as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Email a link again, to the address its email went to (needs
    /// KEYDROP_SMTP_URL). Only a link that can still be used, was emailed,
    /// and whose email is not still queued. For another address: revoke it
    /// and create a new one with --send-to.
    Resend {
        /// The link's id (printed by `request create`).
        id: String,
        /// Print the link as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateLink {
    /// The customer organization, as shown on the drop page.
    #[arg(long)]
    org: String,
    /// The provider id (see `keydrop providers`), e.g. greenhouse or generic.
    #[arg(long)]
    provider: String,
    /// Lifetime such as 7d (default: KEYDROP_LINK_TTL, 7d).
    #[arg(long)]
    expires_in: Option<String>,
    /// How many submissions the link accepts (default 1).
    #[arg(long)]
    max_uses: Option<i64>,
    /// The customer admin's email address, for staff reference.
    #[arg(long)]
    contact: Option<String>,
    /// A note shown to the customer on the drop page.
    #[arg(long)]
    note: Option<String>,
    /// Email the link to this address (needs KEYDROP_SMTP_URL); the link is
    /// then not printed: it is in that email only, and stdout gets the link's id.
    #[arg(long, value_name = "EMAIL")]
    send_to: Option<String>,
    /// Print the created link as JSON instead of the bare URL.
    #[arg(long)]
    json: bool,
}

pub(super) async fn request(cmd: RequestCmd) -> anyhow::Result<()> {
    let (config, db) = connect().await?;
    match cmd {
        RequestCmd::Create(c) => {
            let input = LinkInput::parse(
                RawLink {
                    organization: &c.org,
                    provider: &c.provider,
                    expires_in: c.expires_in.as_deref(),
                    max_uses: c.max_uses,
                    contact_email: c.contact.as_deref(),
                    note: c.note.as_deref(),
                    send_to: c.send_to.as_deref(),
                },
                config.link_ttl,
            )
            .map_err(|e| anyhow::Error::msg(flag_names(&e)))?;
            if is_local(&config.public_url) {
                eprintln!(
                    "warning: this link points at {} (KEYDROP_PUBLIC_URL {}): a customer cannot \
                     open it. Set KEYDROP_PUBLIC_URL to the address customers reach.",
                    config.public_url.origin().ascii_serialization(),
                    if crate::config::public_url_is_set() {
                        "is local"
                    } else {
                        "is not set"
                    }
                );
            }
            if input.send_to.is_some() && !config.mail.enabled() {
                bail!("--send-to: email is off (KEYDROP_SMTP_URL is not set); create the link without --send-to and send the URL yourself");
            }
            // The token is sealed for the email under the ring's active KEK.
            let keyring = crate::config::load_keyring()?;
            let created =
                links::create(&db, &keyring, &config.public_url, &Actor::cli(), &input).await?;
            let mut link = LinkView::new(&created.request, Utc::now());
            if created.url.is_none() {
                link.email = Some(EmailStatus::Queued);
            }
            print_created(
                &CreatedLink {
                    link,
                    url: created.url,
                },
                c.json,
            )?;
        }
        RequestCmd::List { json } => {
            let now = Utc::now();
            let items = requests::list(&db, requests::Filter::default(), 1000)
                .await?
                .iter()
                .map(|r| LinkView::new(r, now))
                .collect();
            print_list(&LinkList { items }, json)?;
        }
        RequestCmd::Revoke { link, json } => {
            let id = match Uuid::parse_str(link.trim()) {
                Ok(id) => id,
                Err(_) => link_id_from_url(&db, &link).await?,
            };
            match links::revoke(&db, &Actor::cli(), id).await {
                Ok(r) => print_revoked(&LinkView::new(&r, Utc::now()), json)?,
                Err(RevokeError::Db(e)) => return Err(e.into()),
                Err(e) => bail!("{e}"),
            }
        }
        RequestCmd::Resend { id, json } => {
            let id = parse_link_id(&id)?;
            match links::resend(&db, &Actor::cli(), id, config.mail.enabled()).await {
                Ok(r) => {
                    let mut link = LinkView::new(&r.request, Utc::now());
                    link.email = Some(EmailStatus::Queued);
                    print_resent(&link, Some(&r.to), json)?;
                }
                Err(ResendError::Db(e)) => return Err(e.into()),
                Err(e) => bail!("{e}"),
            }
        }
    }
    Ok(())
}

/// A link id; the URL is refused (re-sending needs no token, and a URL on
/// the command line lands in shell history).
fn parse_link_id(raw: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| anyhow::anyhow!("give the link's id (see `keydrop request list`)"))
}

/// `to`: the address, when known here (the API answer does not name it).
fn print_resent(link: &LinkView, to: Option<&str>, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(link)?);
    } else {
        eprintln!(
            "drop link {} queued for email again to {}",
            link.id,
            to.unwrap_or("the address its email went to")
        );
    }
    Ok(())
}

/// The same commands through the internal API.
pub(super) async fn remote(cmd: RequestCmd, api: &Remote) -> anyhow::Result<()> {
    match cmd {
        RequestCmd::Create(c) => {
            let body = NewLink {
                organization: c.org,
                provider: c.provider,
                expires_in: c.expires_in,
                max_uses: c.max_uses,
                contact_email: c.contact,
                note: c.note,
                send_to: c.send_to,
            };
            let created: CreatedLink = api.call(Method::POST, "requests", &[], Some(&body)).await?;
            print_created(&created, c.json)?;
        }
        RequestCmd::List { json } => {
            let list: LinkList = api.get("requests", &[("limit", "1000".into())]).await?;
            print_list(&list, json)?;
        }
        RequestCmd::Revoke { link, json } => {
            let id = Uuid::parse_str(link.trim()).map_err(|_| {
                anyhow::anyhow!("through the API, give the link's id (see `keydrop request list`)")
            })?;
            let revoked: LinkView = api
                .call(Method::DELETE, &format!("requests/{id}"), &[], None::<&()>)
                .await?;
            print_revoked(&revoked, json)?;
        }
        RequestCmd::Resend { id, json } => {
            let id = parse_link_id(&id)?;
            let link: LinkView = api
                .call(
                    Method::POST,
                    &format!("requests/{id}/resend"),
                    &[],
                    None::<&()>,
                )
                .await?;
            print_resent(&link, None, json)?;
        }
    }
    Ok(())
}

/// The URL alone on stdout (what a script captures), the rest on stderr.
fn print_created(created: &CreatedLink, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(created)?);
    } else {
        let l = &created.link;
        let Some(url) = &created.url else {
            // Emailed: the link is in that email only; scripts get the id.
            eprintln!(
                "drop link {} for {} ({}) queued for email to {}; expires {}",
                l.id,
                l.organization,
                l.provider,
                l.contact_email.as_deref().unwrap_or("the customer"),
                l.expires_at.to_rfc3339(),
            );
            println!("{}", l.id);
            return Ok(());
        };
        eprintln!(
            "drop link {} for {} ({}), expires {}, {} use(s); send it to the customer admin:",
            l.id,
            l.organization,
            l.provider,
            l.expires_at.to_rfc3339(),
            l.max_uses
        );
        println!("{url}");
    }
    Ok(())
}

fn print_list(list: &LinkList, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(list)?);
        return Ok(());
    }
    for l in &list.items {
        println!(
            "{}  {:<8} {:<18} {:<30} uses {}/{}  expires {}",
            l.id,
            l.status.as_str(),
            l.provider,
            l.organization,
            l.use_count,
            l.max_uses,
            l.expires_at.to_rfc3339()
        );
    }
    Ok(())
}

fn print_revoked(link: &LinkView, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(link)?);
    } else {
        eprintln!("revoked drop link {}", link.id);
    }
    Ok(())
}

/// The id of the link a drop-link URL (`…/d/TOKEN`) opens. The token is
/// looked up by its hash, as the drop page does; it is never printed.
async fn link_id_from_url(db: &sqlx::PgPool, link: &str) -> anyhow::Result<Uuid> {
    let token = link
        .trim()
        .trim_end_matches('/')
        .rsplit_once("/d/")
        .map(|(_, t)| t)
        .and_then(crate::domain::DropToken::parse)
        .context("give the link's id (see `keydrop request list`) or its whole URL, …/d/TOKEN")?;
    match requests::find_by_token(db, &token.hash()).await? {
        Some(r) => Ok(r.id),
        None => bail!("no drop link has this URL"),
    }
}

/// Names the command-line flags in a link-validation message written for
/// the API (`expires_in: …` → `--expires-in: …`).
fn flag_names(message: &str) -> String {
    const FLAGS: [(&str, &str); 6] = [
        ("send_to", "--send-to"),
        ("organization", "--org"),
        ("expires_in", "--expires-in"),
        ("max_uses", "--max-uses"),
        ("contact_email", "--contact"),
        ("note", "--note"),
    ];
    for (api, flag) in FLAGS {
        if let Some(rest) = message.strip_prefix(api) {
            return format!("{flag}{rest}");
        }
    }
    if message.starts_with("unknown provider") {
        return format!("--provider: {message}");
    }
    message.to_owned()
}

/// Whether drop links under `base` point at this machine (localhost,
/// loopback or an unspecified address), so a customer could not open them.
fn is_local(base: &url::Url) -> bool {
    match base.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_errors_name_the_flags() {
        assert_eq!(
            flag_names("expires_in: \"x\" is not a duration"),
            "--expires-in: \"x\" is not a duration"
        );
        assert_eq!(
            flag_names("max_uses must be between 1 and 1000"),
            "--max-uses must be between 1 and 1000"
        );
        assert!(flag_names("unknown provider \"x\": use one of a").starts_with("--provider: "));
    }

    #[test]
    fn local_link_bases_are_recognised() {
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
            "http://0.0.0.0:8080",
        ] {
            assert!(is_local(&url::Url::parse(local).unwrap()), "{local}");
        }
        assert!(!is_local(
            &url::Url::parse("https://drop.example.com").unwrap()
        ));
    }
}
