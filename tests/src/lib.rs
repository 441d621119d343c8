//! Simulated cluster for end-to-end tests.

pub mod sim;
