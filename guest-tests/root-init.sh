#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# shellcheck shell=dash
#
# /init-root of the ext4 root image of the disk tests: the guest has
# switched its root to /dev/vda. Write a file with random content, report
# its checksum, flush it to the disk and power off; the host then finds
# the same file and checksum in the image.
/bin/busybox mkdir -p /proc /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
echo "HUSK-ROOT-UP"
/bin/busybox dd if=/dev/urandom of=/written bs=64k count=16 2>/dev/null
echo "HUSK-FACT root_written_sha=$(/bin/busybox sha256sum /written | /bin/busybox cut -d' ' -f1)"
/bin/busybox sync
/bin/busybox mount -o remount,ro /
/bin/busybox poweroff -f
