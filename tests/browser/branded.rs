//! The operator's brand in a real browser: a branded drop page, receipt and
//! error page, with screenshots in `target/browser-artifacts/`.

use crate::driver::{Browser, Screen};
use crate::drop_pages::{fill, h1_after_submit};
use crate::helpers::TestApp;
use sqlx::PgPool;

#[sqlx::test]
async fn the_drop_page_receipt_and_error_page_show_the_operators_brand(db: PgPool) {
    let dir = std::env::temp_dir().join(format!("keydrop-brand-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let logo = dir.join("logo.svg");
    std::fs::write(
        &logo,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="15" fill="#0b5394"/><path d="M9 17l5 5 9-11" stroke="#fff" stroke-width="3" fill="none"/></svg>"##,
    )
    .unwrap();
    let b = Browser::start(Screen::Desktop).await;
    let app = TestApp::builder(db)
        .with_env([
            ("KEYDROP_BRAND_NAME", "Acme Data".to_owned()),
            ("KEYDROP_BRAND_LOGO_FILE", logo.display().to_string()),
            ("KEYDROP_BRAND_COLOR", "#0b5394".to_owned()),
            ("KEYDROP_SUPPORT_EMAIL", "help@acme.example".to_owned()),
            (
                "KEYDROP_PRIVACY_URL",
                "http://127.0.0.1:9/privacy".to_owned(),
            ),
        ])
        .spawn()
        .await;
    let (_, link) = app.create_link("generic").await;
    b.goto(&link).await;
    assert_eq!(b.text("header.site .brand").await.trim(), "Acme Data");
    assert!(b.text("footer.site").await.contains("help@acme.example"));
    let logo_loaded = b
        .eval("return document.querySelector('header.site .brand img').naturalWidth > 0")
        .await;
    assert_eq!(
        logo_loaded,
        serde_json::json!(true),
        "the logo loads under the page's CSP"
    );
    b.assert_clean_console("branded drop page", None).await;
    b.screenshot("branded-drop").await;

    let h1 = b.text("h1").await;
    fill(&b, "label", "warehouse").await;
    fill(&b, "secret", "a-branded-secret-value").await;
    fill(&b, "submitter_name", "Jane Admin").await;
    fill(&b, "submitter_email", "jane@acme.example.com").await;
    b.find("form.drop button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    h1_after_submit(&b, &h1).await;
    assert_eq!(b.text("header.site .brand").await.trim(), "Acme Data");
    b.screenshot("branded-receipt").await;

    b.goto(&link).await;
    assert_eq!(b.text("header.site .brand").await.trim(), "Acme Data");
    assert!(b
        .text("footer.site")
        .await
        .contains("Secure key drop by Keydrop"));
    b.screenshot("branded-error").await;
    b.close().await;
}
