//! Row kernels of the host passes (the frozen encoder's and decoder's forward and input
//! gradient on CPU backends): dot products, `axpy`, softmax, `exp`, `erf` and GELU, written so
//! that the compiler vectorises them, and [`vectorized`], which runs a loop over them compiled
//! for the widest instruction set this CPU has (AVX-512 or AVX2+FMA, chosen at run time
//! through `pulp`, as the `gemm` crate chooses its microkernels; AVX-512 only in builds with
//! the `avx512` feature, a default one).
//!
//! Every kernel fixes its order of operations (sums in eight lanes, no reassociation left to
//! the compiler) and uses no fused multiply-add the source does not spell out, so a kernel
//! gives the same bits on every instruction set: [`Isa::Avx2`] forced on an AVX-512 machine
//! checks it.

use std::sync::OnceLock;

/// The instruction set [`vectorized`] compiles its loop for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F/BW/CD/DQ/VL (x86-64-v4).
    Avx512,
    /// AVX2 with FMA (x86-64-v3).
    Avx2,
    /// Baseline x86-64 (SSE2) or another architecture.
    Scalar,
}

impl Isa {
    /// The widest instruction set this CPU has.
    pub fn detect() -> Isa {
        match arch(None) {
            #[cfg(feature = "avx512")]
            pulp::Arch::V4(_) => Isa::Avx512,
            pulp::Arch::V3(_) => Isa::Avx2,
            _ => Isa::Scalar,
        }
    }
}

/// The dispatch target for `isa` (the best available when `None`); an instruction set the
/// CPU lacks falls back to the next narrower one it has.
fn arch(isa: Option<Isa>) -> pulp::Arch {
    static BEST: OnceLock<pulp::Arch> = OnceLock::new();
    let best = *BEST.get_or_init(pulp::Arch::new);
    match isa {
        None | Some(Isa::Avx512) => best,
        Some(Isa::Avx2) => match pulp::x86::V3::try_new() {
            Some(v3) => pulp::Arch::V3(v3),
            None => pulp::Arch::Scalar,
        },
        Some(Isa::Scalar) => pulp::Arch::Scalar,
    }
}

/// Runs `f` compiled for the widest instruction set this CPU has. The kernels of this module
/// are always inlined, so the loops of `f` over them vectorise for it.
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    arch(None).dispatch(f)
}

/// [`vectorized`] for a chosen instruction set (for tests of the narrower paths).
#[inline(always)]
pub fn vectorized_for<R>(isa: Isa, f: impl FnOnce() -> R) -> R {
    arch(Some(isa)).dispatch(f)
}

/// Dot product in eight lanes (the order is fixed, so results are reproducible).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Sum in eight lanes.
#[inline(always)]
pub fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let tail: f32 = ca.remainder().iter().sum();
    for x in ca {
        for l in 0..8 {
            acc[l] += x[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `out += w · v`.
#[inline(always)]
pub fn axpy(w: f32, v: &[f32], out: &mut [f32]) {
    for (o, x) in out.iter_mut().zip(v) {
        *o += w * x;
    }
}

/// Numerically stable softmax in place, with the standard library's `exp` and a sequential
/// sum (the host decoder's).
pub fn softmax(s: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in s.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in s.iter_mut() {
        *v /= sum;
    }
}

/// Softmax in place with [`exp`] and an eight-lane sum: vectorises.
#[inline(always)]
pub fn softmax_lanes(s: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    s.iter_mut().for_each(|v| *v = exp(*v - max));
    let inv = 1.0 / sum(s);
    s.iter_mut().for_each(|v| *v *= inv);
}

/// `eˣ` by range reduction to `r ∈ [−ln2/2, ln2/2]` and Cephes' degree-6 polynomial
/// (relative error below 2e-7; 0 below −87.33, where `f32` results turn subnormal),
/// in plain arithmetic, so that loops over it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to the nearest integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // Below ln(2⁻¹²⁶) the result would be subnormal: flushed to zero (NaN stays NaN).
    let keep = f32::from(x >= -87.33);
    let x = x.clamp(-87.33, 88.3);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2ⁿ from the rounded integer's bits (n ∈ [−126, 127]).
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let scale = f32::from_bits(((n_int + 127) << 23) as u32);
    e * scale * keep
}

/// `erf` by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), as PyTorch's CPU GELU.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let (p, a) = (
        0.327_591_1f32,
        [
            0.254_829_6f32,
            -0.284_496_74,
            1.421_413_7,
            -1.453_152,
            1.061_405_4,
        ],
    );
    let s = x.abs();
    let t = 1.0 / (1.0 + p * s);
    let poly = t * (a[0] + t * (a[1] + t * (a[2] + t * (a[3] + t * a[4]))));
    let y = 1.0 - poly * exp(-s * s);
    y.copysign(x)
}

/// GELU in its exact (erf) form.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The derivative of [`gelu`].
#[inline(always)]
pub fn gelu_grad(x: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    let pdf = exp(-0.5 * x * x) * 0.398_942_3;
    cdf + x * pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn isas() -> Vec<Isa> {
        let mut all = vec![Isa::Scalar];
        if pulp::x86::V3::try_new().is_some() {
            all.push(Isa::Avx2);
        }
        if Isa::detect() == Isa::Avx512 {
            all.push(Isa::Avx512);
        }
        all
    }

    #[test]
    fn exp_is_within_its_bound_and_flushes_underflow() {
        for i in -8800..=8800 {
            let x = i as f32 / 100.0;
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            if want < f32::MIN_POSITIVE as f64 {
                assert!(got < 2.0 * f32::MIN_POSITIVE as f64, "exp({x}) = {got}");
                continue;
            }
            assert!(
                (got - want).abs() <= 2e-7 * want,
                "exp({x}): {got} vs {want}"
            );
        }
        assert_eq!(exp(-1000.0), 0.0);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn erf_is_within_its_bound() {
        for i in -400..=400 {
            let x = i as f64 / 100.0;
            let want = libm::erf(x);
            assert!((erf(x as f32) as f64 - want).abs() < 3e-7, "erf({x})");
        }
    }

    /// Every kernel gives the same bits on every instruction set this CPU has.
    #[test]
    fn kernels_give_the_same_bits_on_every_instruction_set() {
        let x: Vec<f32> = (0..1037)
            .map(|i| ((i * 7919) % 2003) as f32 / 300.0 - 3.3)
            .collect();
        let run = |isa| {
            vectorized_for(isa, || {
                let mut s = x.clone();
                softmax_lanes(&mut s[..517]);
                let g: Vec<f32> = x.iter().map(|&v| gelu(v) + gelu_grad(v)).collect();
                let mut a = x.clone();
                axpy(0.37, &g, &mut a);
                (s, g, a, dot(&x, &x[3..]), sum(&x))
            })
        };
        let want = run(Isa::Scalar);
        for isa in isas() {
            assert_eq!(run(isa), want, "{isa:?}");
        }
    }
}
