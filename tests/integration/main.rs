//! Integration tests: one binary, modules by topic (ripgrep's layout).

mod util;

mod apply_cli;
mod apply_sim;
mod audit;
mod cli;
mod kernel;
mod oracle;
mod plan;
mod prop;
mod scan;
mod vm;
