//! Integration tests of the devnet coordinator: one binary, one module per
//! area. Servers bind `127.0.0.1:0`; requests are really signed.

mod bad_input;
mod common;
mod conformance;
mod durability;
mod evidence;
mod flow;
mod hostile;
mod interop;
mod prereg;
mod surface;
mod workers;
