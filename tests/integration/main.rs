//! Integration tests: one binary, modules by topic (ripgrep's layout).

mod util;

mod audit;
mod bad;
mod cli;
mod fuzz;
mod kernel;
mod oracle;
mod plan;
mod prop;
mod scan;
mod vm;
