//! `compare`'s scope from its flags: `--scenarios`, `--duration`,
//! `--warmup` and `--reach-max` ([`super::reach`]) applied to the profile, or which flag is
//! wrong (before anything starts: a clap error, exit 2).

use crate::cli::args::CompareArgs;
use crate::compare::model::Scenario;
use crate::compare::profile::Profile;

impl CompareArgs {
    /// The profile with `--scenarios`, `--duration` and `--warmup` applied,
    /// or which flag is wrong: a list leaving a style nothing to run (the
    /// perf profile's polling variants hold idle connections only).
    pub fn scoped(
        &self,
        mut profile: crate::compare::profile::Profile,
        styles: &[String],
    ) -> Result<crate::compare::profile::Profile, clap::Error> {
        let bad = |m: String| clap::Error::raw(clap::error::ErrorKind::ValueValidation, m + "\n");
        self.reach.apply(&mut profile);
        if let Some(list) = &self.scenarios {
            // A scenario run on request joins the profile's when named.
            let had = profile.scenarios.clone();
            profile.scenarios = Scenario::all()
                .iter()
                .copied()
                .filter(|sc| list.contains(sc) && (had.contains(sc) || sc.on_request()))
                .collect();
            if profile.scenarios.is_empty() {
                return Err(bad(format!(
                    "--scenarios: the {} profile runs none of {}",
                    profile.name,
                    list.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
                )));
            }
            for st in styles {
                if profile.for_style(st).scenarios.is_empty() {
                    return Err(bad(format!(
                        "--scenarios: {st} runs none of them in the {} profile (it runs {})",
                        profile.name,
                        Profile::named(profile.name)
                            .map(|p| p.for_style(st).scenarios)
                            .unwrap_or_default()
                            .iter()
                            .map(|s| s.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        if let Some(d) = self.duration {
            profile.duration = d;
            profile.capacity_step = d;
        }
        if let Some(w) = self.warmup {
            profile.warmup = w;
            profile.capacity_warmup = w;
        }
        Ok(profile)
    }
}
