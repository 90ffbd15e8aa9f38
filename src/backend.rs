//! Backend selection at run time. The library is generic over burn backends; only the edge
//! (the CLI, benches) picks one, through [`dispatch`].

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A burn backend tandem can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// CPU, through ndarray (always built).
    #[default]
    Ndarray,
    /// GPU through wgpu (feature `wgpu`).
    Wgpu,
    /// NVIDIA GPU through CUDA (feature `cuda`).
    Cuda,
}

impl BackendKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// Backends compiled into this build.
    pub fn available() -> Vec<BackendKind> {
        let mut v = vec![BackendKind::Ndarray];
        if cfg!(feature = "wgpu") {
            v.push(BackendKind::Wgpu);
        }
        if cfg!(feature = "cuda") {
            v.push(BackendKind::Cuda);
        }
        v
    }
}

impl std::str::FromStr for BackendKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ndarray" => Ok(BackendKind::Ndarray),
            "wgpu" => Ok(BackendKind::Wgpu),
            "cuda" => Ok(BackendKind::Cuda),
            _ => Err(Error::config(
                format!("backend `{s}`"),
                "expected `ndarray`, `wgpu` or `cuda`",
            )),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Work that runs on any autodiff backend.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs the job on backend `B` and device.
    fn run<B: AutodiffBackend>(self, kind: BackendKind, device: B::Device) -> Result<Self::Output>;
}

/// Runs `job` on the backend `kind`, or explains which feature enables it. GPU backends are
/// checked before use (the CUDA driver library must load), and a panic inside a GPU runtime
/// (no device, driver error) becomes [`Error::BackendFailed`] instead of a crash.
pub fn dispatch<J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output> {
    if kind == BackendKind::Ndarray {
        return run_on(kind, job);
    }
    preflight(kind)?;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_on(kind, job))) {
        Ok(result) => result,
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the runtime panicked".into());
            let hint = match kind {
                BackendKind::Wgpu => {
                    "; wgpu found no usable adapter? it needs a Vulkan, Metal or DX12 driver \
                     (on a CPU-only Linux machine: apt-get install mesa-vulkan-drivers libvulkan1)"
                }
                _ => "",
            };
            Err(Error::BackendFailed {
                backend: kind.name().into(),
                reason: format!("{reason}{hint}"),
            })
        }
    }
}

/// Checks what a GPU backend needs from the system before starting it.
fn preflight(kind: BackendKind) -> Result<()> {
    if kind == BackendKind::Cuda && cfg!(feature = "cuda") && !cuda_driver_loads() {
        return Err(Error::BackendFailed {
            backend: kind.name().into(),
            reason: "the CUDA driver library (libcuda.so.1) cannot be loaded: is there an NVIDIA \
                     GPU and driver on this machine? (add its folder to LD_LIBRARY_PATH if it is \
                     installed elsewhere)"
                .into(),
        });
    }
    Ok(())
}

#[cfg(feature = "cuda")]
fn cuda_driver_loads() -> bool {
    // SAFETY: dlopen/dlclose with a valid C string; the handle is closed right away.
    unsafe {
        let handle = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        if handle.is_null() {
            return false;
        }
        libc::dlclose(handle);
        true
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_driver_loads() -> bool {
    false
}

fn run_on<J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output> {
    match kind {
        BackendKind::Ndarray => job.run::<Autodiff<NdArray>>(kind, Default::default()),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => job.run::<Autodiff<burn::backend::Wgpu>>(kind, Default::default()),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => job.run::<Autodiff<burn::backend::Cuda>>(kind, Default::default()),
        #[allow(unreachable_patterns)]
        other => Err(Error::BackendUnavailable {
            backend: other.name().into(),
            feature: other.name().into(),
        }),
    }
}
