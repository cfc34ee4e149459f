//! The drop page in a desktop browser: happy path, a validation error,
//! keyboard-only use, the check-again button and the error pages.

use crate::driver::{Browser, Screen};
use crate::fakes::{Behaviour, Fake, GH_CLIENT_ID, GH_CLIENT_SECRET};
use crate::helpers::TestApp;
use fantoccini::key::Key;
use serde_json::{json, Value};
use sqlx::PgPool;

/// The app with every provider pointed at a local fake, plus a browser.
pub async fn setup(db: PgPool, behaviour: Behaviour, screen: Screen) -> (TestApp, Fake, Browser) {
    let browser = Browser::start(screen).await;
    let fake = Fake::start(behaviour).await;
    let app = TestApp::builder(db).with_fake(&fake).spawn().await;
    (app, fake, browser)
}

/// Types into a field found by id (WebDriver focuses it first). Not a click:
/// under phone emulation a tap's coordinates can land on the element the page
/// scrolled to instead.
pub async fn fill(b: &Browser, id: &str, text: &str) {
    let input = b.find(&format!("#{id}")).await;
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// Waits for the next page after a submit and returns its `<h1>`.
pub async fn h1_after_submit(b: &Browser, previous: &str) -> String {
    for _ in 0..100 {
        // While the page is being replaced, the old <h1> may go stale: retry.
        if let Ok(e) = b.client.find(fantoccini::Locator::Css("h1")).await {
            if let Ok(h1) = e.text().await {
                if h1 != previous {
                    return h1;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the page did not change after submitting");
}

async fn reveal_fields(app: &TestApp, id: &str) -> Value {
    let resp = app.reveal(id).await;
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["fields"].clone()
}

#[sqlx::test]
async fn a_customer_admin_reads_the_steps_submits_and_sees_a_verified_receipt(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    let (_, link) = app.create_link("greenhouse").await;
    b.goto(&link).await;

    let h1 = b.text("h1").await;
    assert!(h1.starts_with("Share your Greenhouse"), "{h1}");
    assert!(b.text(".lead").await.contains("Acme Corp"));
    let steps = b
        .client
        .find_all(fantoccini::Locator::Css(".steps ol li"))
        .await
        .unwrap();
    assert!(steps.len() >= 3, "numbered steps are shown");
    assert!(b.text(".steps").await.contains("Dev Center"));
    let perms = b.text(".checklist").await;
    assert!(
        perms.contains("Candidates → List candidates")
            && perms.contains("User roles → List user roles"),
        "{perms}"
    );
    b.assert_clean_console("drop page", None).await;
    b.screenshot("drop-greenhouse").await;

    fill(&b, "client_id", GH_CLIENT_ID).await;
    fill(&b, "client_secret", GH_CLIENT_SECRET).await;
    fill(&b, "submitter_name", "Jane Admin").await;
    fill(&b, "submitter_email", "jane@acme.example.com").await;
    b.find("form.drop button[type=submit]")
        .await
        .click()
        .await
        .unwrap();

    assert_eq!(
        h1_after_submit(&b, &h1).await,
        "Thank you, your credential was received"
    );
    let receipt = b.text(".receipt").await;
    assert!(receipt.contains("Greenhouse"), "{receipt}");
    assert!(
        receipt.contains(&GH_CLIENT_SECRET[GH_CLIENT_SECRET.len() - 4..]),
        "fingerprint: {receipt}"
    );
    assert_eq!(b.text(".check h2").await, "Verified");
    let body = b.text("body").await;
    assert!(
        !body.contains(GH_CLIENT_SECRET),
        "the receipt never shows the secret"
    );
    b.assert_clean_console("receipt", None).await;
    b.screenshot("receipt-verified").await;

    // What the browser sent is exactly what staff get back.
    let reference = b.text(".receipt dd code").await;
    let fields = reveal_fields(&app, &reference).await;
    assert_eq!(
        fields,
        json!({ "client_id": GH_CLIENT_ID, "client_secret": GH_CLIENT_SECRET })
    );

    // The link is used up: reloading it shows the 410 page, not the form.
    b.goto(&link).await;
    assert!(b
        .client
        .find(fantoccini::Locator::Css("form.drop"))
        .await
        .is_err());
    b.assert_clean_console("used link", Some(410)).await;
    b.screenshot("link-used").await;
    b.close().await;
}

#[sqlx::test]
async fn a_wrong_email_is_explained_inline_and_typed_values_are_kept_except_secrets(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    let (_, link) = app.create_link("greenhouse").await;
    b.goto(&link).await;
    let h1 = b.text("h1").await;

    fill(&b, "client_id", GH_CLIENT_ID).await;
    fill(&b, "client_secret", GH_CLIENT_SECRET).await;
    fill(&b, "user_id", "4242").await;
    fill(&b, "submitter_name", "Jane <b>Admin</b>").await;
    fill(&b, "submitter_email", "jane.acme.example.com").await;
    b.find("form.drop button[type=submit]")
        .await
        .click()
        .await
        .unwrap();

    // The same page again (422), with a summary and an inline message.
    let summary = loop {
        if let Ok(e) = b
            .client
            .find(fantoccini::Locator::Css("#error-summary"))
            .await
        {
            break e.text().await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(b.text("h1").await, h1);
    assert!(summary.contains("email"), "{summary}");
    let inline = b.text("#submitter_email-error").await;
    assert!(inline.contains("name@example.com"), "{inline}");
    let described_by = b
        .find("#submitter_email")
        .await
        .attr("aria-describedby")
        .await
        .unwrap();
    assert!(
        described_by
            .unwrap_or_default()
            .contains("submitter_email-error"),
        "the message is tied to the input"
    );
    let invalid = b
        .find("#submitter_email")
        .await
        .attr("aria-invalid")
        .await
        .unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    assert_eq!(
        b.value("#client_id").await,
        GH_CLIENT_ID,
        "typed values are kept"
    );
    assert_eq!(b.value("#user_id").await, "4242");
    assert_eq!(
        b.value("#submitter_name").await,
        "Jane <b>Admin</b>",
        "kept verbatim, rendered as text"
    );
    assert_eq!(b.value("#submitter_email").await, "jane.acme.example.com");
    assert_eq!(
        b.value("#client_secret").await,
        "",
        "secrets are never echoed back"
    );
    assert!(!b.client.source().await.unwrap().contains(GH_CLIENT_SECRET));
    b.assert_clean_console("drop page with errors", Some(422))
        .await;
    b.screenshot("drop-invalid-email").await;

    // The summary links to the field.
    b.find("#error-summary a").await.click().await.unwrap();
    assert_eq!(b.focused().await, "submitter_email");

    // Fixing the email and pasting the secret again goes through.
    fill(&b, "submitter_email", "jane@acme.example.com").await;
    fill(&b, "client_secret", GH_CLIENT_SECRET).await;
    b.find("form.drop button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    assert_eq!(
        h1_after_submit(&b, &h1).await,
        "Thank you, your credential was received"
    );
    let fields = reveal_fields(&app, &b.text(".receipt dd code").await).await;
    assert_eq!(fields["client_secret"], GH_CLIENT_SECRET);
    assert_eq!(fields["user_id"], "4242");
    b.close().await;
}

#[sqlx::test]
async fn the_drop_can_be_completed_with_the_keyboard_alone(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    let (_, link) = app.create_link("greenhouse").await;
    b.goto(&link).await;
    let h1 = b.text("h1").await;

    // Every visible input has exactly one <label for> naming it.
    let unlabeled = b
        .eval(
            "return Array.from(document.querySelectorAll('input:not([type=hidden])'))
                .filter(i => i.labels.length !== 1 || !i.labels[0].textContent.trim())
                .map(i => i.id || i.name);",
        )
        .await;
    assert_eq!(unlabeled, json!([]), "inputs without a label");
    assert_eq!(b.text("label[for=user_id]").await, "User ID (optional)");

    // Tab order follows the page: the provider's fields, then about you, then the button.
    let mut order = Vec::new();
    for _ in 0..6 {
        b.keys(&Key::Tab.to_string()).await;
        order.push(b.focused().await);
    }
    assert_eq!(
        order,
        [
            "client_id",
            "client_secret",
            "user_id",
            "submitter_name",
            "submitter_email",
            "button"
        ]
    );

    // From a fresh load, with keys only: Tab into each field, type, Enter submits.
    b.goto(&link).await;
    let tab = Key::Tab.to_string();
    b.keys(&format!(
        "{tab}{GH_CLIENT_ID}{tab}{GH_CLIENT_SECRET}{tab}{tab}Keyboard User{tab}kb@acme.example.com"
    ))
    .await;
    assert_eq!(b.focused().await, "submitter_email");
    b.screenshot("drop-keyboard-filled").await;
    b.keys(&Key::Enter.to_string()).await;

    assert_eq!(
        h1_after_submit(&b, &h1).await,
        "Thank you, your credential was received"
    );
    let fields = reveal_fields(&app, &b.text(".receipt dd code").await).await;
    assert_eq!(fields["client_secret"], GH_CLIENT_SECRET);
    b.assert_clean_console("keyboard flow", None).await;
    b.close().await;
}

#[sqlx::test]
async fn missing_permissions_are_listed_and_check_again_turns_the_receipt_verified(db: PgPool) {
    let missing = Behaviour {
        denied: vec!["offers".into(), "eeoc".into()],
        ..Default::default()
    };
    let (app, fake, b) = setup(db, missing, Screen::Desktop).await;
    let (_, link) = app.create_link("greenhouse").await;
    b.goto(&link).await;
    let h1 = b.text("h1").await;
    fill(&b, "client_id", GH_CLIENT_ID).await;
    fill(&b, "client_secret", GH_CLIENT_SECRET).await;
    fill(&b, "submitter_name", "Jane Admin").await;
    fill(&b, "submitter_email", "jane@acme.example.com").await;
    b.find("form.drop button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let receipt_h1 = h1_after_submit(&b, &h1).await;

    assert_eq!(b.text(".check h2").await, "Some permissions are missing");
    let listed = b.text(".check .checklist").await;
    assert!(
        listed.contains("Offers → List offers")
            && listed.contains("EEOC → List EEOC")
            && !listed.contains("List jobs"),
        "{listed}"
    );
    b.assert_clean_console("receipt with missing permissions", None)
        .await;
    b.screenshot("receipt-missing-permissions").await;

    // The admin fixes the permissions in Greenhouse and presses the button.
    fake.set(|b| b.denied.clear());
    b.find("form.recheck button").await.click().await.unwrap();
    for _ in 0..100 {
        if b.text(".check h2").await == "Verified" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(b.text(".check h2").await, "Verified");
    assert_eq!(b.text("h1").await, receipt_h1);
    assert_eq!(
        app.count("secrets").await,
        1,
        "checking again submits nothing new"
    );
    b.assert_clean_console("receipt after check again", None)
        .await;
    b.screenshot("receipt-rechecked").await;
    b.close().await;
}

#[sqlx::test]
async fn unknown_revoked_and_expired_links_show_helpful_pages(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    let unknown = format!("{}/d/kdl_{}", app.public, "A".repeat(43));
    b.goto(&unknown).await;
    assert!(!b.text("h1").await.is_empty());
    assert!(b
        .client
        .find(fantoccini::Locator::Css("form"))
        .await
        .is_err());
    b.assert_clean_console("unknown link", Some(404)).await;
    b.screenshot("link-unknown").await;

    let (id, link) = app.create_link("generic").await;
    assert!(app
        .delete(&format!("/api/v1/requests/{id}"), &app.admin)
        .await
        .status()
        .is_success());
    b.goto(&link).await;
    let revoked = b.text("main").await;
    assert!(revoked.contains("cancelled"), "{revoked}");
    b.assert_clean_console("revoked link", Some(410)).await;
    b.screenshot("link-revoked").await;

    let (id, link) = app.create_link("generic").await;
    sqlx::query("UPDATE drop_requests SET created_at = now() - interval '2 minutes', expires_at = now() - interval '1 minute' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.db)
        .await
        .unwrap();
    b.goto(&link).await;
    assert!(b.text("main").await.to_lowercase().contains("expired"));
    b.assert_clean_console("expired link", Some(410)).await;
    b.screenshot("link-expired").await;
    b.close().await;
}

#[sqlx::test]
async fn every_providers_drop_page_shows_its_steps_permissions_and_fields(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    for provider in keydrop::providers::PROVIDERS {
        let (_, link) = app.create_link(provider.id).await;
        b.goto(&link).await;
        let steps = b.text(".steps").await;
        for step in provider.steps.iter().take(2) {
            // The first words of each step, as the provider's UI names things.
            let start: String = step.chars().take(30).collect();
            assert!(steps.contains(start.trim()), "{}: {start}", provider.id);
        }
        if !provider.permissions.is_empty() {
            let listed = b.text(".checklist").await;
            for p in provider.permissions {
                assert!(listed.contains(p.label), "{}: {}", provider.id, p.label);
            }
        }
        for f in provider.fields {
            b.find(&format!("#{}", f.name)).await;
        }
        b.assert_clean_console(provider.id, None).await;
        let shot = b.screenshot(&format!("drop-page-{}", provider.id)).await;
        assert!(shot.exists(), "{}", shot.display());
    }
}
