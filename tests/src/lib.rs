//! Simulated cluster for end-to-end tests.
