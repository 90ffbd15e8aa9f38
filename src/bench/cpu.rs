//! What the CPU can run: its model name and the vector instruction sets detected at run time,
//! which choose the matmul kernels (matrixmultiply on ndarray, `gemm` on flex).

/// The host CPU, as `tandem bench` reports it beside its figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    /// `model name` from `/proc/cpuinfo` (empty where there is none).
    pub model: String,
    /// Instruction sets detected at run time, from the list tandem's kernels choose among.
    pub isa: Vec<&'static str>,
}

impl CpuInfo {
    /// Reads the model name and detects the instruction sets.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let mut isa = detected_isa();
        // AMX has no stable run-time detection macro yet: the kernel's flag says it.
        if field("flags").split_whitespace().any(|f| f == "amx_tile") {
            isa.push("amx-tile");
        }
        CpuInfo {
            model: field("model name"),
            isa,
        }
    }
}

impl std::fmt::Display for CpuInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let model = if self.model.is_empty() {
            std::env::consts::ARCH
        } else {
            &self.model
        };
        write!(f, "{model}; {}", self.isa.join(" "))
    }
}

#[cfg(target_arch = "x86_64")]
fn detected_isa() -> Vec<&'static str> {
    let mut isa = Vec::new();
    macro_rules! detect {
        ($($feature:tt),*) => {$(
            if std::arch::is_x86_feature_detected!($feature) {
                isa.push($feature);
            }
        )*};
    }
    detect!(
        "sse4.2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512vnni",
        "avx512bf16"
    );
    isa
}

#[cfg(target_arch = "aarch64")]
fn detected_isa() -> Vec<&'static str> {
    let mut isa = vec!["neon"];
    if std::arch::is_aarch64_feature_detected!("sve") {
        isa.push("sve");
    }
    isa
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detected_isa() -> Vec<&'static str> {
    Vec::new()
}

/// The matmul kernels a backend runs on this CPU (GPU backends: their own). Both GEMM crates
/// choose AVX-512 kernels at run time where the CPU has them and the build has the `avx512`
/// feature, else AVX2+FMA where it has both.
pub fn kernels(backend: crate::backend::BackendKind, cpu: &CpuInfo) -> String {
    use crate::backend::BackendKind;
    let has = |f: &str| cpu.isa.contains(&f);
    let simd = if has("avx512f") && cfg!(feature = "avx512") {
        "AVX-512"
    } else if has("avx2") && has("fma") {
        "AVX2+FMA"
    } else {
        "SSE/AVX"
    };
    // CPU backends take the encoder readouts' training step on the host encoder.
    let host = format!("; encoder training step: host encoder, gemm crate {simd} kernels");
    match backend {
        BackendKind::Ndarray => format!("matrixmultiply sgemm, {simd} kernel{host}"),
        BackendKind::Flex => format!("gemm crate, {simd} kernels chosen at run time{host}"),
        BackendKind::Wgpu => "cubecl kernels through wgpu".into(),
        BackendKind::Cuda => "cubecl kernels through CUDA".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(isa: &[&'static str]) -> CpuInfo {
        CpuInfo {
            model: "Test CPU".into(),
            isa: isa.to_vec(),
        }
    }

    /// The kernels named for constructed CPUs: AVX-512, AVX2+FMA (both needed), neither.
    #[test]
    fn kernels_follow_the_instruction_sets() {
        use crate::backend::BackendKind::{Flex, Ndarray};
        let avx512 = cpu(&["sse4.2", "avx", "avx2", "fma", "avx512f"]);
        let avx2 = cpu(&["sse4.2", "avx", "avx2", "fma"]);
        let no_fma = cpu(&["sse4.2", "avx", "avx2"]);
        let old = cpu(&["sse4.2"]);
        // Without the `avx512` feature an AVX-512 CPU runs the AVX2+FMA kernels.
        let wide = if cfg!(feature = "avx512") {
            "AVX-512"
        } else {
            "AVX2+FMA"
        };
        for backend in [Flex, Ndarray] {
            assert!(kernels(backend, &avx512).contains(wide));
            assert!(kernels(backend, &avx2).contains("AVX2+FMA"));
            assert!(!kernels(backend, &avx2).contains("AVX-512"));
            assert!(kernels(backend, &no_fma).contains("SSE/AVX"));
            assert!(kernels(backend, &old).contains("SSE/AVX"));
        }
        assert_eq!(avx2.to_string(), "Test CPU; sse4.2 avx avx2 fma");
        let unnamed = CpuInfo {
            model: String::new(),
            isa: vec![],
        };
        assert_eq!(unnamed.to_string(), format!("{}; ", std::env::consts::ARCH));
    }

    /// Detection on this machine: the list holds what the standard library detects (checked
    /// for features outside the macro that builds it), in the list's order.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn detection_agrees_with_the_standard_library() {
        let cpu = CpuInfo::detect();
        let std_has = [
            ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ];
        for (name, has) in std_has {
            assert_eq!(cpu.isa.contains(&name), has, "{name}");
        }
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let amx = flags.split_whitespace().any(|f| f == "amx_tile");
        assert_eq!(cpu.isa.contains(&"amx-tile"), amx);
    }
}
