//! Integration tests: one binary, modules by topic (ripgrep's layout).

mod util;

// The per-host test macros: declared before the modules that use them.
#[macro_use]
mod hosts;

mod apply_cli;
mod apply_kernel;
mod apply_sim;
mod apply_tamper;
mod assessment;
mod audit;
mod bad;
mod cli;
mod convert;
mod docs;
mod fleet;
mod fleet_vm;
mod fuzz;
mod kernel;
mod kernel_util;
mod layers;
mod nosys;
mod oracle;
mod output;
mod owners;
mod owners_host;
mod plan;
mod plan_passes;
mod prop;
mod readiness;
mod release;
mod replay;
mod runtimes;
mod runtimes_vm;
mod scan;
mod sim_kernel;
mod stages;
mod systemd_vm;
mod verify;
mod vm;
