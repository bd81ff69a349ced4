//! Unit tests of the Merkle module.
