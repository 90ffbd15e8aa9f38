//! `tandem tasks`: the built-in tasks, one line each.

use anyhow::Result;

use crate::cli::args::TasksArgs;
use tandem::task::all_tasks;

impl TasksArgs {
    /// `tandem tasks`.
    pub fn exec(self) -> Result<()> {
        for t in all_tasks() {
            println!("{:<12} {}", t.name, t.description);
        }
        Ok(())
    }
}
