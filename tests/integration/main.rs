//! Integration tests: one binary, modules by topic (ripgrep's layout).

mod util;

mod audit;
mod cli;
mod kernel;
mod oracle;
mod owners;
mod plan;
mod prop;
mod scan;
mod systemd_vm;
mod verify;
mod vm;
