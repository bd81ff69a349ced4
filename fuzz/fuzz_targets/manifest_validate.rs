//! Manifest parsing and validation of arbitrary bytes, then (for valid
//! manifests) both signing layouts and the manifest hash: never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auspex_wire::fuzzing::manifest_validate(data);
});
