//! Integration tests of `auspex-tlog`: the library API, the REST service,
//! SIGKILL durability, and the official SDK's Rekor check against it.

mod common;
mod interop;
mod kill;
mod log;
mod rest;
