//! Compile errors of the DSL macros, with spans on the user's tokens (trybuild `.stderr`
//! snapshots in `tests/ui/`).

#[test]
fn dsl_errors() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
