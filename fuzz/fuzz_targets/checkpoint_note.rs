//! C2SP signed-note and checkpoint parsing and verification of arbitrary
//! bytes: never panics, and accepted notes re-serialise to their input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auspex_crypto::fuzzing::checkpoint_note(data);
});
