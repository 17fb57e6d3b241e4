//! `servers <STYLE>`: the echo service in one concurrency style.
//! All logic lives in the library (`servers::cli`).

fn main() {
    if let Err(e) = servers::cli::run(std::env::args_os().collect()) {
        eprintln!("servers: error: {e:#}");
        std::process::exit(1);
    }
}
