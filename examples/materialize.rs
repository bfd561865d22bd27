//! Write a host description (testdata/hosts/*.yaml) as a root-prefixed tree,
//! so `cgmig … --root DIR` can read it.
//!
//! `cargo run --example materialize -- testdata/hosts/borg-like.yaml /tmp/borg`

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [spec, dir] = args.as_slice() else {
        eprintln!("usage: materialize HOST.yaml DIR");
        std::process::exit(2);
    };
    let run = || -> Result<(), String> {
        let spec = cgmig::fixture::HostSpec::load(&PathBuf::from(spec)).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
        let (rules, _) = cgmig::rules::RuleSet::embedded();
        cgmig::fixture::materialize(&spec, &PathBuf::from(dir), &rules).map_err(|e| e.to_string())
    };
    if let Err(e) = run() {
        eprintln!("materialize: {e}");
        std::process::exit(2);
    }
}
