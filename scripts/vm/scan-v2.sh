#@first-boot cgroup_no_v1=all
# Scenario scan-v2 (first boot: cgroup_no_v1=all): a v2 tree with limits;
# scan, audit and plan inside the guest.
mount -t cgroup2 none /sys/fs/cgroup || fail cgroup2
echo "+cpu +memory +pids" > /sys/fs/cgroup/cgroup.subtree_control || fail enable
mkdir -p /sys/fs/cgroup/app/web
echo "+memory" > /sys/fs/cgroup/app/cgroup.subtree_control
echo 67108864 > /sys/fs/cgroup/app/memory.max || fail memmax
echo 200 > /sys/fs/cgroup/app/cpu.weight
sleep 600 & W=$!
echo $W > /sys/fs/cgroup/app/web/cgroup.procs || fail move
data "FACTS W=$W"
. /vm/scan-common.sh
