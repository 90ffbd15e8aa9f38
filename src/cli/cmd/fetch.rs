//! `tandem fetch`: the pinned assets into the cache, verified (or only checked).

use anyhow::Result;

use crate::cli::args::FetchArgs;
use tandem::assets::{self, Assets, FileState};

impl FetchArgs {
    /// `tandem fetch [--only GROUP] [--check]`.
    pub fn exec(self, assets: &Assets) -> Result<()> {
        let groups = if self.only.is_empty() {
            assets::ALL_GROUPS.to_vec()
        } else {
            self.only
                .iter()
                .map(|n| assets::group(n))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut bad = 0;
        for g in &groups {
            if self.check {
                for (file, state) in assets.check(g)? {
                    let path = assets.path(&file);
                    match state {
                        FileState::Verified => println!("ok       {}", path.display()),
                        FileState::Missing => {
                            bad += 1;
                            println!("missing  {}", path.display())
                        }
                        FileState::Corrupt { actual } => {
                            bad += 1;
                            println!("corrupt  {} (sha256 {actual})", path.display())
                        }
                    }
                }
            } else {
                let fetched = assets.ensure(g)?;
                println!(
                    "{:<16} {} ({})",
                    g.name,
                    if fetched {
                        "fetched and verified"
                    } else {
                        "verified"
                    },
                    g.package.spec()
                );
            }
        }
        if bad > 0 {
            anyhow::bail!(
                "{bad} asset file(s) missing or corrupt under {}: run `tandem fetch`",
                assets.root().display()
            );
        }
        Ok(())
    }
}
