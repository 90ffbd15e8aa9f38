//! Procedural macros of tandem's experiment DSL.
