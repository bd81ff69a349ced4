//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the tests
//! that replay their corpora. Each takes arbitrary bytes and must never panic.

/// Receipt decoding as `auspex receipts show` does it: naked receipt CBOR or a
/// COSE_Sign1 over an in-toto statement. A decoded COSE message must re-encode
/// and decode to the same structure.
#[allow(clippy::panic)]
pub fn receipt_decode(data: &[u8]) {
    let _ = crate::cose::inspect_receipt(data);
    if let Ok(msg) = crate::cose::CoseSign1::decode(data) {
        let _ = msg.verify(None);
        let _ = msg.sig_structure();
        match crate::cose::CoseSign1::decode(&msg.encode()) {
            Ok(again) => assert_eq!(again.payload(), msg.payload()),
            Err(e) => panic!("re-encoded COSE_Sign1 does not decode: {e}"),
        }
    }
}
