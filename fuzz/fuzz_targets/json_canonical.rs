//! Python-semantics JSON parsing and canonical encoding of arbitrary bytes:
//! never panics, and the canonical form is a fixed point (parse → encode →
//! parse → encode gives the same bytes).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auspex_wire::fuzzing::json_canonical(data);
});
