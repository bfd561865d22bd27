#!/bin/sh
# The guest's half of scripts/vm-systemd, run by cgmig-hook.service from the
# 9p share at every boot. Boot 1 (hybrid): install the units, start them,
# scan, audit, plan, convert, and install the plan's drop-ins (the steps of
# a migration before its reboot). Boot 2 (the plan's unified command line):
# apply the plan (cgmig's own nodes; processes by their stable keys), scan,
# verify. Each boot writes out/PHASE/ and powers off.
P=/cgmig
if grep -qw 'systemd.unified_cgroup_hierarchy=0' /proc/cmdline; then PHASE=hybrid; else PHASE=unified; fi
O=$P/out/$PHASE
mkdir -p $O
exec > $O/hook.log 2>&1
set -x
install -m 755 $P/cgmig /usr/local/bin/cgmig
systemctl --version | head -1 > $O/systemd-version
uname -r > $O/kernel
UNITS="cgmig-test.slice v1dirs.service v2hi.service v2lo.service legacy-jobs.service"
if [ $PHASE = hybrid ]; then
  install -m 755 $P/systemd/legacy-jobs /usr/local/bin/legacy-jobs
  for u in $UNITS; do install -m 644 $P/systemd/$u /etc/systemd/system/$u; done
  systemctl daemon-reload
  systemctl enable v1dirs.service v2hi.service v2lo.service legacy-jobs.service
  systemctl start v1dirs.service v2hi.service v2lo.service legacy-jobs.service
  sleep 5
  cgmig scan -o $O/snap.json 2> $O/scan.err
  cgmig audit --format json --fail-on never -o $O/audit.json 2> $O/audit.err
  cgmig audit --fail-on never -o $O/audit.txt 2>> $O/audit.err
  cgmig plan --fail-on never --format json -o $O/plan.json 2> $O/plan.err
  echo $? > $O/plan.rc
  cgmig plan --fail-on never -o $O/plan.txt 2>> $O/plan.err
  cgmig convert -o $O/convert > $O/convert.out 2>&1
  echo $? > $O/convert.rc
  # The plan's drop-ins: each unit's v2 directives, each delegation, and the
  # delegation of a unit a top-level tree moves into.
  python3 - $O/plan.json > $O/installed.txt <<'PY'
import json, os, sys
p = json.load(open(sys.argv[1]))
o = p.get("owners", {})
files = [u["dropin"] for u in o.get("units", []) if u.get("dropin")]
files += [d["dropin"] for d in o.get("delegations", []) if d.get("dropin")]
files += [s["file"] for s in o.get("suggestions", []) if s.get("existing_unit")]
for f in files:
    os.makedirs(os.path.dirname(f["path"]), exist_ok=True)
    with open(f["path"], "w") as out:
        out.write(f["text"])
    print(f["path"])
PY
  systemctl daemon-reload
  systemd-cgls --no-pager > $O/cgls.txt 2>&1
else
  sleep 5
  cgmig apply $P/out/hybrid/plan.json --yes --journal $O/journal.json > $O/apply.txt 2>&1
  echo $? > $O/apply.rc
  sleep 1
  cgmig scan -o $O/snap.json 2> $O/scan.err
  # verify.json: the verdict on snap.json, which the host test recomputes and
  # compares exactly; verify-live.json: the verdict on a second, live scan.
  cgmig verify --plan $P/out/hybrid/plan.json --snapshot $O/snap.json --format json -o $O/verify.json --fail-on never 2> $O/verify.err
  cgmig verify --plan $P/out/hybrid/plan.json --format json -o $O/verify-live.json --fail-on never 2>> $O/verify.err
  cgmig verify --plan $P/out/hybrid/plan.json -o $O/verify.txt 2>> $O/verify.err
  echo $? > $O/verify.rc
  systemd-cgls --no-pager > $O/cgls.txt 2>&1
  # What systemd does at the root to a controller no unit asks for
  # (docs/owners.md, "What systemd enables"): io kept busy by a child that
  # enables it below, cpuset used directly by a top-level leaf; then a
  # daemon-reload re-realizes the root.
  G=/sys/fs/cgroup
  mkdir -p $G/cgmig-busy/child $G/cgmig-leaf
  echo "before=$(cat $G/cgroup.subtree_control)" > $O/rootenable.txt
  echo "+io +cpuset" > $G/cgroup.subtree_control
  echo +io > $G/cgmig-busy/cgroup.subtree_control
  echo "default 77" > $G/cgmig-busy/child/io.weight
  echo 0 > $G/cgmig-leaf/cpuset.cpus
  echo "written=$(cat $G/cgroup.subtree_control)" >> $O/rootenable.txt
  systemctl daemon-reload
  sleep 2
  {
    echo "after=$(cat $G/cgroup.subtree_control)"
    echo "busy_child_io_weight=$(head -1 $G/cgmig-busy/child/io.weight 2>/dev/null || echo gone)"
    echo "leaf_cpuset_cpus=$(cat $G/cgmig-leaf/cpuset.cpus 2>/dev/null || echo gone)"
  } >> $O/rootenable.txt
fi
sync
echo done > $O/DONE
systemctl poweroff --no-block
