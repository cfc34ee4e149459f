//! Email from the staff console (real OpenBao sign-in, real aiosmtpd with
//! STARTTLS): the "email it" box, the email's state on the list, the resend
//! button, and the notes its creator gets about their link.

use crate::fakes::{Behaviour, Fake, GH_CLIENT_ID, GH_CLIENT_SECRET};
use crate::helpers::reference_from;
use crate::smtp::SmtpServer;
use crate::support::console::{csrf, spawn_console_with, Console};
use crate::support::openbao::ADMIN;
use reqwest::{Client, StatusCode};
use sqlx::PgPool;

/// Posts the console's new-link form with `fields`.
async fn create(c: &Console, browser: &Client, fields: &[(&str, &str)]) -> reqwest::Response {
    let (_, html) = c.page(browser, "/links").await;
    c.post(browser, "/links", &csrf(&html), fields).await
}

/// The list row of the link for `organization`.
async fn row(c: &Console, browser: &Client, organization: &str) -> String {
    let (status, html) = c.page(browser, "/links").await;
    assert_eq!(status, StatusCode::OK);
    let at = html.find(organization).expect("the link is listed");
    let start = html[..at].rfind("<tr").unwrap();
    let end = at + html[at..].find("</tr>").unwrap();
    html[start..end].to_owned()
}

/// Waits until the list shows the link's email as `want`.
async fn wait_row(c: &Console, browser: &Client, organization: &str, want: &str) -> String {
    let badge = format!("email-{want}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = row(c, browser, organization).await;
        if r.contains(&badge) {
            return r;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[sqlx::test]
async fn the_console_emails_a_link_shows_its_state_and_resends_it(db: PgPool) {
    let smtp = SmtpServer::start(&[]);
    let env = smtp
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let Some(c) = spawn_console_with(db, env).await else {
        return;
    };
    let admin = c.login(&ADMIN).await;
    let (_, page) = c.page(&admin, "/links").await;
    assert!(page.contains("Email the link to the customer"));

    // A header injection or a non-address: refused, naming the field, nothing stored.
    for bad in [
        "admin@globex.example\r\nBcc: thief@evil.example",
        "not an email",
    ] {
        let resp = create(
            &c,
            &admin,
            &[
                ("organization", "Globex"),
                ("provider", "generic"),
                ("send_to", bad),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        let html = resp.text().await.unwrap();
        assert!(html.contains("Email the link to the customer:"), "{html}");
    }
    assert_eq!(c.app.count("drop_requests").await, 0);

    let resp = create(
        &c,
        &admin,
        &[
            ("organization", "Globex"),
            ("provider", "generic"),
            ("note", "For the Q3 ingest."),
            ("send_to", "admin@globex.example"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let shown = resp.text().await.unwrap();
    assert!(shown.contains("queued for email to"), "{shown}");
    assert!(!shown.contains("/d/"), "the link is in the email only");

    let mail = smtp.wait_for(1).await.remove(0);
    assert_eq!(mail.rcpt_to, ["admin@globex.example"]);
    assert!(mail.text.contains(ADMIN.email), "the email says who asks");
    let link = mail.link().unwrap();
    let drop = c.app.browser.get(c.app.local(&link)).send().await.unwrap();
    assert_eq!(drop.status(), StatusCode::OK);
    assert!(drop.text().await.unwrap().contains("Globex"));

    // The list shows the state, then the resend button sends one more.
    let r = wait_row(&c, &admin, "Globex", "sent").await;
    assert!(r.contains("Resend email"), "{r}");
    assert!(!r.contains("/d/"), "the list never shows a link's URL");
    let id = &r[r.find("data-id=\"").unwrap() + 9..];
    let id = &id[..id.find('"').unwrap()];
    let (_, html) = c.page(&admin, "/links").await;
    let resp = c
        .post(&admin, &format!("/links/{id}/resend"), &csrf(&html), &[])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let again = smtp.wait_for(2).await.remove(1);
    assert_eq!(again.link().unwrap(), link);
    let resent = c.events("link.resent").await;
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].0, "oidc");
    assert_eq!(resent[0].2.as_deref(), Some(ADMIN.email));

    // A link shown in the console (not emailed) has no button and is refused.
    let resp = create(
        &c,
        &admin,
        &[("organization", "Plain Co"), ("provider", "generic")],
    )
    .await;
    assert!(resp.text().await.unwrap().contains("/d/kdl_"));
    let r = row(&c, &admin, "Plain Co").await;
    assert!(!r.contains("Resend email"), "{r}");
    let plain = &r[r.find("data-id=\"").unwrap() + 9..];
    let plain = &plain[..plain.find('"').unwrap()];
    let (_, html) = c.page(&admin, "/links").await;
    let resp = c
        .post(&admin, &format!("/links/{plain}/resend"), &csrf(&html), &[])
        .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(resp.text().await.unwrap().contains("never emailed"));
    assert_eq!(smtp.messages().len(), 2);
}

#[sqlx::test]
async fn the_links_creator_is_told_of_the_submission_and_the_failed_check_without_the_link(
    db: PgPool,
) {
    let smtp = SmtpServer::start(&[]);
    // The credential lacks a permission: the check at submission fails, and
    // so does the re-check.
    let fake = Fake::start(Behaviour {
        denied: vec!["users".into()],
        ..Default::default()
    })
    .await;
    let mut env: Vec<(String, String)> = smtp
        .env()
        .into_iter()
        .chain(fake.env())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.push(("KEYDROP_NOTIFY_EMAIL".into(), "ops@acme.example".into()));
    let Some(c) = spawn_console_with(db, env).await else {
        return;
    };
    let admin = c.login(&ADMIN).await;
    let resp = create(
        &c,
        &admin,
        &[
            ("organization", "Hooli"),
            ("provider", "greenhouse"),
            ("send_to", "admin@hooli.example"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let link = smtp.wait_for(1).await.remove(0).link().unwrap();
    let token = link[link.find("/d/").unwrap() + 3..].to_owned();
    let receipt = c
        .app
        .open_and_submit(
            &c.app.local(&link),
            &[
                ("submitter_name", "Gavin"),
                ("submitter_email", "gavin@hooli.example"),
                ("client_id", GH_CLIENT_ID),
                ("client_secret", GH_CLIENT_SECRET),
            ],
        )
        .await;
    assert_eq!(receipt.status(), StatusCode::OK);
    let reference = reference_from(&receipt.text().await.unwrap());

    // One note to KEYDROP_NOTIFY_EMAIL, one of its own to the creator.
    let all = smtp.wait_for(3).await;
    let notes: Vec<_> = all[1..].iter().collect();
    let mut to: Vec<_> = notes.iter().map(|m| m.rcpt_to.join(",")).collect();
    to.sort();
    assert_eq!(to, [ADMIN.email, "ops@acme.example"]);

    // The re-check fails again: a note to each once more.
    let resp = c
        .app
        .post(
            &format!("/api/v1/secrets/{reference}/check"),
            &c.app.admin,
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let all = smtp.wait_for(5).await;
    let checks: Vec<_> = all[3..].iter().collect();
    let mut to: Vec<_> = checks.iter().map(|m| m.rcpt_to.join(",")).collect();
    to.sort();
    assert_eq!(to, [ADMIN.email, "ops@acme.example"]);

    for note in notes.iter().chain(checks.iter()) {
        assert!(note.text.contains("Hooli") && note.text.contains(&reference));
        assert!(
            note.text.contains("missing_permissions") && note.text.contains("Missing permissions:"),
            "the check's result and what it lacks are named: {}",
            note.text
        );
        for bad in [
            GH_CLIENT_SECRET,
            GH_CLIENT_ID,
            token.as_str(),
            &token[4..],
            "/d/",
        ] {
            assert!(!note.raw.contains(bad), "a staff note holds {bad:?}");
        }
    }
}
