# The divergent v1 layout of scenarios live and boots, built by the guest.
# mount_layout mounts what this boot's kernel still offers to v1 (a controller
# given to v2 by cgroup_no_v1= is skipped); build_layout makes the cgroups and
# settings; start_workloads starts the processes (distinct command lines, so a
# plan's stable keys tell them apart after a reboot) and places them.
G=/sys/fs/cgroup
M=$G/memory; C="$G/cpu,cpuacct"; P=$G/pids; D=$G/devices; F=$G/freezer; S=$G/systemd

mount_layout() {
  mount -t tmpfs cgroup_root $G
  for c in cpuset memory devices freezer blkio pids hugetlb perf_event cpu,cpuacct net_cls,net_prio; do
    mkdir "$G/$c"
    mount -t cgroup -o $c cgroup "$G/$c" 2>/dev/null || rmdir "$G/$c"
  done
  mkdir $S && mount -t cgroup -o none,name=systemd cgroup $S || fail named
  mkdir $G/unified && mount -t cgroup2 none $G/unified || fail cgroup2
}

# v1 dirs exist only for the controllers still on v1.
v1() { [ -d "$1" ] || return 0; shift; "$@"; }
put() { [ -e "$(dirname "$2")" ] || return 0; echo "$1" > "$2" || fail "write $1 > $2"; }

build_layout() {
  # memory: /app (limits, memsw, soft limit) with /app/web, /app/db and an
  # internal process; a user-owned /user subtree; /pinned for charged tmpfs.
  v1 $M mkdir -p $M/app/web $M/app/db $M/user/job $M/pinned
  put 67108864 $M/app/memory.limit_in_bytes
  put 100663296 $M/app/memory.memsw.limit_in_bytes
  put 33554432 $M/app/memory.soft_limit_in_bytes
  put 33554432 $M/app/web/memory.limit_in_bytes
  v1 $M chown 1000:1000 $M/user $M/user/tasks $M/user/cgroup.procs $M/user/job $M/user/job/tasks $M/user/job/cgroup.procs
  # cpu: another shape; a VM whose vCPU threads sit in their own cgroups.
  v1 "$C" mkdir -p "$C/app/web" "$C/batch" "$C/vm/vcpu0" "$C/vm/vcpu1"
  put 2048 "$C/app/web/cpu.shares"; put 50000 "$C/app/web/cpu.cfs_quota_us"
  put 256 "$C/batch/cpu.shares"; put 100000 "$C/vm/vcpu0/cpu.cfs_quota_us"
  # pids: one limit over the whole app.
  v1 $P mkdir -p $P/app
  put 64 $P/app/pids.max
  # devices: web may use /dev/null and /dev/zero only.
  v1 $D mkdir -p $D/app/web
  put a $D/app/web/devices.deny
  put "c 1:3 rwm" $D/app/web/devices.allow
  put "c 1:5 rwm" $D/app/web/devices.allow
  # freezer: a frozen batch job (frozen once its process is in).
  v1 $F mkdir -p $F/frozen
  # a release agent on the pids hierarchy, notified for /app.
  put /bin/true $P/release_agent
  put 1 $P/app/notify_on_release
  mkdir -p $S/app.slice
  # A hand-made system.slice (issue 23): custom inits and old images make
  # one; PID 1 here is busybox, so nothing in it is systemd's. It holds the
  # user job alone, so the plan merges it with memory:/user/job.
  mkdir -p $S/system.slice
}

# place PID DIR...: into each directory that exists (its controller on v1).
place() { p=$1; shift; for d in "$@"; do [ -d "$d" ] && { echo "$p" > "$d/cgroup.procs" || fail "move $p to $d"; }; done; }

start_workloads() {
  sleep 601 & W=$!; place $W $M/app/web "$C/app/web" $P/app $D/app/web $S/app.slice
  sleep 602 & DB=$!; place $DB $M/app/db "$C/batch" $P/app $S/app.slice
  sleep 603 & X=$!; place $X $M/app $P/app          # internal process of memory:/app
  sleep 604 & U=$!; place $U $M/user/job $S/system.slice
  sleep 605 & FZ=$!; place $FZ $F/frozen
  # Frozen only once it runs sleep: frozen between fork and exec it would
  # keep this shell's name and command line (init's), and the plan's key for
  # it with them. (cgmig never moves init on such a key: resolve.rs rule 6.)
  wait_for "grep -qx sleep /proc/$FZ/comm && grep -qa 605 /proc/$FZ/cmdline" || fail "sleep 605 did not start"
  [ -d $F/frozen ] && put FROZEN $F/frozen/freezer.state
  rm -f /tmp/tids
  threads 2 900 > /tmp/tids &
  wait_for '[ -s /tmp/tids ]' || fail "threads did not start"
  set -- $(cat /tmp/tids); Q=$1; T1=$2; T2=$3
  place $Q $M/app "$C/vm"
  [ -d "$C/vm" ] && { echo $T1 > "$C/vm/vcpu0/tasks" && echo $T2 > "$C/vm/vcpu1/tasks" || fail "threads to vcpus"; }
  data "FACTS W=$W DB=$DB X=$X U=$U FZ=$FZ Q=$Q T1=$T1 T2=$T2"
}

# v1_left: the v1 hierarchies with a controller still mounted.
v1_left() { awk '$3 == "cgroup" && $4 !~ /name=/ { print $2 }' /proc/mounts; }
