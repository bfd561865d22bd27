//! A test helper for the VM tests (built static, placed in the guest's
//! initramfs): reads a plan with cgmig's own types, so the guest's shell
//! scripts need no JSON parser.
//!
//! * `vmcheck nodes PLAN`: one line per node, `PATH<TAB>TYPE<TAB>CONTROLLERS`
//!   (the controllers to enable in its `cgroup.subtree_control`, space
//!   separated), parents before children.
//! * `vmcheck settings PLAN`: one line per converted setting,
//!   `PATH<TAB>FILE<TAB>VALUE`, parents before children.
//! * `vmcheck find PLAN LABEL V1PATH`: the v2 path of the node that v1 cgroup
//!   `V1PATH` of the hierarchy holding controller (or name) `LABEL` became.
//! * `vmcheck weight FORMULA SHARES`: cpu.shares → cpu.weight by one formula
//!   (`oci`, `oci-legacy`, `systemd`), as the rules compute it.
//!
//! Exit status 2 with a message on bad input, 1 when nothing matched.

use std::process::ExitCode;

use cgmig::plan::{Plan, PlanNode};
use cgmig::rules::convert::{SharesFormula, shares_to_weight};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match a.as_slice() {
        ["nodes", plan] => load(plan).map(|p| nodes(&p)),
        ["settings", plan] => load(plan).map(|p| settings(&p)),
        ["find", plan, label, path] => load(plan).map(|p| find(&p, label, path)),
        ["weight", formula, shares] => weight(formula, shares),
        _ => Err("usage: vmcheck settings PLAN | find PLAN LABEL V1PATH | weight FORMULA SHARES".into()),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vmcheck: {e}");
            ExitCode::from(2)
        }
    }
}

fn load(path: &str) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

/// The plan's nodes, parents first (fewer slashes, the root before all).
fn by_depth(plan: &Plan) -> Vec<&PlanNode> {
    let mut nodes: Vec<_> = plan.nodes.iter().collect();
    nodes.sort_by_key(|n| (n.path != "/", n.path.matches('/').count()));
    nodes
}

fn nodes(plan: &Plan) -> bool {
    for n in by_depth(plan) {
        let ty = serde_json::to_value(n.node_type).ok();
        let ty = ty.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
        println!("{}\t{ty}\t{}", n.path, n.subtree_control.join(" "));
    }
    true
}

fn settings(plan: &Plan) -> bool {
    for n in by_depth(plan) {
        for s in &n.settings {
            println!("{}\t{}\t{}", n.path, s.file, s.value);
        }
    }
    true
}

/// Whether a hierarchy label (`cpu,cpuacct`, `name=systemd`) names `want`.
fn label_has(label: &str, want: &str) -> bool {
    label
        .split(',')
        .any(|c| c == want || c.strip_prefix("name=") == Some(want))
}

fn find(plan: &Plan, label: &str, path: &str) -> bool {
    let hit = plan.nodes.iter().find(|n| {
        n.origins
            .iter()
            .any(|o| o.path == path && label_has(&o.label, label))
    });
    if let Some(n) = hit {
        println!("{}", n.path);
    }
    hit.is_some()
}

fn weight(formula: &str, shares: &str) -> Result<bool, String> {
    let f = match formula {
        "oci" => SharesFormula::Oci,
        "oci-legacy" => SharesFormula::OciLegacy,
        "systemd" => SharesFormula::Systemd,
        other => return Err(format!("unknown formula {other}")),
    };
    let s: u64 = shares.parse().map_err(|_| format!("bad shares {shares}"))?;
    match shares_to_weight(s, f) {
        Some(w) => println!("{w}"),
        None => println!("unset"),
    }
    Ok(true)
}
