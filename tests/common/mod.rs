//! Helpers shared by the integration tests: the real asset cache, fetched once per process.

#![allow(dead_code)]

use std::sync::Mutex;

use tandem::assets::{AssetGroup, Assets};

static FETCH: Mutex<()> = Mutex::new(());

/// The asset cache (`$TANDEM_ASSETS` or `./assets`) with `groups` fetched and verified.
pub fn assets(groups: &[AssetGroup]) -> Assets {
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let assets = Assets::from_env();
    for g in groups {
        assets.ensure(g).expect("fetching test assets");
    }
    assets
}

/// The CPU backend without autodiff.
pub type Cpu = burn::backend::NdArray;
/// The CPU backend with autodiff.
pub type CpuAd = burn::backend::Autodiff<burn::backend::NdArray>;
