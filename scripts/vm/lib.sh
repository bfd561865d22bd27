# Helpers for the guest scenarios (sourced by /init).
#
# Everything the host reads goes to the second serial port (/dev/ttyS1):
#   CHECK<TAB>name<TAB>expected<TAB>actual<TAB>ok|FAIL   one named check
#   FACTS k=v ...                                         numbers for the host test
#   =====BEGIN name / =====END name                       a file's text
#   NEXT-BOOT cmdline | SCENARIO-DONE | SCENARIO-FAILED: why
# /persist is kept across the boots of one run on /dev/vda (a tar archive on
# a raw disk image; the host can read it with `tar -xf disk.img`).

data() { echo "$*" > /dev/ttyS1; }

# check NAME EXPECTED ACTUAL: equal strings pass.
check() {
  if [ "$2" = "$3" ]; then _r=ok; else _r=FAIL; fi
  printf 'CHECK\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$_r" > /dev/ttyS1
}

# check_range NAME LOW HIGH ACTUAL: integers, LOW <= ACTUAL <= HIGH.
check_range() {
  _r=FAIL
  case "$4" in ''|*[!0-9-]*) ;; *) [ "$4" -ge "$2" ] && [ "$4" -le "$3" ] && _r=ok ;; esac
  printf 'CHECK\t%s\t%s..%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$_r" > /dev/ttyS1
}

# check_ratio NAME PREDICTED ACTUAL TOLERANCE_PERCENT: decimal ratios.
check_ratio() {
  _r=$(awk -v p="$2" -v a="$3" -v t="$4" 'BEGIN { d = (a - p) / p; if (d < 0) d = -d; print (d * 100 <= t) ? "ok" : "FAIL" }')
  printf 'CHECK\t%s\t%s ±%s%%\t%s\t%s\n' "$1" "$2" "$4" "$3" "$_r" > /dev/ttyS1
}

section() { data "=====BEGIN $1"; cat "$2" > /dev/ttyS1; data "=====END $1"; }

DISK=/dev/vda
disk_load() {
  mkdir -p /persist
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
    insmod /modules/$m.ko 2>/dev/null
  done
  i=0; while [ ! -b $DISK ] && [ $i -lt 50 ]; do usleep 100000; i=$((i+1)); done
  [ -b $DISK ] && tar -x -C /persist -f $DISK 2>/dev/null
}
disk_save() { [ -b $DISK ] && tar -c -C /persist -f $DISK . && sync; }

end_boot() {
  disk_save
  if [ "$SHELL_MODE" = 1 ]; then
    echo "cgmig vm-test: scenario $SCENARIO boot $BOOT ended ($1). Exit the shell to go on."
    setsid cttyhack sh
  fi
  poweroff -f
}
fail() { data "SCENARIO-FAILED: $*"; end_boot failed; }
finish() { data "SCENARIO-DONE"; end_boot done; }
# next_boot CMDLINE: the host boots the same guest again with CMDLINE added.
next_boot() { data "NEXT-BOOT $*"; end_boot "next boot: $*"; }

# Wait until COMMAND succeeds (tenths of a second, default 50).
wait_for() { n=${2:-50}; while ! eval "$1"; do n=$((n-1)); [ $n -le 0 ] && return 1; usleep 100000; done; }

# mount_v1 [unified]: every controller in its own or a co-mounted hierarchy,
# a named hierarchy (name=systemd); with `unified`, cgroup2 mounted beside at
# /sys/fs/cgroup/unified (as systemd's hybrid mode does).
mount_v1() {
  mount -t tmpfs cgroup_root /sys/fs/cgroup
  for c in cpuset memory devices freezer blkio pids hugetlb perf_event; do
    mkdir /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c || fail "mount $c"
  done
  mkdir "/sys/fs/cgroup/cpu,cpuacct" && mount -t cgroup -o cpu,cpuacct cgroup "/sys/fs/cgroup/cpu,cpuacct" || fail cpu
  mkdir "/sys/fs/cgroup/net_cls,net_prio" && mount -t cgroup -o net_cls,net_prio cgroup "/sys/fs/cgroup/net_cls,net_prio" || fail net
  mkdir /sys/fs/cgroup/systemd && mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd || fail named
  if [ "$1" = unified ]; then
    mkdir /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified || fail cgroup2
  fi
}

# CPU time a cgroup used, for ratios between siblings of one hierarchy:
# cpuacct.usage (ns) on v1, cpu.stat usage_usec on v2.
cpu_used() {
  if [ -f "$1/cpuacct.usage" ]; then cat "$1/cpuacct.usage"
  else sed -n 's/^usage_usec //p' "$1/cpu.stat"; fi
}
