#@first-boot
# Scenario boots: the staged boot path, across reboots of one guest.
# Boot 1: pure v1 (cgroup2 beside), the layout of layout.sh with its
# workloads; scan and plan, kept on the persistent disk. Boot k+1: the kernel
# line of the plan's stage k (`cgroup_no_v1=…`, the last one
# `cgroup_no_v1=all`); the guest mounts what v1 still has, builds the layout
# there, starts the same workloads (new PIDs), runs `cgmig apply --stage k`
# (processes matched by the plan's stable keys) and checks the stage's
# promises (vmcheck stage) and that the v1 hierarchies still to go are as
# planned (vmcheck v1).
. /vm/layout.sh
U2=$G/unified
PLAN=/persist/plan.json; SNAP=/persist/snap.json
tagged() { sed "s/^CHECK	/CHECK	$1./" > /dev/ttyS1; }
mount_layout
build_layout
start_workloads
# The stage line of stage N, from the plan.
line() { awk -F '\t' -v n="$1" '$1 == n { print $3 }' /persist/stages; }
if [ "$BOOT" = 1 ]; then
  cgmig scan -o $SNAP || fail scan
  cgmig plan --fail-on never --snapshot $SNAP --format json -o $PLAN || fail plan
  section plan $PLAN
  vmcheck stages $PLAN > /persist/stages || fail "vmcheck stages"
  vmcheck v1 $SNAP $PLAN 0 | tagged b1
  next_boot "$(line 1)"
fi
n=$((BOOT - 1))
grep -q "cgroup_no_v1=" /proc/cmdline || fail "boot $BOOT has no cgroup_no_v1= line"
check "b$BOOT.cmdline.is.stage$n" "$(line $n)" "$(sed 's/.*cgmig\.boot=[0-9]* //' /proc/cmdline)"
cgmig apply $PLAN --stage $n --journal /persist/journal-$n --yes --match keys > /tmp/apply 2>&1
rc=$?
check "b$BOOT.apply.stage$n.exit" 0 "$rc"
[ $rc = 0 ] || section "apply-$n" /tmp/apply
vmcheck stage $SNAP $PLAN $n $U2 | tagged "b$BOOT"
vmcheck v1 $SNAP $PLAN $n | tagged "b$BOOT"
if [ -n "$(line $((n + 1)))" ]; then
  next_boot "$(line $((n + 1)))"
fi
check "b$BOOT.v1.hierarchies_with_controllers_left" "" "$(v1_left | tr '\n' ' ')"
finish
