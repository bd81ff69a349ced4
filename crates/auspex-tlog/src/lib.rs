//! `auspex-tlog` — a Rekor-shaped transparency log (being written).
#![deny(missing_docs)]
