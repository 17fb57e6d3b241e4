//! `loadgen`: drive an echo server and report honestly what it did.
//! All logic lives in the library (`loadgen::cli`).

fn main() {
    match loadgen::cli::main_with(std::env::args_os().collect()) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            std::process::exit(1);
        }
    }
}
