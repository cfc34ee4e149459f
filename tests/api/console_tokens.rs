//! ID tokens no honest provider sends through Keydrop's code exchange,
//! presented to the console's relying party (`Oidc::verify_compact`, the
//! check every login's token goes through): made for real by OpenBao, for
//! another client, by another OpenBao's key under the same issuer, and
//! expired. A token made for Keydrop passes the same check, so each refusal
//! is the property under test and not a broken setup.

use crate::support::openbao::{OpenBao, ADMIN};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use keydrop::config::{parse_roles, OidcConfig};
use keydrop::http::console::oidc::Oidc;
use secrecy::SecretString;
use std::time::Duration;

const REDIRECT: &str = "http://127.0.0.1:9/auth/callback";

fn relying_party(issuer: &str, client_id: &str, secret: &str) -> Oidc {
    Oidc::new(OidcConfig {
        issuer: issuer.to_owned(),
        client_id: client_id.to_owned(),
        client_secret: SecretString::from(secret.to_owned()),
        internal_url: url::Url::parse("http://127.0.0.1:9").unwrap(),
        scopes: vec!["email".into(), "profile".into(), "groups".into()],
        groups_claim: "groups".into(),
        roles: parse_roles(crate::support::openbao::ROLES).unwrap(),
        session_idle: Duration::from_secs(1800),
        session_lifetime: Duration::from_secs(43_200),
    })
    .unwrap()
}

/// The (unverified) claims of a compact JWT, for the test's own checks.
fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn exp_of(token: &str) -> i64 {
    claims_of(token)["exp"].as_i64().unwrap()
}

#[tokio::test]
async fn only_a_token_for_this_client_with_this_nonce_passes() {
    let Some(bao) = OpenBao::start(REDIRECT, &[&ADMIN]).await else {
        return;
    };
    let rp = relying_party(&bao.issuer, &bao.client_id, &bao.client_secret);
    let ours = bao
        .id_token(
            &ADMIN,
            (&bao.client_id, &bao.client_secret),
            REDIRECT,
            "nonce-1",
        )
        .await;
    let who = rp.verify_compact(&ours, "nonce-1").await.unwrap();
    assert_eq!(who.groups, ["keydrop-admins"]);
    assert_eq!(who.email.as_deref(), Some(ADMIN.email));
    let err = rp.verify_compact(&ours, "nonce-2").await.unwrap_err();
    assert_eq!(err.reason(), "id_token_invalid");
    assert!(err.to_string().to_lowercase().contains("nonce"), "{err}");
}

#[tokio::test]
async fn a_token_issued_to_another_client_is_refused_for_its_audience() {
    let Some(bao) = OpenBao::start(REDIRECT, &[&ADMIN]).await else {
        return;
    };
    let rp = relying_party(&bao.issuer, &bao.client_id, &bao.client_secret);
    let (other_id, other_secret) = bao.add_client("other-app", REDIRECT, "30m").await;
    let theirs = bao
        .id_token(&ADMIN, (&other_id, &other_secret), REDIRECT, "nonce-1")
        .await;
    let err = rp.verify_compact(&theirs, "nonce-1").await.unwrap_err();
    assert_eq!(err.reason(), "id_token_invalid");
    assert!(err.to_string().to_lowercase().contains("aud"), "{err}");
}

#[tokio::test]
async fn a_token_signed_by_another_providers_key_under_the_same_issuer_is_refused() {
    let Some(bao) = OpenBao::start(REDIRECT, &[&ADMIN]).await else {
        return;
    };
    let impostor = OpenBao::impostor_of(&bao, &[&ADMIN]).await;
    // The relying party trusts the first OpenBao's keys, and (for this test)
    // knows the impostor's client id, so issuer and audience both match and
    // only the signature can give the forgery away.
    let rp = relying_party(&bao.issuer, &impostor.client_id, &impostor.client_secret);
    let forged = impostor
        .id_token(
            &ADMIN,
            (&impostor.client_id, &impostor.client_secret),
            "http://127.0.0.1:9/cb",
            "n",
        )
        .await;
    let err = rp.verify_compact(&forged, "n").await.unwrap_err();
    assert_eq!(err.reason(), "id_token_invalid");
    assert!(
        err.to_string().to_lowercase().contains("signature"),
        "{err}"
    );
    // Control: the forgery names the trusted issuer and this audience, so the
    // refusal can only come from its signature.
    let claims = claims_of(&forged);
    assert_eq!(claims["iss"], bao.issuer.as_str());
    assert_eq!(claims["aud"], impostor.client_id.as_str());
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let Some(bao) = OpenBao::start(REDIRECT, &[&ADMIN]).await else {
        return;
    };
    let (id, secret) = bao.add_client("short-lived", REDIRECT, "1s").await;
    let rp = relying_party(&bao.issuer, &id, &secret);
    let token = bao.id_token(&ADMIN, (&id, &secret), REDIRECT, "n").await;
    let exp = exp_of(&token);
    // Wait for the clock to pass `exp` (state, not a fixed sleep).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while chrono::Utc::now().timestamp() <= exp {
        assert!(std::time::Instant::now() < deadline, "exp never passed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = rp.verify_compact(&token, "n").await.unwrap_err();
    assert_eq!(err.reason(), "id_token_invalid");
    assert!(err.to_string().to_lowercase().contains("expired"), "{err}");
}
