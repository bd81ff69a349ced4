//! Integration tests of the worker: one binary, one module per area.
//! Coordinators bind `127.0.0.1:0`; executors really run under bubblewrap.

mod common;
mod flow;
mod inference;
mod packages;
mod sandbox;
