//! The drop pages on a 375 px wide phone: nothing wider than the screen.

use crate::driver::{Browser, Screen};
use crate::drop_pages::{fill, h1_after_submit, setup};
use crate::fakes::{Behaviour, GH_CLIENT_ID, GH_CLIENT_SECRET};

/// Asserts the page fits the phone's width (no horizontal scrolling) and
/// names the widest offenders when it does not.
async fn assert_fits_375(b: &Browser, page: &str) {
    let inner = b.eval("return window.innerWidth;").await;
    assert_eq!(inner, 375, "{page}: the viewport is a phone's");
    let scroll = b
        .eval("return document.documentElement.scrollWidth;")
        .await
        .as_u64()
        .unwrap();
    if scroll > 375 {
        let wide = b
            .eval(
                "return Array.from(document.querySelectorAll('body *'))
                    .filter(e => e.getBoundingClientRect().right > 375)
                    .slice(0, 10)
                    .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));",
            )
            .await;
        panic!("{page}: {scroll} px wide on a 375 px screen; too wide: {wide}");
    }
}

#[sqlx::test]
async fn drop_receipt_and_error_pages_fit_a_375px_phone(db: sqlx::PgPool) {
    let missing = Behaviour {
        denied: vec!["offers".into(), "custom_fields".into()],
        ..Default::default()
    };
    let (app, _fake, b) = setup(db, missing, Screen::Phone).await;
    let (_, link) = app.create_link("greenhouse").await;
    b.goto(&link).await;
    assert_fits_375(&b, "drop page").await;
    b.assert_clean_console("drop page (phone)", None).await;
    b.screenshot("phone-drop").await;

    // A validation error on the phone.
    let h1 = b.text("h1").await;
    fill(&b, "client_id", GH_CLIENT_ID).await;
    fill(&b, "submitter_name", "Jane Admin").await;
    fill(&b, "submitter_email", "not an email").await;
    b.find("form.drop button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    while b
        .client
        .find(fantoccini::Locator::Css("#error-summary"))
        .await
        .is_err()
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_fits_375(&b, "drop page with errors").await;
    b.assert_clean_console("drop page with errors (phone)", Some(422))
        .await;
    b.screenshot("phone-drop-invalid").await;

    fill(&b, "client_secret", GH_CLIENT_SECRET).await;
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
    assert_fits_375(&b, "receipt").await;
    b.assert_clean_console("receipt (phone)", None).await;
    b.screenshot("phone-receipt").await;

    b.goto(&link).await;
    assert_fits_375(&b, "used link").await;
    b.screenshot("phone-link-used").await;
    b.close().await;
}
