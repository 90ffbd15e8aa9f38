//! `tandem serve`: the embedded chat model at an OpenAI-compatible endpoint.

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;

use super::jobs::load_llm;
use crate::cli::args::ServeArgs;
use tandem::assets::Assets;
use tandem::backend::{dispatch, BackendJob, BackendKind};
use tandem::serve::ChatServer;

impl ServeArgs {
    /// `tandem serve [--addr HOST:PORT]`.
    pub fn exec(self, assets: Assets) -> Result<()> {
        let kind: BackendKind = self.backend.parse()?;
        dispatch(
            kind,
            ServeJob {
                addr: self.addr,
                assets,
                requests: self.requests,
            },
        )?;
        Ok(())
    }
}

struct ServeJob {
    addr: String,
    assets: Assets,
    requests: Option<usize>,
}

impl BackendJob for ServeJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, kind: BackendKind, device: B::Device) -> tandem::Result<()> {
        let server = ChatServer::bind(&self.addr)?;
        let llm = load_llm::<B::InnerBackend>(&self.assets, kind, &device)?;
        let addr = server.addr().map_or(self.addr.clone(), |a| a.to_string());
        eprintln!(
            "serving {} at http://{addr}/v1 (POST /v1/chat/completions, GET /v1/models)",
            llm.name()
        );
        server.serve(&llm, self.requests)
    }
}
