//! Simulated cluster for end-to-end tests, and helpers for tests that drive real binaries
//! against it.

pub mod harness;
pub mod sim;
