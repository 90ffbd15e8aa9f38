//! Run folders and the records written into them.

mod folder;

pub use folder::RunDir;
