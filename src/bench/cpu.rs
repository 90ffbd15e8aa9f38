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

/// The matmul kernels a backend runs on this CPU (GPU backends: their own).
pub fn kernels(backend: crate::backend::BackendKind, cpu: &CpuInfo) -> String {
    use crate::backend::BackendKind;
    let has = |f: &str| cpu.isa.contains(&f);
    match backend {
        BackendKind::Ndarray => format!(
            "matrixmultiply sgemm, {} kernel (it has no AVX-512 kernel in this build)",
            if has("avx2") && has("fma") {
                "AVX2+FMA"
            } else {
                "SSE/scalar"
            }
        ),
        BackendKind::Flex => format!(
            "gemm crate, {} kernels chosen at run time",
            if has("avx512f") {
                "AVX-512"
            } else if has("avx2") && has("fma") {
                "AVX2+FMA"
            } else {
                "SSE/scalar"
            }
        ),
        BackendKind::Wgpu => "cubecl kernels through wgpu".into(),
        BackendKind::Cuda => "cubecl kernels through CUDA".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_names_the_isa_the_kernels_are_chosen_by() {
        let cpu = CpuInfo::detect();
        #[cfg(target_arch = "x86_64")]
        {
            // Every x86-64 machine tandem runs on has SSE4.2 or better.
            assert_eq!(
                cpu.isa.contains(&"sse4.2"),
                std::arch::is_x86_feature_detected!("sse4.2")
            );
            let flex = kernels(crate::backend::BackendKind::Flex, &cpu);
            let expected = if std::arch::is_x86_feature_detected!("avx512f") {
                "AVX-512"
            } else {
                "AVX2"
            };
            assert!(
                flex.contains(expected) || !cpu.isa.contains(&"avx2"),
                "{flex}"
            );
        }
        assert!(cpu.to_string().contains(&cpu.isa.join(" ")));
    }
}
