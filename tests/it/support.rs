//! Helpers shared by the integration tests: the real asset cache, fetched once per process.

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

/// The default wgpu device, once wgpu has found an adapter; otherwise the test fails with the
/// one-line reason and what to install (burn's runtime would panic deep inside cubecl).
#[cfg(feature = "wgpu")]
pub fn wgpu_device() -> burn::backend::wgpu::WgpuDevice {
    if let Err(e) = tandem::backend::preflight(tandem::backend::BackendKind::Wgpu) {
        panic!("{e}");
    }
    Default::default()
}

/// The CPU backend without autodiff.
pub type Cpu = burn::backend::NdArray;
/// The CPU backend with autodiff.
pub type CpuAd = burn::backend::Autodiff<burn::backend::NdArray>;

/// A small real task for end-to-end runs: UCI IMDB, 4 shots per class, 30 selection and 40 test
/// examples, a 3-vector prompt, a trajectory point every step.
pub fn tiny_task(seed: u64) -> tandem::tune::TuneConfig {
    use tandem::data::SplitConfig;
    use tandem::gradient::GradientConfig;
    tandem::tune::TuneConfig {
        prompt_len: 3,
        init: tandem::prompt::PromptInit::Text("this review is".into()),
        seed,
        split: SplitConfig {
            max_test: 40,
            max_selection: 30,
            shots: Some(4),
            ..Default::default()
        },
        gradient: GradientConfig {
            batch_size: 4,
            record_every: 1,
            ..Default::default()
        },
        max_len: 40,
        ..tandem::task::lookup("uci-imdb").unwrap().tune_config()
    }
}

/// Reads one HTTP request from a loopback client: its head (request line and headers) and body.
pub fn read_request(stream: std::net::TcpStream) -> (String, Vec<u8>, std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Read};
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok();
    let mut reader = BufReader::new(stream);
    let (mut head, mut len) = (String::new(), 0usize);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok();
    (head, body, reader.into_inner())
}

/// Eight hand-written movie-review snippets with their labels (0 negative, 1 positive).
pub const SNIPPETS: &[(&str, usize)] = &[
    ("a wonderful, moving film", 1),
    ("dull and lifeless", 0),
    ("the best movie of the year", 1),
    ("a waste of two hours", 0),
    ("sharp, funny and heartfelt", 1),
    ("tedious, predictable and badly acted", 0),
    ("a triumph", 1),
    ("i hated every minute", 0),
];

/// [`SNIPPETS`] as every split of a two-class dataset.
pub fn snippet_data(tokenizer: &tandem::backbone::BertTokenizer) -> tandem::readout::EncodedData {
    let split = tandem::readout::EncodedSplit {
        tokens: SNIPPETS.iter().map(|(t, _)| tokenizer.encode(t)).collect(),
        labels: SNIPPETS.iter().map(|(_, l)| *l).collect(),
    };
    tandem::readout::EncodedData {
        class_names: vec!["negative".into(), "positive".into()],
        train: split.clone(),
        selection: split.clone(),
        test: split,
    }
}
