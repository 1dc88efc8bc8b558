#!/bin/sh
# SPDX-License-Identifier: MIT
#
# /init of the whole-VM tests' Linux guest (busybox sh). It reports what the
# guest sees as "HUSK-FACT key=value" lines, then does what the kernel
# command line asks: the kernel hands unknown key=value parameters to init
# as environment variables, so "husk_action=reboot" arrives as
# $husk_action. Actions: poweroff (default), reboot, panic, hang.
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sys /sys
# The image has a /dev/console node; devtmpfs gives the rest of /dev.
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
exec </dev/console >/dev/console 2>&1

while read -r m; do
	insmod "/modules/$m" || echo "HUSK-GUEST-ERROR insmod $m failed"
done </modules/order

echo "HUSK-GUEST-UP"

fact() {
	echo "HUSK-FACT $1=$2"
}

fact kernel "$(uname -r)"
fact uptime "$(cut -d' ' -f1 /proc/uptime)"
fact cpus "$(grep -c ^processor /proc/cpuinfo)"
fact nproc "$(nproc)"
fact memtotal_kb "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
# "Memory: 479504K/523768K available (...)": the second number is all the
# RAM the kernel manages, the best match for what the VMM was asked for.
fact mem_managed_kb "$(dmesg | sed -n 's|.*Memory: [0-9]*K/\([0-9]*\)K available.*|\1|p')"
fact e820_ram_above_4g "$(dmesg | grep 'BIOS-e820:.*usable' | grep -vc 'mem 0x00000000[0-9a-f]\{8\}-')"
fact acpi_problems "$(dmesg | grep -cE 'ACPI.*(Error|Warning|BIOS)')"
# Devices the pvpanic driver bound: the VMM hears of a panic only then.
bound=0
for dev in /sys/bus/platform/drivers/pvpanic-mmio/*:*; do
	[ -e "$dev" ] && bound=$((bound + 1))
done
fact pvpanic "$bound"
# virtio devices, when the VMM gave any: disks, entropy, the PCI bus.
block_facts() {
	# shellcheck disable=SC3043 # busybox sh has local
	local dev name
	for dev in /sys/block/vd*; do
		[ -e "$dev" ] || continue
		name=${dev##*/}
		fact "size_$name" "$(cat "$dev/size")"
		fact "ro_$name" "$(cat "$dev/ro")"
		fact "serial_$name" "$(cat "$dev/serial" 2>/dev/null)"
	done
	if [ -e /dev/hwrng ]; then
		fact hwrng_bytes "$(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c)"
		fact hwrng_zero_bytes "$(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | tr -d '\000' | wc -c)"
		fact rng_current "$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
	fi
	fact pci_devices "$(find /sys/bus/pci/devices -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
	fact pci_problems "$(dmesg | grep -cE 'PCI: Fatal|not reserved|virtio.*(failed|error)')"
}
block_facts

# The lines behind the counts, for whoever reads a failing test's log.
dmesg | grep -E 'ACPI.*(Error|Warning|BIOS)|BIOS-e820|Memory: ' | sed 's/^/HUSK-DMESG /'

echo "HUSK-GUEST-ACTION ${husk_action:-poweroff}"
case ${husk_action:-poweroff} in
poweroff) poweroff -f ;;
reboot) reboot -f ;;
panic) echo c >/proc/sysrq-trigger ;;
hang) while :; do sleep 60; done ;;
blk-root)
	# vdb is attached read-only: every way of writing to it must fail.
	mkdir -p /ro /newroot
	mount -t ext4 -o ro /dev/vdb /ro && fact marker_vdb "$(cat /ro/marker)" && umount /ro
	if dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=notrunc 2>/dev/null; then
		fact vdb_raw_write ok
	else
		fact vdb_raw_write refused
	fi
	if mount -t ext4 -o rw /dev/vdb /ro 2>/dev/null && touch /ro/x 2>/dev/null; then
		fact vdb_fs_write ok
	else
		fact vdb_fs_write refused
	fi
	# vda is an ext4 root filesystem with its own busybox and init.
	mount -t ext4 /dev/vda /newroot && fact marker_vda "$(cat /newroot/marker)"
	umount /proc /sys /tmp /dev 2>/dev/null
	exec switch_root /newroot /init-root
	;;
*) echo "HUSK-GUEST-ERROR unknown husk_action '$husk_action'" ;;
esac
# Returning from init would panic the kernel; make any fall-through visible.
sleep 5
echo "HUSK-GUEST-ERROR action '${husk_action:-poweroff}' did not stop the VM"
poweroff -f
