//! tandem's integration tests, one binary (each `tests/*.rs` would link the library, burn and
//! wgpu again). One module per area; `cargo test --release --features wgpu --test it engine::`
//! runs one of them. The trybuild snapshots of the DSL's compile errors are `tests/ui.rs`.

mod support;

mod backbone;
#[cfg(feature = "wgpu")]
mod backends;
mod cli;
mod data;
mod decoder;
mod dsl;
mod engine;
mod faults;
mod http_mentor;
mod invariants;
mod kill_resume;
mod parser_props;
mod projection;
mod serve;
mod training;
mod tune;
mod user_tasks;
mod verbalizer;
