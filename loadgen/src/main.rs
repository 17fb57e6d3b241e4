//! `loadgen`: drive an echo server and report honestly what it did.
//! All logic lives in the library (`loadgen::cli`).

fn main() {
    match loadgen::cli::main_with(std::env::args_os().collect()) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn the error into a panic.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "loadgen: error: {e:#}");
            std::process::exit(1);
        }
    }
}
