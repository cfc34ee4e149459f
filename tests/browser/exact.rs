//! What the browser sends is what is stored (issue 19): long and multi-line
//! pastes reach the database unchanged or are refused with a message, secret
//! fields are masked without being password fields, user text cannot reverse
//! the page, long names wrap, and a browser without cookies is told so.

use crate::driver::{Browser, Screen};
use crate::drop_pages::{fill, h1_after_submit, setup};
use crate::fakes::Behaviour;
use crate::helpers::TestApp;
use serde_json::{json, Value};
use sqlx::PgPool;

/// Waits until an element matching `css` is on the page (after a submit).
async fn wait_for(b: &Browser, css: &str) {
    for _ in 0..100 {
        if b.client.find(fantoccini::Locator::Css(css)).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{css} never appeared");
}

async fn submit(b: &Browser) {
    b.find("form.drop button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

/// Fills the generic form around a pasted secret and submits it.
async fn send_generic(b: &Browser, secret: &str) {
    fill(b, "label", "Signing key, production").await;
    b.paste("#secret", secret).await;
    fill(b, "submitter_name", "Jane Admin").await;
    fill(b, "submitter_email", "jane@acme.example.com").await;
    submit(b).await;
}

async fn revealed_secret(app: &TestApp, reference: &str) -> String {
    let resp = app.reveal(reference).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["fields"]["secret"].as_str().unwrap().to_owned()
}

#[sqlx::test]
async fn a_long_and_a_multi_line_paste_reach_the_database_exactly(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    // 5,000 characters: more than the old maxlength of 4,096 would let through.
    let long: String = (0..4996)
        .map(|i| char::from(b'A' + (i % 26) as u8))
        .chain("WXYZ".chars())
        .collect();
    let (_, link) = app.create_link("generic").await;
    b.goto(&link).await;
    let h1 = b.text("h1").await;
    assert_eq!(h1, "Share your credential");
    let title = b.client.title().await.unwrap();
    assert!(!title.contains("credential credential"), "{title}");
    send_generic(&b, &long).await;
    assert_eq!(
        h1_after_submit(&b, &h1).await,
        "Thank you, your credential was received"
    );
    let receipt = b.text(".receipt").await;
    assert!(receipt.contains("5,000 characters received"), "{receipt}");
    b.screenshot("receipt-5000-characters").await;
    let reference = b.text(".receipt dd code").await;
    assert_eq!(revealed_secret(&app, &reference).await, long);

    // Three lines, with spaces at both ends: a textarea keeps the line breaks
    // (a browser sends each as CR LF) and the server keeps the spaces.
    let lines = [
        "  -----BEGIN KEY-----",
        "line-two-BBBB",
        "-----END KEY-----  ",
    ];
    let (_, link) = app.create_link("generic").await;
    b.goto(&link).await;
    send_generic(&b, &lines.join("\n")).await;
    assert_eq!(
        h1_after_submit(&b, &h1).await,
        "Thank you, your credential was received"
    );
    let reference = b.text(".receipt dd code").await;
    let stored = revealed_secret(&app, &reference).await;
    assert_eq!(stored, lines.join("\r\n"));
    let expected_length = lines.join("\r\n").chars().count();
    assert!(b
        .text(".receipt")
        .await
        .contains(&format!("{expected_length} characters received")));
    b.close().await;
}

#[sqlx::test]
async fn an_over_long_paste_is_refused_with_its_length_and_nothing_else_is_lost(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    let (_, link) = app.create_link("generic").await;
    b.goto(&link).await;
    send_generic(&b, &"k".repeat(20_000)).await;
    wait_for(&b, "#error-summary").await;
    let errors = b.text("#error-summary").await;
    assert!(
        errors.contains("we received 20,000 characters") && errors.contains("16,384"),
        "{errors}"
    );
    // The non-secret values are kept; the secret is never sent back.
    assert_eq!(b.value("#label").await, "Signing key, production");
    assert_eq!(b.value("#submitter_name").await, "Jane Admin");
    assert_eq!(b.value("#submitter_email").await, "jane@acme.example.com");
    assert_eq!(b.value("#secret").await, "");
    b.assert_clean_console("too long", Some(422)).await;

    // A single-line secret input cuts nothing either: 600 characters arrive
    // and are refused by the server, where maxlength=512 used to cut them.
    let (_, link) = app.create_link("greenhouse").await;
    b.goto(&link).await;
    fill(&b, "client_id", "client-id-123").await;
    b.paste("#client_secret", &"s".repeat(600)).await;
    fill(&b, "submitter_name", "Jane Admin").await;
    fill(&b, "submitter_email", "jane@acme.example.com").await;
    submit(&b).await;
    wait_for(&b, "#error-summary").await;
    let errors = b.text("#error-summary").await;
    assert!(errors.contains("we received 600 characters"), "{errors}");
    assert_eq!(app.count("secrets").await, 0);
    b.close().await;
}

#[sqlx::test]
async fn secret_fields_are_masked_text_that_password_managers_leave_alone(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    for (provider, secret_field) in [("generic", "secret"), ("lever", "api_key")] {
        let (_, link) = app.create_link(provider).await;
        b.goto(&link).await;
        // Chromium's password manager acts on type=password fields only (it
        // ignores autocomplete="off" on them): with none on the page it has
        // nothing to offer to save or to fill.
        let info = b
            .eval(&format!(
                "const e = document.getElementById('{secret_field}');
                 return [document.querySelectorAll('input[type=password]').length,
                         e.tagName, e.type, e.getAttribute('autocomplete'),
                         getComputedStyle(e).webkitTextSecurity,
                         document.querySelectorAll('[maxlength]').length];"
            ))
            .await;
        let expect_tag = if provider == "generic" {
            json!(["TEXTAREA", "textarea"])
        } else {
            json!(["INPUT", "text"])
        };
        assert_eq!(info[0], 0, "{provider}: {info}");
        assert_eq!(json!([info[1], info[2]]), expect_tag, "{provider}: {info}");
        assert_eq!(info[3], "off", "{provider}: {info}");
        assert_eq!(info[4], "disc", "{provider}: masked: {info}");
        assert_eq!(info[5], 0, "{provider}: no maxlength: {info}");
    }
    b.close().await;
}

#[sqlx::test]
async fn a_right_to_left_override_cannot_reverse_the_rest_of_the_page(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    let (id, link) = app.create_link("generic").await;
    // The API refuses such a name now; rows stored before may still hold one.
    sqlx::query("UPDATE drop_requests SET organization = $1 WHERE id = $2::uuid")
        .bind("Ali\u{202e}gnp.exe")
        .bind(&id)
        .execute(&app.db)
        .await
        .unwrap();
    b.goto(&link).await;
    // "expires" after the name must still read left to right: its first
    // letter left of its last.
    let pos = b
        .eval(
            "const lead = document.querySelector('.lead');
             const w = document.createTreeWalker(lead, NodeFilter.SHOW_TEXT);
             let n; while ((n = w.nextNode()) && !n.data.includes('expires')) {}
             const i = n.data.indexOf('expires');
             const at = k => { const r = document.createRange(); r.setStart(n, i + k); r.setEnd(n, i + k + 1); return r.getBoundingClientRect().left; };
             return [at(0), at(6), lead.querySelector('bdi').textContent];",
        )
        .await;
    assert!(
        pos[0].as_f64().unwrap() < pos[1].as_f64().unwrap(),
        "the sentence after the name renders reversed: {pos}"
    );
    assert_eq!(pos[2], "Ali\u{202e}gnp.exe");
    b.screenshot("drop-rtl-override-isolated").await;

    // A name typed with an override is refused on the form.
    let (_, link) = app.create_link("generic").await;
    b.goto(&link).await;
    fill(&b, "label", "prod").await;
    b.paste("#secret", "s3cr3t-value").await;
    fill(&b, "submitter_name", "Ali\u{202e}gnp.exe").await;
    fill(&b, "submitter_email", "ali@acme.example.com").await;
    submit(&b).await;
    wait_for(&b, "#error-summary").await;
    assert!(b
        .text("#error-summary")
        .await
        .contains("invisible formatting"));
    assert_eq!(app.count("secrets").await, 0);
    b.close().await;
}

#[sqlx::test]
async fn a_200_character_name_wraps_at_320_and_1280_pixels(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    let org = format!("Acme{}", "x".repeat(196));
    let (_, link) = app
        .create_link_with(json!({ "organization": org, "provider": "generic" }))
        .await;
    let overflow =
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];";
    b.goto(&link).await;
    for width in [320, 1280] {
        b.emulate_width(width).await;
        let w = b.eval(overflow).await;
        assert!(
            w[0].as_u64() <= w[1].as_u64(),
            "drop page at {width}px: {w}"
        );
        b.screenshot(&format!("drop-long-name-{width}")).await;
    }
    send_generic(&b, "s3cr3t-value-long-name").await;
    wait_for(&b, ".receipt").await;
    for width in [320, 1280] {
        b.emulate_width(width).await;
        let w = b.eval(overflow).await;
        assert!(w[0].as_u64() <= w[1].as_u64(), "receipt at {width}px: {w}");
        b.screenshot(&format!("receipt-long-name-{width}")).await;
    }
    b.close().await;
}

#[sqlx::test]
async fn a_browser_that_keeps_no_cookies_is_asked_to_allow_them(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    let (_, link) = app.create_link("generic").await;
    b.goto(&link).await;
    let h1 = b.text("h1").await;
    // As if cookies were blocked: the cookie set with the page never comes back.
    b.client.delete_all_cookies().await.unwrap();
    send_generic(&b, "s3cr3t-no-cookie").await;
    assert_eq!(
        h1_after_submit(&b, &h1).await,
        "Please allow cookies for this site"
    );
    assert!(b.text("main").await.contains("allow cookies for this site"));
    assert_eq!(app.count("secrets").await, 0);
    b.close().await;
}

/// Issue 17: a double-click on "Encrypt and send" ends on the receipt, with
/// one secret stored (the script disables the button; the server would
/// answer a repeat with the same receipt anyway).
#[sqlx::test]
async fn a_double_click_on_send_ends_on_the_receipt_with_one_secret_stored(db: PgPool) {
    let (app, _fake, b) = setup(db, Behaviour::default(), Screen::Desktop).await;
    let (_, link) = app.create_link("generic").await;
    b.goto(&link).await;
    let h1 = b.text("h1").await;
    fill(&b, "label", "Signing key, production").await;
    b.paste("#secret", "double-click-secret-0123456789").await;
    fill(&b, "submitter_name", "Jane Admin").await;
    fill(&b, "submitter_email", "jane@acme.example.com").await;
    let button = b.find("form.drop button[type=submit]").await;
    // Two clicks in a row, as a double-click delivers them.
    b.eval(
        "const s = document.querySelector('form.drop button[type=submit]'); s.click(); s.click(); return true;",
    )
    .await;
    drop(button);
    assert_eq!(
        h1_after_submit(&b, &h1).await,
        "Thank you, your credential was received"
    );
    let url = b.client.current_url().await.unwrap();
    assert!(url.path().starts_with("/r/"), "{url}");
    assert_eq!(app.count("secrets").await, 1);
    // Reloading the receipt shows it again (a GET, no resubmission prompt).
    b.client.refresh().await.unwrap();
    assert_eq!(
        b.text("h1").await,
        "Thank you, your credential was received"
    );
    assert_eq!(app.count("secrets").await, 1);
    b.close().await;
}
