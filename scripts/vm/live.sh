#@first-boot
# Scenario live: one boot, pure v1 (cgroup2 mounted beside), the divergent
# layout of layout.sh with real processes; scan, plan, then
# `cgmig apply --live --stage N` one stage at a time until no v1 hierarchy
# with a controller is left, checking after each stage every promise of the
# stage (vmcheck stage) and that the hierarchies not yet handed over are
# untouched (vmcheck v1); then `cgmig rollback` of every stage, last first,
# and the v1 layout must be back. A memcg pinned by charged tmpfs pages makes
# the memory stage's preflight refuse, naming it, until the file is gone.
. /vm/layout.sh
U2=$G/unified
mount_layout
build_layout
start_workloads
# Charge tmpfs pages to memory:/pinned: the writer exits, the pages stay.
sh -c "echo \$\$ > $M/pinned/cgroup.procs && exec dd if=/dev/zero of=/tmp/pin bs=64k count=16" 2>/dev/null
cgmig scan -o /persist/snap.json || fail scan
cgmig plan --fail-on never --snapshot /persist/snap.json --format json -o /persist/plan.json || fail plan
section plan /persist/plan.json
PLAN=/persist/plan.json; SNAP=/persist/snap.json
tagged() { sed "s/^CHECK	/CHECK	$1./" > /dev/ttyS1; }
vmcheck v1 $SNAP $PLAN 0 | tagged s0
vmcheck stages $PLAN > /tmp/stages || fail "vmcheck stages"
last=0
while IFS="$(printf '\t')" read -r n ctls cmdline; do
  case ",$ctls," in
    *,memory,*)
      if [ -f /tmp/pin ]; then
        cgmig apply $PLAN --live --yes --match keys --stage $n --journal /persist/journal-$n > /tmp/refused 2>&1
        rc=$?
        [ $rc != 0 ] && refused=yes || refused=no
        check "s$n.preflight.pinned.refused" yes "$refused"
        grep -q "memory:/pinned" /tmp/refused && named=yes || named=no
        check "s$n.preflight.pinned.named" yes "$named"
        section "refused-$n" /tmp/refused
        rm -f /tmp/pin /persist/journal-$n
      fi ;;
  esac
  extra=; [ $n -gt 1 ] && extra=--allow-changed
  cgmig apply $PLAN --live --yes --match keys --stage $n --journal /persist/journal-$n $extra > /tmp/apply-$n 2>&1
  rc=$?
  check "s$n.apply.exit" 0 "$rc"
  [ $rc = 0 ] || section "apply-$n" /tmp/apply-$n
  for c in $(echo "$ctls" | tr , ' '); do
    case $c in cpuacct|net_cls|net_prio|devices|freezer|perf_event) continue ;; esac
    v2=$c; [ $c = blkio ] && v2=io
    grep -qw "$v2" $U2/cgroup.controllers && on=yes || on=no
    check "s$n.v2.offers.$v2" yes "$on"
  done
  vmcheck stage $SNAP $PLAN $n $U2 | tagged "s$n"
  vmcheck v1 $SNAP $PLAN $n | tagged "s$n"
  last=$n
done < /tmp/stages
check "v1.hierarchies_with_controllers_left" "" "$(v1_left | tr '\n' ' ')"
n=$last
while [ $n -ge 1 ]; do
  if [ -f /persist/journal-$n ]; then
    cgmig rollback /persist/journal-$n --yes > /tmp/rollback-$n 2>&1
    rc=$?
    check "rollback.s$n.exit" 0 "$rc"
    [ $rc = 0 ] || section "rollback-$n" /tmp/rollback-$n
  fi
  n=$((n - 1))
done
vmcheck v1 $SNAP $PLAN 0 | tagged rollback
check "rollback.v2.subtree_control" "" "$(cat $U2/cgroup.subtree_control)"
finish
