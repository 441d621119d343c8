//! One module per subcommand: each reads its state, computes with the pure modules and
//! prints. `wait` is `verify` repeated, so both live in `verify`.

pub mod record;
pub mod verify;

/// Now, as recorded in baselines (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
