//! How a cell is found in both runs: which run a side is ([`Side`]), and
//! a point's name as runs are matched on it ([`point_key`]). Below the
//! cells ([`super::cells`]) and the pairs ([`super::paired`]), which both
//! key runs this way.

/// Which of the two runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Old,
    New,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Old => "baseline",
            Side::New => "new",
        }
    }
}

/// What a point is called when matching runs: its parameters without
/// what was derived from the run itself ("90% of max = 47384/s" is
/// "90% of max": the rate is the fraction of that run's own maximum), the
/// words in any order.
pub fn point_key(point: &str) -> String {
    let mut words: Vec<&str> = params(point).split_whitespace().collect();
    words.sort_unstable();
    words.join(" ")
}

/// A point's name without its derived part.
pub(super) fn params(point: &str) -> &str {
    point.split(" = ").next().unwrap_or(point).trim()
}
