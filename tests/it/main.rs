//! tandem's integration tests, one binary (each `tests/*.rs` would link the library, burn and
//! wgpu again). One module per area; `cargo test --release --features wgpu --test it engine::`
//! runs one of them. Two binaries link neither the library nor burn and stay apart:
//! `tests/ui.rs` (trybuild snapshots of the DSL's compile errors) and `tests/kill_resume.rs`
//! (its kill points are timed by a reference run, so it runs alone, not beside these areas).

mod support;

mod backbone;
mod backends;
mod cli;
mod data;
mod decoder;
mod dsl;
mod engine;
mod faults;
mod http_mentor;
mod invariants;
mod parser_props;
mod projection;
mod serve;
mod training;
mod tune;
mod user_tasks;
mod verbalizer;
