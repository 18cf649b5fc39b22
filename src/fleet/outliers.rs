//! Outlier rules for a fleet: a robust one across the fleet, and a relative one within a node.
//!
//! Fleet rule: the modified z-score of Iglewicz & Hoaglin (*How to Detect and Handle Outliers*,
//! 1993), `M = 0.6745 · (x − median) / MAD`, flagged when `|M| > 3.5` on the bad side (low for
//! throughput, high for latency). The median and MAD are not dragged by the outliers themselves,
//! unlike a mean and standard deviation. When MAD is 0 (more than half the fleet identical) the
//! same authors' fallback is used: `(x − median) / (1.253314 · mean absolute deviation)`; when
//! that is 0 too, every value equals the median and nothing is an outlier.
//!
//! Neither rule knows the contract: a node that is uniformly slow passes gpu-fryer's relative
//! rule (every GPU within 10% of its best sibling), and a fleet that is mostly slow moves its own
//! median. That is why the fleet verdict also judges every GPU against the contract
//! (`super::verdict`).

use crate::stats::{mad, median};

/// Threshold on the modified z-score recommended by Iglewicz & Hoaglin.
pub const MODIFIED_Z_THRESHOLD: f64 = 3.5;

/// A GPU is a straggler when its value is below this fraction of its siblings' median
/// (throughput; mirrored for latency). 0.9 matches gpu-fryer's "within 10%" tolerance.
pub const STRAGGLER_FRACTION: f64 = 0.9;

/// Location and scale of a fleet metric for the modified z-score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustScale {
    pub median: f64,
    /// The denominator: MAD / 0.6745, or the mean-absolute-deviation fallback; 0 when every
    /// value is the median.
    pub scale: f64,
}

impl RobustScale {
    pub fn of(values: &[f64]) -> Option<RobustScale> {
        if values.is_empty() {
            return None;
        }
        let m = median(values);
        let d = mad(values);
        let scale = if d > 0.0 {
            d / 0.6745
        } else {
            let mean_ad = values.iter().map(|x| (x - m).abs()).sum::<f64>() / values.len() as f64;
            1.253314 * mean_ad
        };
        Some(RobustScale { median: m, scale })
    }

    /// Modified z-score of `x`; 0 when the scale is 0 (every value at the median).
    pub fn z(&self, x: f64) -> f64 {
        if self.scale > 0.0 {
            (x - self.median) / self.scale
        } else {
            0.0
        }
    }

    /// Whether `x` is an outlier on the bad side.
    pub fn is_low_outlier(&self, x: f64, higher_is_better: bool) -> bool {
        let z = self.z(x);
        if higher_is_better {
            z < -MODIFIED_Z_THRESHOLD
        } else {
            z > MODIFIED_Z_THRESHOLD
        }
    }
}

/// For each value of one node's GPUs, the median of its siblings (the others), when it has any.
pub fn sibling_medians(values: &[f64]) -> Vec<Option<f64>> {
    (0..values.len())
        .map(|i| {
            let others: Vec<f64> = values
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &v)| v)
                .collect();
            (!others.is_empty()).then(|| median(&others))
        })
        .collect()
}

/// Whether `value` is far below (throughput) or above (latency) its siblings' median.
pub fn is_straggler(value: f64, siblings_median: f64, higher_is_better: bool) -> bool {
    if higher_is_better {
        value < STRAGGLER_FRACTION * siblings_median
    } else {
        value * STRAGGLER_FRACTION > siblings_median
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_z_flags_the_low_one() {
        let mut v = vec![800.0, 801.0, 799.0, 802.0, 798.0, 800.0, 801.0];
        v.push(700.0);
        let s = RobustScale::of(&v).unwrap();
        assert!(s.is_low_outlier(700.0, true));
        assert!(!s.is_low_outlier(798.0, true));
        assert!(!s.is_low_outlier(900.0, true), "fast is not bad");
        assert!(s.is_low_outlier(900.0, false), "for latency high is bad");
    }

    #[test]
    fn mad_zero_falls_back_to_mean_absolute_deviation() {
        // 5 of 7 identical: MAD = 0, yet 500 is far out.
        let v = [800.0, 800.0, 800.0, 800.0, 800.0, 790.0, 500.0];
        let s = RobustScale::of(&v).unwrap();
        assert!(s.scale > 0.0);
        assert!(s.is_low_outlier(500.0, true));
        // Every value equal: nothing is an outlier, no division by zero.
        let s = RobustScale::of(&[5.0; 4]).unwrap();
        assert_eq!(s.z(5.0), 0.0);
        assert!(!s.is_low_outlier(5.0, true));
        assert!(RobustScale::of(&[]).is_none());
    }

    #[test]
    fn stragglers_against_siblings() {
        let v = [800.0, 805.0, 795.0, 560.0];
        let sib = sibling_medians(&v);
        assert_eq!(sib[3], Some(800.0));
        assert!(is_straggler(560.0, 800.0, true));
        assert!(!is_straggler(795.0, 800.0, true));
        assert!(!is_straggler(725.0, 800.0, true), "90.6% is within 10%");
        assert_eq!(sibling_medians(&[1.0]), vec![None]);
    }
}
