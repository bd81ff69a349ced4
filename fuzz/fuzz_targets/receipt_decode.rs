//! Receipt decoding (naked CBOR or COSE_Sign1 with an in-toto statement) of
//! arbitrary bytes: never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auspex_crypto::fuzzing::receipt_decode(data);
});
