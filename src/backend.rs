//! Backend selection at run time. The library is generic over burn backends; only the edge
//! (the CLI, benches) picks one, through [`dispatch`].

use burn::backend::{Autodiff, Flex, NdArray};
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
    /// CPU, through burn-flex (always built): `gemm`-crate matmuls, fused GELU and its backward.
    Flex,
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
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// Whether the backend runs on the host CPU (no driver to check, no runtime to panic).
    pub fn is_cpu(self) -> bool {
        matches!(self, BackendKind::Ndarray | BackendKind::Flex)
    }

    /// Backends compiled into this build.
    pub fn available() -> Vec<BackendKind> {
        let mut v = vec![BackendKind::Ndarray, BackendKind::Flex];
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
            "flex" => Ok(BackendKind::Flex),
            "wgpu" => Ok(BackendKind::Wgpu),
            "cuda" => Ok(BackendKind::Cuda),
            _ => Err(Error::config(
                format!("backend `{s}`"),
                "expected `ndarray`, `flex`, `wgpu` or `cuda`",
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
/// checked before use ([`preflight`]: the CUDA driver library must load, wgpu must find an
/// adapter), and a panic inside a GPU runtime (driver error) becomes [`Error::BackendFailed`]
/// instead of a crash.
pub fn dispatch<J: BackendJob>(kind: BackendKind, job: J) -> Result<J::Output> {
    if kind.is_cpu() {
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

/// Checks what a GPU backend needs from the system before starting it ([`dispatch`] does, and
/// so should code that uses a GPU backend's device directly): the CUDA driver library must load,
/// wgpu must find an adapter (burn's wgpu runtime panics without one). A one-line
/// [`Error::BackendFailed`] says what to install.
pub fn preflight(kind: BackendKind) -> Result<()> {
    if kind == BackendKind::Cuda && cfg!(feature = "cuda") && !cuda_driver_loads() {
        return Err(Error::BackendFailed {
            backend: kind.name().into(),
            reason: "the CUDA driver library (libcuda.so.1) cannot be loaded: is there an NVIDIA \
                     GPU and driver on this machine? (add its folder to LD_LIBRARY_PATH if it is \
                     installed elsewhere)"
                .into(),
        });
    }
    #[cfg(feature = "wgpu")]
    if kind == BackendKind::Wgpu && !wgpu_adapter_found() {
        return Err(Error::BackendFailed {
            backend: kind.name().into(),
            reason: WGPU_NO_ADAPTER.into(),
        });
    }
    Ok(())
}

/// Why the wgpu backend cannot start when no adapter is found, and what to install.
#[cfg(feature = "wgpu")]
const WGPU_NO_ADAPTER: &str = if cfg!(target_os = "linux") {
    "no Vulkan/GPU adapter found; on Debian install Mesa's software Vulkan: \
     apt-get install mesa-vulkan-drivers libvulkan1"
} else {
    "no GPU adapter found (wgpu needs a Vulkan, Metal or DX12 driver)"
};

/// Whether wgpu finds the adapter burn's default wgpu device asks for: the same graphics API
/// ([`AutoGraphicsApi`](burn::backend::wgpu::graphics::AutoGraphicsApi), Vulkan on Linux) and
/// request as cubecl's runtime, which panics where this is false.
#[cfg(feature = "wgpu")]
fn wgpu_adapter_found() -> bool {
    use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: AutoGraphicsApi::backend().into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
    }))
    .is_ok()
}

/// Polls `future` to completion on this thread (wgpu's native futures are ready at once).
#[cfg(feature = "wgpu")]
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
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
        BackendKind::Flex => job.run::<Autodiff<Flex>>(kind, Default::default()),
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
