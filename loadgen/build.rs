//! Records the git revision loadgen was built from, for the environment
//! fingerprint of every result.

use std::process::Command;

fn main() {
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let rev = if dirty { format!("{rev}-dirty") } else { rev };
    println!("cargo:rustc-env=LOADGEN_GIT_REVISION={rev}");
    // Re-run on commits and on source edits, so "-dirty" stays true.
    // logs/HEAD grows on every commit and checkout, so the revision follows.
    for path in [
        "../.git/HEAD",
        "../.git/logs/HEAD",
        "../.git/index",
        "src",
        "../servers/src",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
}
