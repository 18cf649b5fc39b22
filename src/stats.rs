//! Order statistics, a distribution-free confidence interval of the median, and adaptive stopping.
//!
//! Benchmark timings are skewed and heavy-tailed (a preempted sample can take 10× longer), so
//! gpuaudit summarises them by the median and gives its confidence interval from order statistics:
//! the interval `[x_(j), x_(n-j+1)]` covers the true median with probability
//! `1 - 2·P(Bin(n, ½) ≤ j-1)`, whatever the distribution (e.g. Hahn & Meeker, *Statistical
//! Intervals*, §5.2). No normality is assumed, and outliers cannot drag it.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Summary of one set of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    /// Confidence interval of the median at `ci_level` (nominally 95%).
    pub ci: [f64; 2],
    /// The coverage actually achieved: below the nominal level when `n` is too small (n < 6 for
    /// 95%), in which case `ci` is `[min, max]`.
    pub ci_coverage: f64,
    pub min: f64,
    pub max: f64,
    pub p05: f64,
    pub p95: f64,
}

impl Summary {
    /// Summarise `samples` with a confidence interval of the median at `level` (e.g. 0.95).
    /// Returns `None` for an empty set or one containing NaN.
    pub fn of(samples: &[f64], level: f64) -> Option<Summary> {
        if samples.is_empty() || samples.iter().any(|x| x.is_nan()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (lo, hi, coverage) = median_ci_bounds(sorted.len(), level);
        Some(Summary {
            n: sorted.len(),
            median: percentile_sorted(&sorted, 0.5),
            ci: [sorted[lo], sorted[hi]],
            ci_coverage: coverage,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            p05: percentile_sorted(&sorted, 0.05),
            p95: percentile_sorted(&sorted, 0.95),
        })
    }

    /// Half the CI's width relative to the median: the `--precision` the run asked for.
    pub fn relative_half_width(&self) -> f64 {
        if self.median == 0.0 {
            return f64::INFINITY;
        }
        (self.ci[1] - self.ci[0]) / 2.0 / self.median.abs()
    }

    /// The same summary after a strictly decreasing transform (e.g. time → throughput), which
    /// swaps the roles of lower and upper bounds. Order statistics commute with monotone maps,
    /// so this is exact, not an approximation (percentiles interpolate, so p05/p95 are close).
    pub fn map_decreasing(&self, f: impl Fn(f64) -> f64) -> Summary {
        Summary {
            n: self.n,
            median: f(self.median),
            ci: [f(self.ci[1]), f(self.ci[0])],
            ci_coverage: self.ci_coverage,
            min: f(self.max),
            max: f(self.min),
            p05: f(self.p95),
            p95: f(self.p05),
        }
    }
}

/// Percentile `q` in [0, 1] of sorted data, by linear interpolation between closest ranks
/// (type 7 of Hyndman & Fan, the default of R and numpy).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// Percentile of unsorted data.
pub fn percentile(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile_sorted(&sorted, q)
}

pub fn median(samples: &[f64]) -> f64 {
    percentile(samples, 0.5)
}

/// Median absolute deviation (unscaled).
pub fn mad(samples: &[f64]) -> f64 {
    let m = median(samples);
    let deviations: Vec<f64> = samples.iter().map(|x| (x - m).abs()).collect();
    median(&deviations)
}

/// P(Bin(n, ½) ≤ k), computed in log space so that it stays accurate for large n.
pub fn binomial_half_cdf(n: usize, k: usize) -> f64 {
    if k >= n {
        return 1.0;
    }
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    let mut ln_pmf = ln_half_n; // ln P(X = 0)
    let mut cdf = ln_pmf.exp();
    for i in 0..k {
        ln_pmf += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
        cdf += ln_pmf.exp();
    }
    cdf.min(1.0)
}

/// Zero-based indices `(lo, hi)` into sorted data of the median's confidence interval at `level`,
/// and the coverage achieved. The interval is the narrowest symmetric pair of order statistics
/// whose coverage is at least `level`; if even `[min, max]` falls short (tiny n), that is returned
/// with its true, lower coverage.
pub fn median_ci_bounds(n: usize, level: f64) -> (usize, usize, f64) {
    assert!(n > 0, "median_ci_bounds needs at least one sample");
    let alpha_half = (1.0 - level) / 2.0;
    // Largest j (1-based) with P(X ≤ j-1) ≤ α/2. The tail grows with j, so walk up from j = 1.
    let mut j = 0usize;
    let mut tail_at_j = 0.0;
    for candidate in 1..=n.div_ceil(2) {
        let tail = binomial_half_cdf(n, candidate - 1);
        if tail <= alpha_half {
            j = candidate;
            tail_at_j = tail;
        } else {
            break;
        }
    }
    if j == 0 {
        let tail = binomial_half_cdf(n, 0);
        return (0, n - 1, (1.0 - 2.0 * tail).max(0.0));
    }
    (j - 1, n - j, 1.0 - 2.0 * tail_at_j)
}

/// Why sampling stopped: recorded in every measurement so a reader knows whether the precision
/// asked for was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The CI's relative half-width reached the requested precision.
    PrecisionReached,
    /// The per-benchmark time budget ran out first.
    TimeBudget,
    /// The sample cap was reached first.
    SampleLimit,
    /// The user interrupted the run.
    Interrupted,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::PrecisionReached => "precision reached",
            StopReason::TimeBudget => "time budget",
            StopReason::SampleLimit => "sample limit",
            StopReason::Interrupted => "interrupted",
        })
    }
}

/// A decision still open on the samples so far (see [`StoppingRule::should_stop_deciding`]).
pub type Undecided<'a> = &'a dyn Fn(&[f64]) -> bool;

/// When to stop sampling: once the median's CI is tight enough (after a minimum number of
/// samples), or when the time budget or sample cap is reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoppingRule {
    /// Target relative half-width of the CI (e.g. 0.01 for ±1%).
    pub precision: f64,
    /// Confidence level of the CI (e.g. 0.95).
    pub level: f64,
    pub min_samples: usize,
    pub max_samples: usize,
    /// Wall-clock budget for the sampling loop of one benchmark.
    pub budget: Duration,
}

impl Default for StoppingRule {
    fn default() -> Self {
        StoppingRule {
            precision: 0.01,
            level: 0.95,
            // With fewer than 6 samples no 95% interval exists; 10 gives a usable one.
            min_samples: 10,
            max_samples: 10_000,
            budget: Duration::from_secs(60),
        }
    }
}

impl StoppingRule {
    /// Decide whether to stop after the samples so far, `elapsed` into the budget.
    /// The time budget always wins, even below `min_samples`: a run must end when promised.
    pub fn should_stop(&self, samples: &[f64], elapsed: Duration) -> Option<StopReason> {
        self.should_stop_deciding(samples, elapsed, None)
    }

    /// As [`should_stop`](Self::should_stop), with an optional decision predicate (a contract
    /// target on this measurement): while it reports the decision open, reaching the precision
    /// does not stop sampling; only the time budget or the sample cap does. Paying a little more
    /// test time beats an inconclusive verdict on capacity paid for by the hour.
    pub fn should_stop_deciding(
        &self,
        samples: &[f64],
        elapsed: Duration,
        undecided: Option<Undecided<'_>>,
    ) -> Option<StopReason> {
        if elapsed >= self.budget && !samples.is_empty() {
            return Some(StopReason::TimeBudget);
        }
        if samples.len() >= self.max_samples {
            return Some(StopReason::SampleLimit);
        }
        if samples.len() >= self.min_samples.max(1) {
            let summary = Summary::of(samples, self.level)?;
            if summary.ci_coverage >= self.level
                && summary.relative_half_width() <= self.precision
                && !undecided.is_some_and(|open| open(samples))
            {
                return Some(StopReason::PrecisionReached);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::CounterRng;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn percentiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4, 10], [5, 25, 50, 95]) = [1.2, 2, 3, 8.8]
        let data = [10.0, 1.0, 3.0, 2.0, 4.0];
        assert!(close(percentile(&data, 0.05), 1.2, 1e-12));
        assert!(close(percentile(&data, 0.25), 2.0, 1e-12));
        assert!(close(median(&data), 3.0, 1e-12));
        assert!(close(percentile(&data, 0.95), 8.8, 1e-12));
        assert_eq!(median(&[1.0, 2.0]), 1.5);
        assert_eq!(median(&[7.0]), 7.0);
    }

    #[test]
    fn mad_ignores_a_single_outlier() {
        let data = [1.0, 2.0, 3.0, 4.0, 1000.0];
        assert_eq!(mad(&data), 1.0);
    }

    #[test]
    fn binomial_cdf_known_values() {
        // P(Bin(10, .5) ≤ 1) = 11/1024
        assert!(close(binomial_half_cdf(10, 1), 11.0 / 1024.0, 1e-15));
        // P(Bin(20, .5) ≤ 5) = 21700/1048576
        assert!(close(
            binomial_half_cdf(20, 5),
            21700.0 / 1_048_576.0,
            1e-15
        ));
        assert_eq!(binomial_half_cdf(5, 5), 1.0);
        // Symmetry at large n: P(X ≤ n/2 - 1) + P(X ≤ n/2) = 1 for even n... approximately ½ each.
        let n = 5000;
        let below = binomial_half_cdf(n, n / 2 - 1);
        assert!((0.48..0.5).contains(&below), "{below}");
    }

    #[test]
    fn median_ci_order_statistics_match_tables() {
        // Standard tables for the 95% median CI (e.g. Conover): n=10 → x(2)..x(9) with coverage
        // 0.9785; n=20 → x(6)..x(15), coverage 0.9586; n=100 → x(40)..x(61), 0.9648.
        let (lo, hi, cov) = median_ci_bounds(10, 0.95);
        assert_eq!((lo, hi), (1, 8));
        assert!(close(cov, 0.978_515_625, 1e-9));
        let (lo, hi, cov) = median_ci_bounds(20, 0.95);
        assert_eq!((lo, hi), (5, 14));
        assert!(close(cov, 0.958_610_5, 1e-6));
        let (lo, hi, cov) = median_ci_bounds(100, 0.95);
        assert_eq!((lo, hi), (39, 60));
        assert!(close(cov, 0.964_8, 1e-4), "{cov}");
    }

    #[test]
    fn median_ci_with_too_few_samples_reports_true_coverage() {
        let (lo, hi, cov) = median_ci_bounds(5, 0.95);
        assert_eq!((lo, hi), (0, 4));
        assert!(close(cov, 1.0 - 2.0 / 32.0, 1e-12)); // 0.9375 < 0.95
        let (lo, hi, cov) = median_ci_bounds(1, 0.95);
        assert_eq!((lo, hi), (0, 0));
        assert_eq!(cov, 0.0);
        // n = 6 is the first size with a true 95% interval: [min, max], coverage 1 - 2/64.
        let (lo, hi, cov) = median_ci_bounds(6, 0.95);
        assert_eq!((lo, hi), (0, 5));
        assert!(close(cov, 0.968_75, 1e-12));
    }

    /// Draws from a known distribution by inverse CDF of the shared counter RNG.
    fn draws(n: usize, seed: u64, inverse_cdf: impl Fn(f64) -> f64) -> Vec<f64> {
        let rng = CounterRng::new(seed, 99);
        (0..n as u64)
            .map(|i| {
                let u = (rng.uniform_f32(i) as f64 + 1.0) / 2.0; // [0, 1)
                inverse_cdf(u.clamp(1e-9, 1.0 - 1e-9))
            })
            .collect()
    }

    #[test]
    fn median_ci_covers_the_true_median_of_a_heavy_tailed_distribution() {
        // Pareto(α = 1.1, x_m = 1): infinite variance, true median 2^(1/1.1) = 1.8778.
        // Over 400 independent runs of n = 30 the 95% interval should cover it ≥ 90% of the time
        // (binomial noise around the ~95.7% coverage of n = 30), and never be absurdly wide.
        let true_median = 2f64.powf(1.0 / 1.1);
        let mut covered = 0;
        for run in 0..400u64 {
            let x = draws(30, run, |u| (1.0 - u).powf(-1.0 / 1.1));
            let s = Summary::of(&x, 0.95).expect("non-empty");
            if s.ci[0] <= true_median && true_median <= s.ci[1] {
                covered += 1;
            }
            assert!(
                s.ci[1] < 10.0,
                "CI upper bound {} dragged by the tail",
                s.ci[1]
            );
        }
        assert!((360..=400).contains(&covered), "covered {covered} of 400");
    }

    #[test]
    fn outliers_do_not_move_the_median_or_its_interval() {
        // Normal-ish timings around 10 ms plus three huge outliers (preempted samples).
        let mut x = draws(60, 7, |u| 10.0 + 0.1 * (u - 0.5));
        let clean = Summary::of(&x, 0.95).expect("non-empty");
        x.extend([500.0, 900.0, 1e6]);
        let dirty = Summary::of(&x, 0.95).expect("non-empty");
        assert!(close(dirty.median, clean.median, 0.01));
        assert!(dirty.ci[1] < 10.06, "{:?}", dirty.ci);
        assert_eq!(dirty.max, 1e6);
    }

    #[test]
    fn map_decreasing_turns_times_into_throughput() {
        let times = [2.0, 1.0, 4.0, 3.0, 5.0, 6.0, 7.0];
        let t = Summary::of(&times, 0.95).expect("non-empty");
        let rate = t.map_decreasing(|ms| 100.0 / ms);
        assert_eq!(rate.median, 25.0);
        assert_eq!(rate.max, 100.0);
        assert!(rate.min < rate.median && rate.ci[0] <= rate.median && rate.median <= rate.ci[1]);
        assert_eq!(rate.ci, [100.0 / t.ci[1], 100.0 / t.ci[0]]);
    }

    #[test]
    fn summary_rejects_empty_and_nan() {
        assert!(Summary::of(&[], 0.95).is_none());
        assert!(Summary::of(&[1.0, f64::NAN], 0.95).is_none());
    }

    #[test]
    fn stopping_rule_stops_on_precision_time_or_cap() {
        let rule = StoppingRule {
            precision: 0.01,
            level: 0.95,
            min_samples: 10,
            max_samples: 50,
            budget: Duration::from_secs(10),
        };
        let tight: Vec<f64> = (0..10).map(|i| 100.0 + (i % 3) as f64 * 0.1).collect();
        assert_eq!(
            rule.should_stop(&tight, Duration::from_secs(1)),
            Some(StopReason::PrecisionReached)
        );
        // Below min_samples: keep going even if tight.
        assert_eq!(rule.should_stop(&tight[..5], Duration::from_secs(1)), None);
        // Wide spread (±20%): keep going until the budget ends.
        let wide: Vec<f64> = (0..20).map(|i| 80.0 + (i * 7 % 40) as f64).collect();
        assert_eq!(rule.should_stop(&wide, Duration::from_secs(1)), None);
        assert_eq!(
            rule.should_stop(&wide, Duration::from_secs(10)),
            Some(StopReason::TimeBudget)
        );
        // The budget wins even with fewer than min_samples.
        assert_eq!(
            rule.should_stop(&wide[..2], Duration::from_secs(11)),
            Some(StopReason::TimeBudget)
        );
        // An open decision keeps a precise measurement sampling until the budget or the cap.
        let open = |_: &[f64]| true;
        let closed = |_: &[f64]| false;
        assert_eq!(
            rule.should_stop_deciding(&tight, Duration::from_secs(1), Some(&open)),
            None
        );
        assert_eq!(
            rule.should_stop_deciding(&tight, Duration::from_secs(1), Some(&closed)),
            Some(StopReason::PrecisionReached)
        );
        assert_eq!(
            rule.should_stop_deciding(&tight, Duration::from_secs(10), Some(&open)),
            Some(StopReason::TimeBudget)
        );
        let many: Vec<f64> = (0..50).map(|i| 80.0 + (i * 7 % 40) as f64).collect();
        assert_eq!(
            rule.should_stop(&many, Duration::from_secs(1)),
            Some(StopReason::SampleLimit)
        );
    }
}
