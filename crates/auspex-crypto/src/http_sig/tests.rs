//! Unit tests of the RFC 9421 module.
