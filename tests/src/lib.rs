//! Simulated cluster for end-to-end tests, helpers for tests that drive real binaries against
//! it, and the rehearsals that run a seed's whole upgrade runbook on it.

pub mod harness;
pub mod load;
pub mod rehearsal;
pub mod sim;
