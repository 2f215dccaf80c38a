#!/bin/sh
# Runs inside a chroot of the node rootfs (after lab/node/files/ are copied in), as root, offline.
# Part of the node image recipe: changing this file changes the image tag.
set -eu

# Every node generates its own SSH host keys and machine-id at first boot (see
# kubeproof-ssh-hostkeys.service and the entrypoint); nothing identifying is baked in.
rm -f /etc/ssh/ssh_host_*
rm -f /etc/machine-id /var/lib/dbus/machine-id
: >/etc/machine-id

# Units that make no sense in a container, or that would reach outside the lab (apt-daily talks
# to the Debian mirror; the lab's network rule allows traffic only between the lab's containers).
systemctl mask \
  getty.target getty@.service serial-getty@.service console-getty.service container-getty@.service \
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-udev-trigger.service systemd-udev-settle.service \
  systemd-remount-fs.service systemd-modules-load.service kmod-static-nodes.service \
  systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
  sys-fs-fuse-connections.mount dev-hugepages.mount \
  systemd-pstore.service systemd-firstboot.service \
  apt-daily.timer apt-daily.service apt-daily-upgrade.timer apt-daily-upgrade.service \
  e2scrub_all.timer e2scrub_all.service e2scrub_reap.service fstrim.timer fstrim.service \
  dpkg-db-backup.timer

systemctl enable kubeproof-ssh-hostkeys.service ssh.service docker.service containerd.service

chmod 0755 /usr/local/sbin/kubeproof-entrypoint

# Docker inside a node reads /etc/docker/daemon.json: "dns": ["127.0.0.11"] keeps containers
# started by that docker from falling back to 8.8.8.8 when the node's resolv.conf only lists
# docker's embedded resolver (a loopback address): lookups then fail locally instead of leaving
# the lab. Pods are unaffected (kubelet/cri-dockerd write their resolv.conf).

# Smaller image: package caches are of no use on an air-gapped node.
rm -rf /var/cache/apt/archives/*.deb /var/cache/apt/*.bin /var/lib/apt/lists/*
