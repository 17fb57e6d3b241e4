//! A change against a baseline as a whole: the cells of two comparisons
//! ([`super::cells`]), what one side lacks, how the two were set up
//! differently, the cells by verdict, and the regressions.

use super::cells::{self, Cell, Missing, Verdict};
use crate::compare::model::CompareResults;
use crate::report::capacity;

/// A comparison against a baseline: its cells and what one side lacks.
pub struct Diff {
    /// What the two runs are called in the text (their paths).
    pub old_name: String,
    pub new_name: String,
    pub cells: Vec<Cell>,
    pub missing: Missing,
    /// How the two runs were made differently (profile, machine...), in
    /// words: figures from different set-ups are not the same cells.
    pub differences: Vec<String>,
}

/// Cells by verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub improved: usize,
    pub regressed: usize,
    pub within_noise: usize,
    pub failed: usize,
    pub one_side: usize,
    pub no_base: usize,
    /// Cells where a side is only a bound and the bounds decide nothing.
    pub bounded: usize,
    /// Cells measured under conditions that make them no evidence.
    pub not_compared: usize,
    /// Cells read without a repeat that failed (counted in their verdict
    /// too).
    pub left_out: usize,
}

impl Diff {
    pub fn new(old: &CompareResults, new: &CompareResults, old_name: &str, new_name: &str) -> Diff {
        // Capacity cells come from the searches, not from runs.
        let (cells, missing) = cells::match_runs(old, new, super::capacity::cells(old, new));
        Diff {
            old_name: old_name.into(),
            new_name: new_name.into(),
            cells,
            missing,
            differences: differences(old, new),
        }
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for cell in &self.cells {
            match cell.verdict {
                Verdict::Improved => c.improved += 1,
                Verdict::Regressed => c.regressed += 1,
                Verdict::WithinNoise => c.within_noise += 1,
                Verdict::Failed(_) => c.failed += 1,
                Verdict::OnlyIn(_) => c.one_side += 1,
                Verdict::NoBase => c.no_base += 1,
                Verdict::Bounded => c.bounded += 1,
                Verdict::NotCompared(_) => c.not_compared += 1,
            }
            let failed = |m: &Option<cells::Measured>| m.as_ref().is_some_and(|m| m.failed > 0);
            if !matches!(cell.verdict, Verdict::Failed(_))
                && (failed(&cell.old) || failed(&cell.new))
            {
                c.left_out += 1;
            }
        }
        c
    }

    /// Cells that got worse beyond noise by more than `pct` %.
    pub fn regressions(&self, pct: f64) -> Vec<&Cell> {
        self.cells
            .iter()
            .filter(|c| {
                c.verdict == Verdict::Regressed && c.change_pct.is_some_and(|x| x.abs() > pct)
            })
            .collect()
    }
}

/// How two comparisons were set up differently, in words.
fn differences(old: &CompareResults, new: &CompareResults) -> Vec<String> {
    let mut out = Vec::new();
    let mut differs = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: {a} in the baseline, {b} in the new run"));
        }
    };
    let (eo, en) = (&old.environment, &new.environment);
    differs("profile", old.profile.clone(), new.profile.clone());
    differs("repeats", old.repeat.to_string(), new.repeat.to_string());
    differs(
        "CPU",
        format!("{} x {}", eo.cores, eo.cpu_model),
        format!("{} x {}", en.cores, en.cpu_model),
    );
    differs("kernel", eo.kernel.clone(), en.kernel.clone());
    differs("network", old.network.clone(), new.network.clone());
    differs(
        "server CPUs",
        format!("{:?}", old.server_cpus),
        format!("{:?}", new.server_cpus),
    );
    differs(
        "client CPUs",
        format!("{:?}", old.client_cpus),
        format!("{:?}", new.client_cpus),
    );
    let quota = |r: &CompareResults| match r.cgroup.as_ref().filter(|c| c.used) {
        Some(c) => c
            .cpu_quota
            .map(|q| format!("{q} CPU"))
            .unwrap_or_else(|| "none".into()),
        None => "no cgroups".into(),
    };
    differs("server CPU quota", quota(old), quota(new));
    // Capacities at two objectives are cells on one side each: say why.
    if let (Some(a), Some(b)) = (capacity::slo(old), capacity::slo(new)) {
        differs("capacity objective", a.to_string(), b.to_string());
    }
    out
}
