//! Execution segments: instance `I` of `N` runs a deterministic slice of a script's
//! load, so that `N` independent processes (the pods of a Kubernetes Indexed Job)
//! together run the whole script once, with no coordinator.
//!
//! Integer quantities (users) are split with `floor((I+1)·X/N) − floor(I·X/N)`, so the
//! slices add up to `X` exactly; rates are divided by `N`; CSV rows are dealt out
//! round-robin (instance `I` reads rows `I`, `I+N`, `I+2N`, ...).

use std::fmt;
use std::str::FromStr;

/// Why a segment could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    /// Not of the form `I/N`.
    #[error("`{0}`: expected I/N, e.g. 0/3 (instance I, 0-based, of N)")]
    Syntax(String),
    /// `N` is 0 or `I` is not below `N`.
    #[error("`{0}`: expected 0 <= I < N and N >= 1")]
    Range(String),
}

/// Instance `index` (0-based) of `count` instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    index: u32,
    count: u32,
}

impl Segment {
    /// Instance `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Self> {
        (index < count).then_some(Self { index, count })
    }

    /// The whole load: instance 0 of 1.
    pub fn whole() -> Self {
        Self { index: 0, count: 1 }
    }

    /// This instance's 0-based index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The number of instances.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// This instance's share of an integer quantity `x`:
    /// `floor((I+1)·x/N) − floor(I·x/N)`. The shares of all instances add up to `x`.
    pub fn share(&self, x: u32) -> u32 {
        let bound = |i: u32| u64::from(i) * u64::from(x) / u64::from(self.count);
        // The difference is at most x, so it fits.
        u32::try_from(bound(self.index + 1) - bound(self.index)).unwrap_or(x)
    }

    /// This instance's share of a rate: `x / N`.
    pub fn share_rate(&self, x: f64) -> f64 {
        x / f64::from(self.count)
    }

    /// True when row `row` (0-based) of a CSV source belongs to this instance.
    pub fn owns_row(&self, row: usize) -> bool {
        row % self.count as usize == self.index as usize
    }

    /// True for instance 0 of 1, which changes nothing.
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Segment {
    type Err = SegmentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let (index, count) = trimmed
            .split_once('/')
            .ok_or_else(|| SegmentError::Syntax(text.to_string()))?;
        let parse = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| SegmentError::Syntax(text.to_string()))
        };
        let (index, count) = (parse(index)?, parse(count)?);
        Segment::new(index, count).ok_or_else(|| SegmentError::Range(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::Segment;

    fn seg(i: u32, n: u32) -> Segment {
        Segment::new(i, n).expect("valid")
    }

    #[test]
    fn shares_add_up_exactly() {
        for n in 1..=7 {
            for x in [0, 1, 2, 5, 10, 50, 99, 1000, u32::MAX] {
                let total: u64 = (0..n).map(|i| u64::from(seg(i, n).share(x))).sum();
                assert_eq!(total, u64::from(x), "x={x} n={n}");
            }
        }
        assert_eq!(
            (0..3).map(|i| seg(i, 3).share(10)).collect::<Vec<_>>(),
            [3, 3, 4]
        );
        assert_eq!(
            (0..3).map(|i| seg(i, 3).share(2)).collect::<Vec<_>>(),
            [0, 1, 1]
        );
    }

    #[test]
    fn rows_are_dealt_round_robin() {
        let rows: Vec<usize> = (0..10).filter(|r| seg(1, 3).owns_row(*r)).collect();
        assert_eq!(rows, [1, 4, 7]);
        assert!((seg(2, 4).share_rate(3000.0) - 750.0).abs() < 1e-9);
    }

    #[test]
    fn parses_i_of_n() {
        assert_eq!("2/5".parse::<Segment>(), Ok(seg(2, 5)));
        assert_eq!(" 0/1 ".parse::<Segment>(), Ok(Segment::whole()));
        assert_eq!(seg(2, 5).to_string(), "2/5");
        for bad in ["3/3", "1/0", "a/2", "2", "-1/2", "1/2/3"] {
            assert!(bad.parse::<Segment>().is_err(), "{bad}");
        }
    }
}
