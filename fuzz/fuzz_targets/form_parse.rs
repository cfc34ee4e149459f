//! Fuzzes the strict form parser with arbitrary request bodies.
//!
//! Never panics; and whenever it accepts a body, it agrees with the WHATWG
//! urlencoded parser (`url::form_urlencoded`) on every name and value.
#![no_main]

use keydrop::http::form::Form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(form) = Form::parse(body) else {
        return;
    };
    // Accepted, so every name and value decoded to valid UTF-8 and names are
    // unique: the lossy reference parser must then see exactly the same pairs.
    for (name, value) in url::form_urlencoded::parse(body) {
        assert_eq!(form.get(&name), Some(&*value), "field {name:?}");
    }
});
