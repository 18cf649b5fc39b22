//! GEMM: what is multiplied, how its FLOPs are counted, and how the product is verified.
//!
//! **Operands.** A is m×k and B is k×n, both row-major in this definition: `A[i][l]` is element
//! `i·k + l` of RNG stream [`STREAM_A`], `B[l][j]` is element `l·n + j` of [`STREAM_B`], each
//! `CounterRng::uniform_f32` rounded to the dtype's input format (round to nearest even, as the
//! device's conversion does). Backends store them however their library wants (cuBLAS is
//! column-major) as long as they multiply these matrices. C = A·B is m×n.
//!
//! **Work.** 2·m·n·k floating-point operations per product, the universal convention (one multiply
//! and one add per term), whatever the library does internally.
//!
//! **Verification** happens before any time counts and again after timing, on products of random
//! data (never zeros), at O(n²) cost instead of redoing the O(n³) product:
//! - Freivalds' check: for random ±1 vectors r, compare z = C·r (from the stored C) with
//!   y = A·(B·r) computed in f64 from the operands regenerated on the host. Row i passes when
//!   |y_i − z_i| ≤ κ·σ_i, where σ_i estimates the standard deviation of the rounding error a
//!   correct product accumulates (see [`row_error_scale`]).
//! - Sampled entries: a few hundred C[i][j] recomputed in f64 and compared with a per-entry bound.
//!
//! Together they catch the corruptions that matter (exponent and high mantissa bits, wrong or
//! zeroed tiles, swapped rows, stale memory) and pass correct products at every dtype and size;
//! `tests` below plants each fault and checks both directions.

use crate::error::{Error, Result};
use crate::rng::CounterRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// RNG stream ids of the operands (also used by `kernels/init.cu`).
pub const STREAM_A: u64 = 1;
pub const STREAM_B: u64 = 2;
/// Streams for Freivalds vectors and sampled entries; offset per check pass.
const STREAM_CHECK: u64 = 1000;

/// How many standard deviations of rounding noise a row may show before it counts as wrong.
/// Rounding errors of a correct product are sums of many small independent terms, so their tails
/// are close to Gaussian: at 10σ a false alarm has probability below 1e-20 per row, while any
/// corruption larger than 10σ of the row's noise is caught with certainty.
pub const KAPPA: f64 = 10.0;

/// Entries recomputed exactly per check pass.
pub const SAMPLED_ENTRIES: usize = 256;

/// Element formats of a GEMM: inputs, accumulator, output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum GemmDtype {
    Fp64,
    Fp32,
    Tf32,
    Fp16,
    Bf16,
    Fp8E4m3,
}

impl GemmDtype {
    pub const ALL: [GemmDtype; 6] = [
        GemmDtype::Fp64,
        GemmDtype::Fp32,
        GemmDtype::Tf32,
        GemmDtype::Fp16,
        GemmDtype::Bf16,
        GemmDtype::Fp8E4m3,
    ];

    /// Name used in results, metrics (`gemm.<name>.tflops`) and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            GemmDtype::Fp64 => "fp64",
            GemmDtype::Fp32 => "fp32",
            GemmDtype::Tf32 => "tf32",
            GemmDtype::Fp16 => "fp16",
            GemmDtype::Bf16 => "bf16",
            GemmDtype::Fp8E4m3 => "fp8_e4m3",
        }
    }

    pub fn parse(name: &str) -> Option<GemmDtype> {
        GemmDtype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Round a generated f32 value to the input format as stored in memory, exactly as the device
    /// stores it. TF32 inputs are stored as f32; the tensor core's internal rounding is accounted
    /// for in [`GemmDtype::unit_roundoffs`], not here.
    pub fn round_input(self, x: f32) -> f64 {
        match self {
            GemmDtype::Fp64 | GemmDtype::Fp32 | GemmDtype::Tf32 => x as f64,
            GemmDtype::Fp16 => half::f16::from_f32(x).to_f64(),
            GemmDtype::Bf16 => half::bf16::from_f32(x).to_f64(),
            GemmDtype::Fp8E4m3 => float8::F8E4M3::from_f32(x).to_f64(),
        }
    }

    /// Unit roundoffs `(input, accumulate, output)` that bound the error of a correct product.
    /// - input: rounding the hardware applies to stored inputs (TF32 keeps 10 mantissa bits; we
    ///   allow truncation, 2^-10). Zero where the host reproduces the stored inputs exactly.
    /// - accumulate: fp32 accumulation for the tensor-core types, except fp8 on Hopper, whose
    ///   tensor cores are known to accumulate with about 14 significant bits; 2^-12 leaves margin.
    /// - output: the stored C format (fp8 products are written as bf16).
    pub fn unit_roundoffs(self) -> (f64, f64, f64) {
        let p = |bits: i32| 2f64.powi(-bits);
        match self {
            GemmDtype::Fp64 => (0.0, p(53), p(53)),
            GemmDtype::Fp32 => (0.0, p(24), p(24)),
            GemmDtype::Tf32 => (p(10), p(24), p(24)),
            GemmDtype::Fp16 => (0.0, p(24), p(11)),
            GemmDtype::Bf16 => (0.0, p(24), p(8)),
            GemmDtype::Fp8E4m3 => (0.0, p(12), p(8)),
        }
    }
}

impl std::fmt::Display for GemmDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GemmSpec {
    pub dtype: GemmDtype,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl GemmSpec {
    pub fn square(dtype: GemmDtype, size: usize) -> Self {
        GemmSpec {
            dtype,
            m: size,
            n: size,
            k: size,
        }
    }

    /// FLOPs of one product: 2·m·n·k.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

/// The operand generators of a spec, for backends that fill operands on the host.
#[derive(Debug, Clone, Copy)]
pub struct Operands {
    pub spec: GemmSpec,
    a: CounterRng,
    b: CounterRng,
}

impl Operands {
    pub fn new(spec: GemmSpec, seed: u64) -> Self {
        Operands {
            spec,
            a: CounterRng::new(seed, STREAM_A),
            b: CounterRng::new(seed, STREAM_B),
        }
    }

    /// A[i][l] as stored, exactly, in f64.
    #[inline]
    pub fn a(&self, i: usize, l: usize) -> f64 {
        let index = (i * self.spec.k + l) as u64;
        self.spec.dtype.round_input(self.a.uniform_f32(index))
    }

    /// B[l][j] as stored, exactly, in f64.
    #[inline]
    pub fn b(&self, l: usize, j: usize) -> f64 {
        let index = (l * self.spec.n + j) as u64;
        self.spec.dtype.round_input(self.b.uniform_f32(index))
    }
}

/// Outcome of one verification pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GemmCheck {
    pub passed: bool,
    /// Rows whose Freivalds residual exceeded its bound, out of m × vectors.
    pub failed_rows: usize,
    /// Sampled entries out of bound, out of `entries_checked`.
    pub failed_entries: usize,
    pub entries_checked: usize,
    /// Largest |C_ij − exact| / |exact| among sampled entries (|exact| floored at the row's
    /// typical magnitude so near-zero entries do not dominate).
    pub max_rel_error: f64,
    /// Largest residual-to-bound ratio seen (≤ 1 passes); shows the margin of a pass.
    pub worst_bound_ratio: f64,
}

impl GemmCheck {
    pub fn describe(&self) -> String {
        format!(
            "{} Freivalds row(s) and {}/{} sampled entries out of bound (worst residual {:.2}× its bound)",
            self.failed_rows, self.failed_entries, self.entries_checked, self.worst_bound_ratio
        )
    }
}

/// Read access to a stored product C, implemented by every backend's GEMM workload: C·r in f64
/// for each vector r (one value per row), and single entries, each converted exactly to f64.
pub trait ProductAccess {
    fn product_times(&mut self, vectors: &[Vec<f64>]) -> Result<Vec<Vec<f64>>>;
    fn product_entries(&mut self, entries: &[(usize, usize)]) -> Result<Vec<f64>>;
}

/// Per-row statistics of B and B·r that the error bounds need, computed in one pass over B.
struct BRows {
    /// (B·r)_l for each vector.
    b_times_r: Vec<Vec<f64>>,
    /// ‖B_l,:‖₂² per row l.
    row_norm2: Vec<f64>,
}

fn b_rows(ops: &Operands, vectors: &[Vec<f64>]) -> BRows {
    let GemmSpec { n, k, .. } = ops.spec;
    let per_row: Vec<(Vec<f64>, f64)> = (0..k)
        .into_par_iter()
        .map(|l| {
            let mut sums = vec![0.0; vectors.len()];
            let mut norm2 = 0.0;
            for j in 0..n {
                let b = ops.b(l, j);
                norm2 += b * b;
                for (s, r) in sums.iter_mut().zip(vectors) {
                    *s += b * r[j];
                }
            }
            (sums, norm2)
        })
        .collect();
    let mut b_times_r = vec![vec![0.0; k]; vectors.len()];
    let mut row_norm2 = vec![0.0; k];
    for (l, (sums, norm2)) in per_row.into_iter().enumerate() {
        for (v, s) in sums.into_iter().enumerate() {
            b_times_r[v][l] = s;
        }
        row_norm2[l] = norm2;
    }
    BRows {
        b_times_r,
        row_norm2,
    }
}

/// Standard deviation of the rounding noise in (C·r)_i for a correct product, from independent
/// error models for each source:
/// - output rounding: each C_ij carries up to u_out·|C_ij|, uniform → u_out·‖C_i‖₂/√3;
/// - accumulation over k terms (recursive summation, random-sign errors) →
///   u_acc·√(k/2)·√(Σ_l A_il²‖B_l‖²);
/// - hardware input rounding (TF32): A's rounding is shared across j, so it enters through B·r:
///   u_in·√(Σ_l A_il²(B·r)_l² + Σ_l A_il²‖B_l‖²)/√3;
/// - the host's own f64 evaluation (matters only for fp64 products): 2^-53·√n·(‖C_i‖₂ + √S_i).
fn row_error_scale(
    dtype: GemmDtype,
    n: usize,
    k: usize,
    c_row_norm2: f64,
    s_i: f64,
    t_i: f64,
) -> f64 {
    let (u_in, u_acc, u_out) = dtype.unit_roundoffs();
    let host = 2f64.powi(-53) * (n as f64).sqrt() * (c_row_norm2.sqrt() + s_i.sqrt());
    let var = u_out * u_out * c_row_norm2 / 3.0
        + u_acc * u_acc * (k as f64) / 2.0 * s_i
        + u_in * u_in * (s_i + t_i) / 3.0
        + host * host;
    var.sqrt()
}

/// Verify a stored product against the operands of `spec` generated from `seed`. `pass` selects
/// fresh random vectors and entries so the check after timing is independent of the one before.
pub fn verify(
    spec: GemmSpec,
    seed: u64,
    pass: u64,
    product: &mut dyn ProductAccess,
) -> Result<GemmCheck> {
    let ops = Operands::new(spec, seed);
    let GemmSpec { m, n, k, dtype } = spec;
    let check_rng = CounterRng::new(seed, STREAM_CHECK + pass);

    // Two independent ±1 vectors: a corruption that cancels in one projection shows in the other.
    let vectors: Vec<Vec<f64>> = (0..2u64)
        .map(|v| {
            (0..n as u64)
                .map(|j| check_rng.sign(v * n as u64 + j))
                .collect()
        })
        .collect();
    let z = product.product_times(&vectors)?;
    if z.len() != vectors.len() || z.iter().any(|zv| zv.len() != m) {
        return Err(Error::backend(
            "gemm",
            "product_times returned the wrong number of values",
        ));
    }
    let brows = b_rows(&ops, &vectors);

    // The output-rounding term needs ‖C_i‖₂², which would cost another pass over C. For operands
    // with independent zero-mean entries (ours), E[C_ij²] = Σ_l A_il² E[B_lj²], so
    // E‖C_i‖₂² = Σ_l A_il²‖B_l‖₂² = S_i, which we compute anyway; KAPPA absorbs the spread.
    let rows: Vec<(usize, f64)> = (0..m)
        .into_par_iter()
        .map(|i| {
            let mut y = vec![0.0; vectors.len()];
            let mut s_i = 0.0;
            let mut t_i = vec![0.0; vectors.len()];
            for l in 0..k {
                let a = ops.a(i, l);
                s_i += a * a * brows.row_norm2[l];
                for v in 0..vectors.len() {
                    let br = brows.b_times_r[v][l];
                    y[v] += a * br;
                    t_i[v] += a * a * br * br;
                }
            }
            let mut failed = 0;
            let mut worst = 0.0f64;
            for v in 0..vectors.len() {
                let sigma = row_error_scale(dtype, n, k, s_i, s_i, t_i[v]);
                let bound = KAPPA * sigma + f64::MIN_POSITIVE;
                let ratio = (y[v] - z[v][i]).abs() / bound;
                // NaN residuals (an Inf or NaN in C) must fail, so test "not within".
                if ratio.is_nan() || ratio > 1.0 {
                    failed += 1;
                }
                worst = worst.max(if ratio.is_nan() { f64::INFINITY } else { ratio });
            }
            (failed, worst)
        })
        .collect();
    let failed_rows = rows.iter().map(|r| r.0).sum();
    let mut worst_bound_ratio = rows.iter().map(|r| r.1).fold(0.0, f64::max);

    // Sampled entries, spread over the whole matrix, plus the four corners (edge tiles are where
    // odd sizes go wrong).
    let mut entries: Vec<(usize, usize)> = vec![(0, 0), (0, n - 1), (m - 1, 0), (m - 1, n - 1)];
    let sample_rng = CounterRng::new(seed, STREAM_CHECK + 500 + pass);
    for s in 0..SAMPLED_ENTRIES as u64 {
        let bits = sample_rng.bits(s);
        entries.push((
            (bits % m as u64) as usize,
            ((bits >> 32) % n as u64) as usize,
        ));
    }
    let got = product.product_entries(&entries)?;
    if got.len() != entries.len() {
        return Err(Error::backend(
            "gemm",
            "product_entries returned the wrong number of values",
        ));
    }
    let (u_in, u_acc, u_out) = dtype.unit_roundoffs();
    let per_entry: Vec<(bool, f64, f64)> = entries
        .par_iter()
        .zip(got.par_iter())
        .map(|(&(i, j), &value)| {
            let mut exact = 0.0;
            let mut sum_sq = 0.0;
            for l in 0..k {
                let p = ops.a(i, l) * ops.b(l, j);
                exact += p;
                sum_sq += p * p;
            }
            // Output rounding is a hard bound (u_out·|C|), allowed twice over so that rounding
            // alone never comes near the limit; a change under 2 units of roundoff is immaterial.
            // The rest is statistical, as for rows.
            let noise = ((u_acc * u_acc * k as f64 / 2.0 + u_in * u_in * 2.0 / 3.0) * sum_sq
                + (2f64.powi(-53) * k as f64).powi(2) * sum_sq)
                .sqrt();
            let bound = 2.0 * u_out * exact.abs() + KAPPA * noise + f64::MIN_POSITIVE;
            let err = (value - exact).abs();
            let ratio = err / bound;
            // Relative error against the entry's magnitude, floored by the typical magnitude of
            // the terms so a near-zero entry does not produce a meaningless huge ratio.
            let scale = exact.abs().max(sum_sq.sqrt());
            (ratio <= 1.0, err / scale, ratio)
        })
        .collect();
    let failed_entries = per_entry.iter().filter(|e| !e.0).count();
    let max_rel_error = per_entry
        .iter()
        .map(|e| if e.1.is_nan() { f64::INFINITY } else { e.1 })
        .fold(0.0, f64::max);
    for e in &per_entry {
        worst_bound_ratio = worst_bound_ratio.max(if e.2.is_nan() { f64::INFINITY } else { e.2 });
    }
    Ok(GemmCheck {
        passed: failed_rows == 0 && failed_entries == 0,
        failed_rows,
        failed_entries,
        entries_checked: entries.len(),
        max_rel_error,
        worst_bound_ratio,
    })
}

/// A product held on the host in row-major f64 (as the stored format's values): the CPU
/// backend's view of C, and the test double into which faults are planted.
#[derive(Debug, Clone)]
pub struct HostProduct {
    pub m: usize,
    pub n: usize,
    pub c: Vec<f64>,
}

impl ProductAccess for HostProduct {
    fn product_times(&mut self, vectors: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        Ok(vectors
            .iter()
            .map(|r| {
                self.c
                    .par_chunks(self.n)
                    .map(|row| row.iter().zip(r).map(|(c, r)| c * r).sum())
                    .collect()
            })
            .collect())
    }

    fn product_entries(&mut self, entries: &[(usize, usize)]) -> Result<Vec<f64>> {
        Ok(entries
            .iter()
            .map(|&(i, j)| self.c[i * self.n + j])
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A correct product as a device computing in `dtype` would store it: inputs as stored,
    /// accumulation in f32 (f64 for fp64), output rounded to the output format.
    fn device_like_product(spec: GemmSpec, seed: u64) -> HostProduct {
        let ops = Operands::new(spec, seed);
        let GemmSpec { m, n, k, dtype } = spec;
        let a: Vec<f64> = (0..m * k).map(|x| ops.a(x / k, x % k)).collect();
        let b: Vec<f64> = (0..k * n).map(|x| ops.b(x / n, x % n)).collect();
        let c: Vec<f64> = (0..m * n)
            .into_par_iter()
            .map(|x| {
                let (i, j) = (x / n, x % n);
                if dtype == GemmDtype::Fp64 {
                    (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum::<f64>()
                } else {
                    let mut acc = 0f32;
                    for l in 0..k {
                        let (av, bv) = (a[i * k + l] as f32, b[l * n + j] as f32);
                        // TF32 hardware drops 13 mantissa bits of each input.
                        let (av, bv) = if dtype == GemmDtype::Tf32 {
                            (truncate_tf32(av), truncate_tf32(bv))
                        } else {
                            (av, bv)
                        };
                        acc += av * bv;
                    }
                    round_output(dtype, acc)
                }
            })
            .collect();
        HostProduct { m, n, c }
    }

    fn truncate_tf32(x: f32) -> f32 {
        f32::from_bits(x.to_bits() & !0x1FFF)
    }

    fn round_output(dtype: GemmDtype, x: f32) -> f64 {
        match dtype {
            GemmDtype::Fp16 => half::f16::from_f32(x).to_f64(),
            GemmDtype::Bf16 | GemmDtype::Fp8E4m3 => half::bf16::from_f32(x).to_f64(),
            _ => x as f64,
        }
    }

    fn check(spec: GemmSpec, product: &mut HostProduct) -> GemmCheck {
        verify(spec, 11, 0, product).expect("host product access cannot fail")
    }

    #[test]
    fn correct_products_pass_at_every_dtype_and_odd_sizes() {
        let shapes = [
            (1, 1, 1),
            (7, 5, 3),
            (33, 17, 65),
            (128, 96, 257),
            (200, 1, 300),
        ];
        for dtype in GemmDtype::ALL {
            for &(m, n, k) in &shapes {
                let spec = GemmSpec { dtype, m, n, k };
                let mut product = device_like_product(spec, 11);
                let result = check(spec, &mut product);
                assert!(result.passed, "{dtype} {m}x{n}x{k}: {}", result.describe());
            }
        }
    }

    #[test]
    fn correct_large_products_pass() {
        for dtype in [GemmDtype::Bf16, GemmDtype::Fp32, GemmDtype::Fp8E4m3] {
            let spec = GemmSpec::square(dtype, 384);
            let mut product = device_like_product(spec, 11);
            let result = check(spec, &mut product);
            assert!(result.passed, "{dtype}: {}", result.describe());
            assert!(
                result.worst_bound_ratio < 0.75,
                "{dtype}: margin too thin {result:?}"
            );
        }
    }

    fn flip_bit(product: &mut HostProduct, i: usize, j: usize, dtype: GemmDtype, bit: u32) {
        let x = &mut product.c[i * product.n + j];
        *x = match dtype {
            GemmDtype::Fp64 => f64::from_bits(x.to_bits() ^ (1u64 << bit)),
            GemmDtype::Bf16 => {
                let v = half::bf16::from_f64(*x);
                half::bf16::from_bits(v.to_bits() ^ (1u16 << bit)).to_f64()
            }
            _ => f32::from_bits((*x as f32).to_bits() ^ (1u32 << bit)) as f64,
        };
    }

    #[test]
    fn planted_faults_are_caught() {
        for dtype in [GemmDtype::Fp32, GemmDtype::Bf16, GemmDtype::Fp64] {
            let spec = GemmSpec {
                dtype,
                m: 96,
                n: 80,
                k: 128,
            };
            let clean = device_like_product(spec, 11);
            // The exponent's top data bit and the top mantissa bit of one entry.
            let (exp_bit, mantissa_top) = match dtype {
                GemmDtype::Fp64 => (61, 51),
                GemmDtype::Bf16 => (13, 6),
                _ => (29, 22),
            };
            // Corrupt the row's largest entry: a flip in a tiny entry is a tiny absolute change,
            // which no O(n²) check can tell from rounding (sampled entries cover those).
            let row = 37;
            let col = (0..spec.n)
                .max_by(|&x, &y| {
                    clean.c[row * spec.n + x]
                        .abs()
                        .total_cmp(&clean.c[row * spec.n + y].abs())
                })
                .unwrap_or(0);
            for bit in [exp_bit, mantissa_top] {
                let mut p = clean.clone();
                flip_bit(&mut p, row, col, dtype, bit);
                let r = check(spec, &mut p);
                assert!(!r.passed, "{dtype}: flip of bit {bit} missed: {r:?}");
            }
            // A zeroed 16×16 tile.
            let mut p = clean.clone();
            for i in 16..32 {
                for j in 32..48 {
                    p.c[i * spec.n + j] = 0.0;
                }
            }
            assert!(!check(spec, &mut p).passed, "{dtype}: zeroed tile missed");
            // Two rows swapped.
            let mut p = clean.clone();
            for j in 0..spec.n {
                p.c.swap(3 * spec.n + j, 70 * spec.n + j);
            }
            assert!(!check(spec, &mut p).passed, "{dtype}: swapped rows missed");
            // NaN in one entry.
            let mut p = clean.clone();
            p.c[5 * spec.n + 5] = f64::NAN;
            assert!(!check(spec, &mut p).passed, "{dtype}: NaN missed");
            // A product of other data (stale memory, wrong seed).
            let mut p = device_like_product(spec, 12);
            assert!(
                !check(spec, &mut p).passed,
                "{dtype}: product of other data passed"
            );
        }
    }

    #[test]
    fn a_product_computed_at_lower_precision_than_claimed_fails() {
        // A device that silently computes "fp32" in bf16 must not pass the fp32 check.
        let spec = GemmSpec::square(GemmDtype::Fp32, 128);
        let exact = device_like_product(spec, 11);
        let mut cheap = exact.clone();
        for (c, e) in cheap.c.iter_mut().zip(&exact.c) {
            *c = half::bf16::from_f64(*e).to_f64();
        }
        assert!(!check(spec, &mut cheap).passed);
    }

    #[test]
    fn flops_follow_the_2mnk_convention() {
        let spec = GemmSpec {
            dtype: GemmDtype::Bf16,
            m: 8192,
            n: 4096,
            k: 1024,
        };
        assert_eq!(spec.flops(), 2.0 * 8192.0 * 4096.0 * 1024.0);
    }

    #[test]
    fn input_rounding_is_round_to_nearest_even() {
        // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to even (1.0).
        let x = 1.0f32 + 2f32.powi(-8);
        assert_eq!(GemmDtype::Bf16.round_input(x), 1.0);
        let y = 1.0f32 + 3.0 * 2f32.powi(-8);
        assert_eq!(GemmDtype::Bf16.round_input(y), 1.0 + 2f64.powi(-6));
        assert_eq!(GemmDtype::Fp8E4m3.round_input(0.3), 0.3125);
        assert_eq!(GemmDtype::Fp16.round_input(1.0 / 3.0), 0.333251953125);
    }
}
