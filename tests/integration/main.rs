//! Integration tests: one binary, modules by topic (ripgrep's layout).

mod util;

mod apply_cli;
mod apply_kernel;
mod apply_sim;
mod audit;
mod cli;
mod kernel;
mod kernel_util;
mod oracle;
mod plan;
mod prop;
mod scan;
mod sim_kernel;
mod vm;
