# Scenario scan-v1 (first boot: pure v1): a divergent layout with real
# processes and split threads; scan, audit and plan inside the guest.
mount_v1
M=/sys/fs/cgroup/memory; C="/sys/fs/cgroup/cpu,cpuacct"; P=/sys/fs/cgroup/pids; S=/sys/fs/cgroup/systemd
# memory: /app with /app/web and /app/db; a user-owned /user subtree
mkdir -p $M/app/web $M/app/db $M/user/job || fail mkdir
echo 67108864 > $M/app/memory.limit_in_bytes || fail mem
echo 33554432 > $M/app/web/memory.limit_in_bytes || fail mem2
chown 1000:1000 $M/user $M/user/tasks $M/user/cgroup.procs $M/user/job $M/user/job/tasks $M/user/job/cgroup.procs
# cpu has another shape: /app/web, /batch, and a VM with per-vCPU children
mkdir -p "$C/app/web" "$C/batch" "$C/vm/vcpu0" "$C/vm/vcpu1" || fail mkdir2
echo 2048 > "$C/app/web/cpu.shares"; echo 50000 > "$C/app/web/cpu.cfs_quota_us"
echo 256 > "$C/batch/cpu.shares"; echo 100000 > "$C/vm/vcpu0/cpu.cfs_quota_us"
mkdir -p $P/app; echo 64 > $P/app/pids.max
mkdir -p $S/app.slice
sleep 600 & W=$!
for d in $M/app/web "$C/app/web" $P/app $S/app.slice; do echo $W > "$d/cgroup.procs" || fail "move web $d"; done
sleep 600 & D=$!
for d in $M/app/db "$C/batch" $P/app $S/app.slice; do echo $D > "$d/cgroup.procs" || fail "move db $d"; done
sleep 600 & U=$!
echo $U > $M/user/job/cgroup.procs
threads 2 600 > /tmp/tids &
wait_for '[ -s /tmp/tids ]'
set -- $(cat /tmp/tids); Q=$1; T1=$2; T2=$3
echo $Q > $M/app/cgroup.procs || fail qmem
echo $Q > "$C/vm/cgroup.procs" || fail qcpu
echo $T1 > "$C/vm/vcpu0/tasks" || fail t1
echo $T2 > "$C/vm/vcpu1/tasks" || fail t2
data "FACTS W=$W D=$D U=$U Q=$Q T1=$T1 T2=$T2"
. /vm/scan-common.sh
