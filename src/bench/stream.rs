//! STREAM: sustainable memory bandwidth with BabelStream's kernels and byte counts.
//!
//! Arrays a, b, c of f64, initialised to BabelStream's start values (0.1, 0.2, 0.0), scalar 0.4.
//! Kernels and the bytes each counts per element (BabelStream's convention; write-allocate
//! traffic is not counted, GB = 1e9 bytes):
//!
//! | op    | operation        | words moved |
//! |-------|------------------|-------------|
//! | copy  | c = a            | 2           |
//! | scale | b = s·c          | 2           |
//! | add   | c = a + b        | 3           |
//! | triad | a = b + s·c      | 3           |
//! | dot   | sum(a·b)         | 2           |
//!
//! Each op is idempotent once its inputs are fixed, so running one op many times leaves the same
//! state as running it once: the expected contents after any sequence of ops are the scalar replay
//! of that sequence, and every element is checked against them before and after timing.

use serde::{Deserialize, Serialize};

pub const START_VALUES: [f64; 3] = [0.1, 0.2, 0.0];
pub const SCALAR: f64 = 0.4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum StreamOp {
    Copy,
    Scale,
    Add,
    Triad,
    Dot,
}

impl StreamOp {
    /// BabelStream's order, which each op's inputs depend on.
    pub const ALL: [StreamOp; 5] = [
        StreamOp::Copy,
        StreamOp::Scale,
        StreamOp::Add,
        StreamOp::Triad,
        StreamOp::Dot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StreamOp::Copy => "copy",
            StreamOp::Scale => "scale",
            StreamOp::Add => "add",
            StreamOp::Triad => "triad",
            StreamOp::Dot => "dot",
        }
    }

    pub fn parse(name: &str) -> Option<StreamOp> {
        StreamOp::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Arrays read plus arrays written per element.
    pub fn words_moved(self) -> usize {
        match self {
            StreamOp::Copy | StreamOp::Scale | StreamOp::Dot => 2,
            StreamOp::Add | StreamOp::Triad => 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSpec {
    /// Elements per array.
    pub elements: usize,
}

impl StreamSpec {
    pub const ELEMENT_BYTES: usize = std::mem::size_of::<f64>();

    /// Elements per array so that each array is at least `factor`× the last-level cache and at
    /// least `min_array_bytes`: data must stream from memory, not from cache.
    pub fn sized_for_cache(cache_bytes: u64, factor: u64, min_array_bytes: u64) -> StreamSpec {
        let bytes = (cache_bytes.saturating_mul(factor)).max(min_array_bytes);
        StreamSpec {
            elements: (bytes / Self::ELEMENT_BYTES as u64) as usize,
        }
    }

    pub fn array_bytes(&self) -> u64 {
        (self.elements * Self::ELEMENT_BYTES) as u64
    }

    /// Bytes one run of `op` counts (BabelStream's convention).
    pub fn bytes(&self, op: StreamOp) -> f64 {
        (op.words_moved() * Self::ELEMENT_BYTES) as f64 * self.elements as f64
    }
}

/// The contents the arrays must hold, tracked on the host by replaying each op on scalars with
/// the same floating-point operations the kernels perform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpectedState {
    pub values: [f64; 3],
}

impl Default for ExpectedState {
    fn default() -> Self {
        ExpectedState {
            values: START_VALUES,
        }
    }
}

impl ExpectedState {
    pub fn apply(&mut self, op: StreamOp) {
        let [a, b, c] = &mut self.values;
        match op {
            StreamOp::Copy => *c = *a,
            StreamOp::Scale => *b = SCALAR * *c,
            StreamOp::Add => *c = *a + *b,
            StreamOp::Triad => *a = *b + SCALAR * *c,
            StreamOp::Dot => {}
        }
    }

    /// The exact dot product of the current arrays.
    pub fn dot(&self, elements: usize) -> f64 {
        self.values[0] * self.values[1] * elements as f64
    }
}

/// Element-wise results may differ from the host replay by the one rounding a fused multiply-add
/// saves (GPUs contract b + s·c); anything beyond that is wrong.
pub const ELEMENT_REL_TOLERANCE: f64 = 1e-13;

/// A parallel sum of 1e8 equal terms in chunks accumulates at most ~1e-9 relative error;
/// BabelStream uses the same 1e-8 for its dot check.
pub const DOT_REL_TOLERANCE: f64 = 1e-8;

/// Check deviations reported by a backend against the tolerances. Returns the largest relative
/// error seen and, if any exceeds its tolerance, a description.
pub fn judge(
    expected: &ExpectedState,
    deviations: [f64; 3],
    dot: Option<(f64, usize)>,
) -> (f64, Option<String>) {
    let mut worst = 0.0f64;
    let mut problem = None;
    for (i, (dev, exp)) in deviations.iter().zip(expected.values).enumerate() {
        let scale = exp.abs().max(f64::MIN_POSITIVE);
        let rel = dev / scale;
        let rel = if rel.is_nan() { f64::INFINITY } else { rel };
        worst = worst.max(rel);
        // Zero expected (array c before the first copy) must match exactly.
        let tolerance = if exp == 0.0 {
            0.0
        } else {
            ELEMENT_REL_TOLERANCE
        };
        let within = *dev <= tolerance * exp.abs(); // false for NaN
        if !within && problem.is_none() {
            let name = ["a", "b", "c"][i];
            problem = Some(format!(
                "array {name}: an element is off by {dev:e} from the expected {exp}"
            ));
        }
    }
    if let Some((got, elements)) = dot {
        let exact = expected.dot(elements);
        let rel = ((got - exact) / exact).abs();
        let rel = if rel.is_nan() { f64::INFINITY } else { rel };
        worst = worst.max(rel);
        if rel > DOT_REL_TOLERANCE && problem.is_none() {
            problem = Some(format!(
                "dot product {got} differs from {exact} by {rel:e} (relative)"
            ));
        }
    }
    (worst, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_follow_babelstream() {
        let spec = StreamSpec { elements: 1 << 25 };
        // BabelStream default: 2^25 doubles; copy moves 2 × 8 × 2^25 bytes = 536.870912 MB.
        assert_eq!(spec.bytes(StreamOp::Copy), 536_870_912.0);
        assert_eq!(spec.bytes(StreamOp::Triad), 805_306_368.0);
        assert_eq!(spec.bytes(StreamOp::Dot), 536_870_912.0);
        assert_eq!(spec.array_bytes(), 268_435_456);
    }

    #[test]
    fn arrays_are_sized_beyond_the_cache() {
        let spec = StreamSpec::sized_for_cache(32 << 20, 4, 0);
        assert_eq!(spec.array_bytes(), 128 << 20);
        let spec = StreamSpec::sized_for_cache(32 << 20, 4, 256 << 20);
        assert_eq!(spec.array_bytes(), 256 << 20);
    }

    #[test]
    fn expected_state_replays_babelstream_sequence() {
        let mut s = ExpectedState::default();
        for op in StreamOp::ALL {
            s.apply(op);
        }
        // After copy, scale, add, triad: a = 0.096, b = 0.04, c = 0.14 (BabelStream's goldA etc.)
        assert!((s.values[0] - 0.096).abs() < 1e-15);
        assert!((s.values[1] - 0.04).abs() < 1e-15);
        assert!((s.values[2] - 0.14).abs() < 1e-15);
        // Idempotent: again gives the same state.
        let before = s;
        s.apply(StreamOp::Triad);
        assert_eq!(before, s);
    }

    #[test]
    fn judge_accepts_fma_rounding_and_rejects_real_errors() {
        let s = ExpectedState {
            values: [0.096, 0.04, 0.14],
        };
        let ulp = 0.096f64 * f64::EPSILON;
        assert!(judge(&s, [ulp, 0.0, 0.0], None).1.is_none());
        assert!(judge(&s, [1e-9, 0.0, 0.0], None).1.is_some());
        assert!(judge(&s, [f64::NAN, 0.0, 0.0], None).1.is_some());
        let n = 1000;
        assert!(
            judge(&s, [0.0; 3], Some((s.dot(n) * (1.0 + 1e-10), n)))
                .1
                .is_none()
        );
        assert!(judge(&s, [0.0; 3], Some((s.dot(n) * 1.001, n))).1.is_some());
        assert!(judge(&s, [0.0; 3], Some((f64::NAN, n))).1.is_some());
        // Before the first copy c must be exactly zero.
        let start = ExpectedState::default();
        assert!(judge(&start, [0.0, 0.0, 1e-300], None).1.is_some());
    }
}
