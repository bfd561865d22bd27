#!/bin/bash
# The guest half of scripts/vm-runtimes (issue 23): runs as /cgmig/hook.sh in
# the Debian 12 image of scripts/vm-image, once per boot.
#
# Boot 1 (cgmig.phase=1, systemd.unified_cgroup_hierarchy=0): builds a busybox
# image offline, starts containers with v1-era limits under every runtime of
# the image (docker with the cgroupfs driver, a second dockerd with the systemd
# driver, podman/crun, containerd's ctr, an LXC container, a libcgroup group
# from /etc/cgconfig.conf), records their v1 files, runs cgmig scan, audit,
# plan and convert, installs the converted LXC and cgconfig files, and powers
# off.
# Boot 2 (cgmig.phase=2, systemd.unified_cgroup_hierarchy=1): the runtimes
# recreate their containers (dockerd's restart policy, podman-restart.service,
# containerd's restart monitor, lxc.service autostart, cgconfigparser); the
# script waits for them, records their v2 files, runs cgmig scan and verify
# against boot 1's plan, and powers off.
#
# Results go to /cgmig/out-N/ (the 9p share): cgmig's outputs, values.tsv
# (container, runtime, driver, cgroup path, file, value), facts.tsv and
# steps.log. /cgmig/out-N/DONE marks a finished boot.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PHASE=$(sed -n 's/.*cgmig\.phase=\([0-9]*\).*/\1/p' /proc/cmdline)
OUT=/cgmig/out-$PHASE
rm -rf "$OUT"
mkdir -p "$OUT"
t0=$(date +%s)
step() { echo "$(($(date +%s) - t0))s $*" | tee -a "$OUT/steps.log"; }
fact() { printf '%s\t%s\n' "$1" "$2" >>"$OUT/facts.tsv"; }
fail() {
  step "FAILED: $*"
  echo "$*" >"$OUT/FAILED"
  finish
}
finish() {
  journalctl -b --no-pager -o short-monotonic >"$OUT/journal.txt" 2>&1
  systemd-cgls --no-pager >"$OUT/cgls.txt" 2>&1
  step "done"
  touch "$OUT/DONE"
  sync
  systemctl poweroff
  exit 0
}
# Retry a condition for up to $1 seconds.
wait_for() {
  local secs=$1
  shift
  local end=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 2
  done
}
DSD=(docker -H unix:///run/docker-sd.sock)
# The command every container runs: exits on SIGTERM (a shell as PID 1 would
# ignore it), so a clean shutdown does not wait for the stop timeouts.
LOOP='trap "exit 0" TERM; while :; do sleep 1 & wait; done'

cp /cgmig/cgmig /usr/local/bin/cgmig
chmod 755 /usr/local/bin/cgmig
fact boot_cmdline "$(cat /proc/cmdline)"
fact kernel "$(uname -r)"

# The v1 files of a cgroup path in every v1 hierarchy (or the v2 files).
record() { # NAME RUNTIME DRIVER PID
  local name=$1 runtime=$2 driver=$3 pid=$4 line hier path dir f
  [ -n "$pid" ] && [ "$pid" != 0 ] || { printf '%s\t%s\t%s\t-\t-\tno process\n' "$name" "$runtime" "$driver" >>"$OUT/values.tsv"; return; }
  while IFS= read -r line; do
    hier=${line#*:}
    hier=${hier%%:*}
    path=${line#*:*:}
    case "$hier" in
      "") dir=/sys/fs/cgroup$path; [ -e /sys/fs/cgroup/cgroup.controllers ] || continue
        files="cpu.weight cpu.max memory.max memory.swap.max memory.low pids.max cpuset.cpus cpuset.mems io.weight" ;;
      cpu,cpuacct) dir=/sys/fs/cgroup/cpu,cpuacct$path; files="cpu.shares cpu.cfs_quota_us cpu.cfs_period_us" ;;
      memory) dir=/sys/fs/cgroup/memory$path; files="memory.limit_in_bytes memory.memsw.limit_in_bytes memory.soft_limit_in_bytes" ;;
      pids) dir=/sys/fs/cgroup/pids$path; files="pids.max" ;;
      cpuset) dir=/sys/fs/cgroup/cpuset$path; files="cpuset.cpus cpuset.mems" ;;
      *) continue ;;
    esac
    for f in $files; do
      [ -r "$dir/$f" ] || continue
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$runtime" "$driver" "$path" "$f" "$(tr '\n' ' ' <"$dir/$f" | sed 's/ $//')" >>"$OUT/values.tsv"
    done
  done </proc/"$pid"/cgroup
}

phase1() {
  step "phase 1: hybrid boot"
  systemctl start containerd.service docker.service || fail "docker did not start"
  fact docker_version "$(docker version -f '{{.Server.Version}}' 2>&1)"
  fact docker_cgroup_driver "$(docker info -f '{{.CgroupDriver}}' 2>&1)"
  fact runc_version "$(runc --version 2>&1 | head -1)"
  fact crun_version "$(crun --version 2>&1 | head -1)"
  fact podman_version "$(podman --version 2>&1)"
  fact containerd_version "$(containerd --version 2>&1)"
  fact lxc_version "$(lxc-start --version 2>&1)"
  # The image: a static busybox root filesystem, imported offline.
  step "busybox image"
  mkdir -p /srv/bb/bin /srv/bb/proc /srv/bb/sys /srv/bb/dev /srv/bb/tmp /srv/bb/etc
  cp /bin/busybox /srv/bb/bin/busybox
  for a in sh sleep cat true; do ln -sf busybox /srv/bb/bin/$a; done
  tar -C /srv/bb -cf /srv/bb.tar .
  docker import /srv/bb.tar bb:1 >/dev/null || fail "docker import"

  step "docker (cgroupfs driver)"
  docker run -d --name d512 --restart=always --network none --stop-timeout 2 \
    --cpu-shares 512 --memory 256m --memory-swap 384m --cpus 0.5 --pids-limit 64 --cpuset-cpus 0 \
    bb:1 sh -c "$LOOP" >/dev/null || fail "docker run d512"
  docker run -d --name d4096 --restart=always --network none --stop-timeout 2 \
    --cpu-shares 4096 --memory 128m --cpu-quota 25000 --cpu-period 50000 \
    bb:1 sh -c "$LOOP" >/dev/null || fail "docker run d4096"

  step "a second dockerd with the systemd cgroup driver"
  cat >/etc/systemd/system/docker-sd.service <<'EOF'
[Unit]
Description=Docker Engine, systemd cgroup driver (cgmig scenario)
After=containerd.service
Wants=containerd.service
[Service]
Type=notify
ExecStart=/usr/sbin/dockerd --exec-opt native.cgroupdriver=systemd --data-root /var/lib/docker-sd --exec-root /run/docker-sd -H unix:///run/docker-sd.sock -p /run/docker-sd.pid --bridge=none --iptables=false --ip-masq=false --containerd=/run/containerd/containerd.sock --containerd-namespace=moby-sd --containerd-plugins-namespace=plugins-sd
Delegate=yes
KillMode=process
TimeoutStartSec=0
[Install]
WantedBy=multi-user.target
EOF
  systemctl daemon-reload
  systemctl enable --now docker-sd.service || fail "docker-sd did not start"
  fact docker_sd_cgroup_driver "$("${DSD[@]}" info -f '{{.CgroupDriver}}' 2>&1)"
  "${DSD[@]}" import /srv/bb.tar bb:1 >/dev/null || fail "docker-sd import"
  "${DSD[@]}" run -d --name s1536 --restart=always --network none --stop-timeout 2 \
    --cpu-shares 1536 --memory 64m --memory-swap 64m --cpus 0.25 --pids-limit 32 \
    bb:1 sh -c "$LOOP" >/dev/null || fail "docker-sd run s1536"

  step "podman (crun)"
  podman import /srv/bb.tar localhost/bb:1 >/dev/null || fail "podman import"
  fact podman_cgroup_manager "$(podman info -f '{{.Host.CgroupManager}}' 2>&1)"
  fact podman_oci_runtime "$(podman info -f '{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Version}}' 2>&1 | head -1)"
  podman run -d --name p2048 --restart=always --network none --stop-timeout 2 \
    --cpu-shares 2048 --memory 192m --memory-swap 256m --cpus 0.75 --pids-limit 48 --cpuset-cpus 1 \
    localhost/bb:1 sh -c "$LOOP" >/dev/null || fail "podman run p2048"

  step "containerd (ctr)"
  ctr run --help >"$OUT/ctr-run-help.txt" 2>&1
  # Flags first: ctr stops reading them at the first argument (the rootfs).
  # The restart label comes after the start: with it, containerd's restart
  # monitor deletes a task it sees still "created" and starts its own, and
  # ctr's start then fails ("cannot start a container that has stopped").
  ctr -n default run -d --null-io --cpu-shares 768 --cpus 0.4 --memory-limit 100663296 \
    --rootfs /srv/bb c768 /bin/sh -c "$LOOP" >/dev/null 2>"$OUT/ctr-run.err" ||
    fail "ctr run c768: $(tail -1 "$OUT/ctr-run.err")"
  ctr -n default containers label c768 containerd.io/restart.status=running >/dev/null ||
    fail "ctr containers label c768"

  step "LXC"
  cat >/srv/c1.conf <<'EOF'
lxc.net.0.type = empty
lxc.apparmor.profile = unconfined
EOF
  lxc-create -n c1 -t busybox -f /srv/c1.conf >"$OUT/lxc-create.log" 2>&1 || fail "lxc-create"
  cat >>/var/lib/lxc/c1/config <<'EOF'
lxc.start.auto = 1
lxc.cgroup.cpu.shares = 256
lxc.cgroup.cpu.cfs_quota_us = 40000
lxc.cgroup.memory.limit_in_bytes = 192M
lxc.cgroup.memory.memsw.limit_in_bytes = 256M
lxc.cgroup.pids.max = 40
lxc.cgroup.cpuset.cpus = 1
lxc.cgroup.devices.deny = a
lxc.cgroup.devices.allow = c 1:3 rwm
lxc.cgroup.devices.allow = c 1:5 rwm
lxc.cgroup.devices.allow = c 1:7 rwm
lxc.cgroup.devices.allow = c 1:8 rwm
lxc.cgroup.devices.allow = c 1:9 rwm
lxc.cgroup.devices.allow = c 5:0 rwm
lxc.cgroup.devices.allow = c 5:2 rwm
lxc.cgroup.devices.allow = c 136:* rwm
EOF
  lxc-start -n c1 >"$OUT/lxc-start.log" 2>&1 || fail "lxc-start"
  wait_for 60 lxc-wait -n c1 -s RUNNING -t 1 || fail "c1 not running"

  step "libcgroup (cgconfig.conf)"
  cat >/etc/cgconfig.conf <<'EOF'
group cgtest {
	cpu {
		cpu.shares = 640;
		cpu.cfs_quota_us = 30000;
	}
	memory {
		memory.limit_in_bytes = 100M;
	}
	pids {
		pids.max = 20;
	}
}
EOF
  cat >/etc/systemd/system/cgconfig.service <<'EOF'
[Unit]
Description=libcgroup: the groups of /etc/cgconfig.conf (cgmig scenario)
After=local-fs.target
Before=cgtest-worker.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/cgconfigparser -l /etc/cgconfig.conf
[Install]
WantedBy=multi-user.target
EOF
  cat >/etc/systemd/system/cgtest-worker.service <<'EOF'
[Unit]
Description=a worker placed in the cgconfig group by cgexec (cgmig scenario)
After=cgconfig.service
Requires=cgconfig.service
[Service]
ExecStart=/usr/bin/cgexec -g cpu,memory,pids:cgtest /bin/sleep infinity
[Install]
WantedBy=multi-user.target
EOF
  systemctl daemon-reload
  systemctl enable --now cgconfig.service cgtest-worker.service >/dev/null 2>&1 || fail "cgconfig"

  step "every container running"
  sleep 3
  record d512 runc cgroupfs "$(docker inspect -f '{{.State.Pid}}' d512)"
  record d4096 runc cgroupfs "$(docker inspect -f '{{.State.Pid}}' d4096)"
  record s1536 runc systemd "$("${DSD[@]}" inspect -f '{{.State.Pid}}' s1536)"
  record p2048 crun systemd "$(podman inspect -f '{{.State.Pid}}' p2048)"
  record c768 runc cgroupfs "$(ctr -n default task ls | awk '$1 == "c768" {print $2}')"
  record c1 lxc lxc "$(lxc-info -n c1 -p -H)"
  record cgtest libcgroup cgconfig "$(systemctl show -p MainPID --value cgtest-worker.service)"

  step "cgmig scan, audit, plan, convert"
  cd "$OUT" || fail "no $OUT"
  cgmig scan -o snap.json 2>scan.err || fail "cgmig scan"
  cgmig audit --format json --fail-on never -o audit.json 2>audit.err
  cgmig audit --fail-on never -o audit.txt 2>>audit.err
  # A refused plan is recorded (the test fails on it) but the boot goes on:
  # the runtimes' real v2 values are worth measuring either way.
  if ! cgmig plan --format json -o plan.json 2>plan.err; then
    step "cgmig plan refused: $(tail -2 plan.err | tr '\n' ' ')"
    fact plan_refused "$(tail -2 plan.err | tr '\n' ' ')"
  fi
  cgmig plan -o plan.txt 2>>plan.err
  cgmig convert -o convert 2>convert.err || fail "cgmig convert: $(tail -3 convert.err)"
  step "install the converted LXC and cgconfig files"
  for f in /var/lib/lxc/c1/config /etc/cgconfig.conf; do
    [ -f "convert/final$f" ] || fail "convert wrote no $f"
    cp "$f" "$f.v1"
    cp "convert/final$f" "$f"
  done
  finish
}

# Phase 2 checks that the runtimes recreated their containers.
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ]; }
sd_running() { [ "$("${DSD[@]}" inspect -f '{{.State.Running}}' "$1")" = true ]; }
pod_running() { [ "$(podman inspect -f '{{.State.Running}}' "$1")" = true ]; }
ctr_running() { ctr -n default task ls | awk -v c="$1" '$1 == c && $3 == "RUNNING" {f=1} END {exit !f}'; }

phase2() {
  step "phase 2: unified boot"
  [ -e /sys/fs/cgroup/cgroup.controllers ] || fail "not booted unified"
  systemctl start docker.service docker-sd.service || fail "docker did not start"
  fact docker_cgroup_driver "$(docker info -f '{{.CgroupDriver}}' 2>&1)"
  fact docker_sd_cgroup_driver "$("${DSD[@]}" info -f '{{.CgroupDriver}}' 2>&1)"
  wait_for 120 running d512 || fail "docker did not restart d512"
  wait_for 60 running d4096 || fail "docker did not restart d4096"
  wait_for 60 sd_running s1536 || fail "docker-sd did not restart s1536"
  systemctl start podman-restart.service
  wait_for 60 pod_running p2048 || fail "podman did not restart p2048"
  if wait_for 40 ctr_running c768; then
    fact ctr_restarted_by "containerd restart monitor"
  else
    # No restart monitor: containerd recreates the task from its stored spec.
    ctr -n default task start -d c768 >/dev/null 2>&1
    wait_for 30 ctr_running c768 || fail "containerd did not restart c768"
    fact ctr_restarted_by "ctr task start"
  fi
  systemctl start lxc.service
  wait_for 60 lxc-wait -n c1 -s RUNNING -t 1 || fail "lxc did not start c1"
  systemctl start cgtest-worker.service
  wait_for 30 systemctl is-active cgtest-worker.service || fail "cgtest-worker"
  # LXC's device policy on v2 (BPF from lxc.cgroup2.devices.*): /dev/null allowed.
  if lxc-attach -n c1 -- /bin/sh -c 'echo x >/dev/null && head -c1 /dev/zero >/dev/null' 2>"$OUT/lxc-attach.err"; then
    fact lxc_dev_null_zero allowed
  else
    fact lxc_dev_null_zero "denied: $(tail -1 "$OUT/lxc-attach.err")"
  fi
  sleep 3
  record d512 runc systemd "$(docker inspect -f '{{.State.Pid}}' d512)"
  record d4096 runc systemd "$(docker inspect -f '{{.State.Pid}}' d4096)"
  record s1536 runc systemd "$("${DSD[@]}" inspect -f '{{.State.Pid}}' s1536)"
  record p2048 crun systemd "$(podman inspect -f '{{.State.Pid}}' p2048)"
  record c768 runc cgroupfs "$(ctr -n default task ls | awk '$1 == "c768" {print $2}')"
  record c1 lxc lxc "$(lxc-info -n c1 -p -H)"
  record cgtest libcgroup cgconfig "$(systemctl show -p MainPID --value cgtest-worker.service)"
  step "cgmig scan, verify"
  cd "$OUT" || fail "no $OUT"
  cgmig scan -o snap.json 2>scan.err || fail "cgmig scan"
  if [ -f /cgmig/out-1/plan.json ]; then
    cp /cgmig/out-1/plan.json plan.json
    # The verdict on the snapshot the host test reads (its own verify must agree
    # exactly), and the live verdict: a live scan is a second moment, and a
    # process that starts or ends between the two changes a check.
    cgmig verify --plan plan.json --snapshot snap.json --format json --fail-on never -o verify.json 2>verify.err
    cgmig verify --plan plan.json --format json --fail-on never -o verify-live.json 2>>verify.err
    cgmig verify --plan plan.json --fail-on never -o verify.txt 2>>verify.err
  else
    step "no plan from boot 1: nothing to verify"
  fi
  finish
}

case "$PHASE" in
  1) phase1 ;;
  2) phase2 ;;
  *) fail "no cgmig.phase on the command line" ;;
esac
