#!/bin/sh
# First boot of a fleet guest (run by the image's cgmig-hook from the 9p share,
# see scripts/vm-image): install the guest's workloads, put real GRUB on its
# disk and give it the v1 boot line every later boot takes from GRUB.
# Output goes to /cgmig/hook.log; /cgmig/provisioned marks the end.
set -eux
src=/cgmig/payload
t0=$(date +%s)

# Workloads: a threaded service with v1 directives, a custom cgroup manager
# with a threaded job, and the fault switch the scenario flips.
install -m 755 "$src/fleet-web" "$src/fleet-job" "$src/batchd" "$src/fleet-fault" /usr/local/bin/
install -m 644 "$src/web.service" "$src/batchd.service" "$src/fleet-fault.service" /etc/systemd/system/
systemctl enable web.service batchd.service fleet-fault.service

# Kubernetes node files (no kubelet runs: the playbook's check-mode run shows
# how it would switch them; readiness reads them).
mkdir -p /var/lib/kubelet /etc/containerd
install -m 644 "$src/kubelet-config.yaml" /var/lib/kubelet/config.yaml
install -m 644 "$src/containerd-config.toml" /etc/containerd/config.toml

# What a small server does not need at every boot under TCG (bookworm's
# container stack is for the runtimes scenario; it costs a minute a boot).
# The first boot had them masked on the kernel command line (scripts/vm-fleet).
masks=
for u in $(cat /cgmig/masked); do
  [ -e "/lib/systemd/system/$u" ] && masks="$masks $u"
done
[ -z "$masks" ] || systemctl mask $masks

# Real GRUB in the MBR; its defaults hold the boot line the playbook edits.
sed -i -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=0/' \
  -e "s/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX=\"$(cat /cgmig/cmdline)\"/" /etc/default/grub
cat >>/etc/default/grub <<'EOG'
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
EOG
grub-install --target=i386-pc /dev/vda
update-grub
grep -q "$(cat /cgmig/cmdline)" /boot/grub/grub.cfg

systemctl start web.service batchd.service
echo "provisioned in $(($(date +%s) - t0)) s"
touch /cgmig/provisioned
