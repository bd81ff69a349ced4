//! Rekor entry / trusted-root parsing and offline entry verification of
//! arbitrary bytes: never panics, and parsed entries round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auspex_crypto::fuzzing::rekor_entry(data);
});
