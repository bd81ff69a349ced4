//! Integration tests of the real `auspex` binary, including interop with the
//! official Python SDK (installed by `scripts/python-peers.sh`).

mod common;
mod devnet;
mod errors;
mod help;
mod interop;
mod key;
mod landlock;
mod manifest;
mod receipts;
mod tlog;
mod worker;
