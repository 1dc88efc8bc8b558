#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The measuring half of tools/bench-blk; runs where the VMMs run (on a KVM
# host, or inside the nested test host).
#   bench-blk-in-host.sh RUNS VMLINUZ INITRD IMAGE
# Boots the same kernel and fio initramfs with husk (HUSK, default "husk")
# and with QEMU's virtio-blk-pci, both on IMAGE through the host's page
# cache (husk's only mode with honest flush; QEMU's cache=writeback), RUNS
# times each, interleaved, in reverse order every other run. The guest
# prints "HUSK-FIO name value" lines.
set -euo pipefail

# shellcheck source=tools/bench-in-host-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-in-host-lib.sh"

RUNS=$1 VMLINUZ=$2 INITRD=$3 IMAGE=$4
read -ra HUSK_CMD <<<"${HUSK:-husk}"
CMDLINE="console=ttyS0 quiet"
TESTS=(randread-4k-qd32-iops seqread-1m-mibs seqwrite-1m-mibs)
VMMS=(husk qemu)

vmm_command() {
	case $1 in
	husk)
		CMD=("${HUSK_CMD[@]}" run --kernel "$VMLINUZ" --initrd "$INITRD" --memory 512M
			--cpus 2 --disk "$IMAGE" --cmdline "$CMDLINE")
		;;
	qemu)
		# shellcheck disable=SC2054 # QEMU's options use commas
		CMD=(qemu-system-x86_64 -enable-kvm -cpu host -M pc -m 512M -smp 2 -nographic
			-no-reboot -nic none -kernel "$VMLINUZ" -initrd "$INITRD" -append "$CMDLINE"
			-drive "file=$IMAGE,if=none,id=d0,format=raw,cache=writeback,aio=threads"
			-device virtio-blk-pci,drive=d0)
		;;
	esac
}

# One boot: prints "VMM TEST VALUE" for each fio result.
run_once() {
	local vmm=$1 line
	vmm_command "$vmm"
	# A boot that ends badly (a guest reset, seen in the emulated test host
	# with either VMM; QEMU's -no-reboot exits 0 on one) loses its figures,
	# not the run's.
	{ "${CMD[@]}" </dev/null 2>&1 || echo "HUSK-VMM-STATUS $?"; } | {
		local figures=0 status=0
		while IFS= read -r line; do
			line=${line%$'\r'}
			case $line in
			HUSK-VMM-STATUS\ *) status=${line#* } ;;
			# Anywhere in the line: BIOS escape codes may come before it.
			*HUSK-FIO\ *) echo "$vmm ${line#*HUSK-FIO }" && figures=$((figures + 1)) ;;
			*) [[ -z ${BENCH_VERBOSE:-} ]] || echo "  $vmm| $line" >&2 ;;
			esac
		done
		((figures == ${#TESTS[@]} && status == 0)) ||
			echo "bench: $vmm ended with status $status and gave $figures of ${#TESTS[@]} figures; only those count" >&2
	}
}

main() {
	local results i vmm t
	results=$(mktemp)
	for ((i = 1; i <= RUNS; i++)); do
		run_order "$i"
		for vmm in "${ORDER[@]}"; do
			run_once "$vmm" | tee -a "$results" | sed "s/^/bench: run $i: /"
		done
	done
	echo
	echo "virtio-blk with fio in the guest, median of $RUNS runs (512M, 2 vCPUs, --direct=1, host page cache)"
	printf '%-24s %12s %12s %12s\n' test husk qemu husk/qemu
	for t in "${TESTS[@]}"; do
		local h q
		h=$(awk -v t="$t" '$1 == "husk" && $2 == t { print $3 }' "$results" | median 1)
		q=$(awk -v t="$t" '$1 == "qemu" && $2 == t { print $3 }' "$results" | median 1)
		awk -v t="$t" -v h="$h" -v q="$q" 'BEGIN {
			r = (h == "-" || q == "-" || q == 0) ? "-" : sprintf("%.2f", h / q)
			printf "%-24s %12s %12s %12s\n", t, h, q, r }'
	done
	rm -f "$results"
}

main "$@"
