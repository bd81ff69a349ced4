//! RFC 9421 `Signature-Input` / `Signature` structured-field parsing and
//! request verification (coordinator rules and general RFC 9421) on arbitrary
//! header values, targets and bodies: never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auspex_crypto::fuzzing::http_sig_headers(data);
});
