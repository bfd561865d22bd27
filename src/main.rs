//! The `cgmig` binary: argument parsing and exit codes only (see `cgmig::cli`).

fn main() {
    std::process::exit(cgmig::cli::main());
}
