//! Fuzzes the envelope `open` path with hostile database rows.
//!
//! The first byte picks a mode:
//! * arbitrary envelope fields (version, KEK id, both blobs): `open` and
//!   `rewrap` never panic and agree with each other (forging AES-GCM is out
//!   of reach, but the fuzzer can copy a genuine blob: see `arbitrary_rows`);
//! * the rest is a plaintext: `seal` then `open` must give it back, and
//!   opening it for another row must fail;
//! * the rest mutates a genuine envelope (XOR at chosen offsets, truncation):
//!   any real change must fail authentication.
#![no_main]

use keydrop::crypto::{open, rewrap, seal, Context, Envelope, Kek, KekId, Keyring, FORMAT_VERSION};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use uuid::Uuid;

fn ring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        let kek = |id: &str, b: u8| Kek::new(KekId::parse(id).unwrap(), &[b; 32]).unwrap();
        Keyring::new(vec![kek("active", 1), kek("old", 2)]).unwrap()
    })
}

const ID: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

fn ctx(provider: &str) -> Context<'_> {
    Context {
        secret_id: ID,
        provider,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => arbitrary_rows(rest),
        1 => roundtrip(rest),
        _ => mutations(rest),
    }
});

fn arbitrary_rows(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let format_version = if data[0] & 1 == 0 {
        FORMAT_VERSION
    } else {
        i16::from_be_bytes([data[0], data[1]])
    };
    let kek_id = ["active", "old", "missing", ""][usize::from(data[2] % 4)].to_owned();
    let body = &data[4..];
    let split = usize::from(data[3]).min(body.len());
    let envelope = Envelope {
        format_version,
        kek_id,
        wrapped_dek: body[..split].to_vec(),
        payload: body[split..].to_vec(),
    };
    // libFuzzer's comparison tracing lifts genuine blobs out of the other
    // modes (`envelope == original` compares them), so a wrapped DEK sealed
    // for this very row can turn up here, and then `rewrap` rightly succeeds:
    // it only needs the DEK. What must hold for any row is consistency, never
    // a panic: rewrapping succeeds whenever the envelope opens, leaves the
    // payload alone, and changes nothing about what opens.
    let opened = open(ring(), ctx("greenhouse"), &envelope).ok();
    match rewrap(ring(), ID, &envelope) {
        Ok(rewrapped) => {
            assert_eq!(rewrapped.kek_id, "active");
            assert_eq!(rewrapped.payload, envelope.payload, "payload untouched");
            assert_eq!(open(ring(), ctx("greenhouse"), &rewrapped).ok(), opened);
        }
        Err(_) => assert!(opened.is_none(), "an envelope that opens can be rewrapped"),
    }
}

fn roundtrip(plaintext: &[u8]) {
    let envelope = seal(ring(), ctx("generic"), plaintext).unwrap();
    assert_eq!(
        &open(ring(), ctx("generic"), &envelope).unwrap()[..],
        plaintext
    );
    assert!(
        open(ring(), ctx("lever"), &envelope).is_err(),
        "bound to its provider"
    );
    let moved = Context {
        secret_id: Uuid::nil(),
        provider: "generic",
    };
    assert!(open(ring(), moved, &envelope).is_err(), "bound to its row");
    let rewrapped = rewrap(ring(), ID, &envelope).unwrap();
    assert_eq!(
        &open(ring(), ctx("generic"), &rewrapped).unwrap()[..],
        plaintext
    );
}

fn mutations(data: &[u8]) {
    let original = seal(ring(), ctx("generic"), b"{\"secret\":\"fuzz-me\"}").unwrap();
    let mut envelope = original.clone();
    for pair in data.chunks(3) {
        let [which, at, xor] = [
            pair[0],
            *pair.get(1).unwrap_or(&0),
            *pair.get(2).unwrap_or(&1),
        ];
        let blob = if which & 1 == 0 {
            &mut envelope.payload
        } else {
            &mut envelope.wrapped_dek
        };
        if which & 0x80 != 0 {
            blob.truncate(usize::from(at));
        } else if !blob.is_empty() {
            let i = usize::from(at) % blob.len();
            blob[i] ^= xor;
        }
    }
    let opened = open(ring(), ctx("generic"), &envelope);
    if envelope == original {
        assert!(opened.is_ok());
    } else {
        assert!(opened.is_err(), "a changed envelope opened");
    }
}
