#@first-boot
# Scenario behaviour: limits act the same before and after the conversion.
# Boot 1 (pure v1) builds a small layout, plans it once per cpu.shares formula
# (plans kept on the persistent disk) and measures; boot 2 (cgroup_no_v1=all)
# builds the planned v2 tree and measures again:
#   - a memory hog is OOM-killed at the (converted) limit;
#   - two CPU-bound loops pinned to CPU 0 in sibling cgroups share it in the
#     ratio of their shares (v1) or of the converted weights (v2);
#   - pids.max refuses the forks beyond it.
SECS=3          # measuring time of one CPU ratio
MEM_MIB=32      # memory limit of memory:/hog
PIDS=5          # pids.max of pids:/forks
FORMULAS="oci oci-legacy systemd"

# oom_test TAG DIR EVENTS-FILE: run the hog in DIR; it must die at the limit.
oom_test() {
  sh -c "echo \$\$ > $2/cgroup.procs && exec threads hog $((MEM_MIB * 4))" > /tmp/hog.out 2>&1
  rc=$?
  last=$(sed -n 's/^hog \([0-9]*\)$/\1/p' /tmp/hog.out | tail -1)
  check "$1.oom.exit_status" 137 "$rc"
  check_range "$1.oom.mib_reached" $((MEM_MIB - 8)) "$MEM_MIB" "${last:-0}"
  check "$1.oom.$3.oom_kill" 1 "$(awk '/^oom_kill /{print $2}' "$2/$3")"
}

# pids_test TAG DIR: the forker itself is one task; pids.max - 1 children fit.
pids_test() {
  out=$(sh -c "echo \$\$ > $2/cgroup.procs && exec threads forks $((PIDS * 2)) 30")
  check "$1.pids.forks_ok_refused" "forks $((PIDS - 1)) $((PIDS + 1))" "$out"
}

# cpu_ratio DIR_A DIR_B: CPU time of A / CPU time of B, both loops on CPU 0.
cpu_ratio() {
  taskset 1 sh -c "echo \$\$ > '$1/cgroup.procs'; while :; do :; done" & pa=$!
  taskset 1 sh -c "echo \$\$ > '$2/cgroup.procs'; while :; do :; done" & pb=$!
  sleep 1
  a0=$(cpu_used "$1"); b0=$(cpu_used "$2")
  sleep $SECS
  a1=$(cpu_used "$1"); b1=$(cpu_used "$2")
  kill $pa $pb; wait $pa $pb 2>/dev/null
  awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) 'BEGIN { printf "%.2f\n", (b > 0) ? a / b : 0 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }'; }

if [ "$BOOT" = 1 ]; then
  mount_v1
  M=/sys/fs/cgroup/memory; C="/sys/fs/cgroup/cpu,cpuacct"; P=/sys/fs/cgroup/pids
  mkdir $M/hog "$C/hi" "$C/lo" "$C/mid" $P/forks || fail mkdir
  echo $((MEM_MIB << 20)) > $M/hog/memory.limit_in_bytes || fail mem
  echo 2048 > "$C/hi/cpu.shares"; echo 256 > "$C/lo/cpu.shares"   # mid keeps the default 1024
  echo $PIDS > $P/forks/pids.max || fail pids
  cgmig scan -o /persist/snap.json || fail scan
  for f in $FORMULAS; do
    # A user's rules directory overriding the formula of rule cpu.shares.
    mkdir -p /tmp/rules-$f
    printf '%s\n' "- id: cpu.shares" "  title: CPU weight ($f)" \
      "  match: {controller: cpu, file: cpu.shares}" '  default: "1024"' \
      "  convert: {target: cpu.weight, function: shares_to_weight, params: {formula: $f}}" > /tmp/rules-$f/cpu.yaml
    cgmig plan --fail-on never --snapshot /persist/snap.json --rules /tmp/rules-$f --format json -o /persist/plan-$f.json || fail "plan $f"
  done
  section plan /persist/plan-oci.json
  oom_test v1 $M/hog memory.oom_control
  pids_test v1 $P/forks
  for pair in "lo 2048 256" "mid 2048 1024"; do
    set -- $pair
    r=$(cpu_ratio "$C/hi" "$C/$1")
    check_ratio "v1.cpu.ratio.hi/$1" "$(ratio $2 $3)" "$r" 20
    data "RATIO v1 hi/$1 shares $2:$3 predicted $(ratio $2 $3) measured $r"
  done
  next_boot cgroup_no_v1=all
fi

# Boot 2: pure v2, the tree of the oci plan, then each formula's weights.
R=/sys/fs/cgroup
mount -t cgroup2 none $R || fail cgroup2
plan=/persist/plan-oci.json
[ -f $plan ] || fail "no plan on the persistent disk"
vmcheck nodes $plan > /tmp/nodes || fail "vmcheck nodes"
while IFS="$(printf '\t')" read -r path type ctl; do
  [ "$path" = / ] || mkdir -p "$R$path" || fail "mkdir $path"
  for c in $ctl; do echo "+$c" > "$R$path/cgroup.subtree_control" || fail "+$c at $path"; done
done < /tmp/nodes
vmcheck settings $plan > /tmp/settings || fail "vmcheck settings"
while IFS="$(printf '\t')" read -r path file value; do
  echo "$value" > "$R$path/$file" || fail "write $file=$value at $path"
done < /tmp/settings
node() { vmcheck find $plan "$1" "$2" || fail "no node for $1:$2 in the plan"; }
HOG=$R$(node memory /hog); FORKS=$R$(node pids /forks)
HI=$R$(node cpu /hi); LO=$R$(node cpu /lo); MID=$R$(node cpu /mid)
check v2.memory.max "$((MEM_MIB << 20))" "$(cat $HOG/memory.max)"
check v2.pids.max "$PIDS" "$(cat $FORKS/pids.max)"
check v2.cpu.weight.hi.oci "$(vmcheck weight oci 2048)" "$(cat $HI/cpu.weight)"
oom_test v2 $HOG memory.events
pids_test v2 $FORKS
for f in $FORMULAS; do
  p=/persist/plan-$f.json
  vmcheck settings $p > /tmp/s-$f || fail "vmcheck settings $p"
  for n in hi lo mid; do
    path=$(vmcheck find $p cpu /$n) || fail "no node for cpu:/$n in plan-$f"
    # A node without a cpu.weight setting keeps the v2 default, 100.
    w=$(awk -F '\t' -v p="$path" '$1 == p && $2 == "cpu.weight" { print $3 }' /tmp/s-$f)
    echo "${w:-100}" > "$R$path/cpu.weight" || fail "cpu.weight ${w:-100} at $path"
    eval "W_$n=${w:-100}"
  done
  for pair in "lo $W_hi $W_lo $LO" "mid $W_hi $W_mid $MID"; do
    set -- $pair
    r=$(cpu_ratio "$HI" "$4")
    check_ratio "v2.cpu.ratio.hi/$1.$f" "$(ratio $2 $3)" "$r" 20
    data "RATIO v2 hi/$1 $f weights $2:$3 predicted $(ratio $2 $3) measured $r"
  done
done
finish
