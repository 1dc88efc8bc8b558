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
# prints "HUSK-FIO name value" lines. BENCH_FORMAT=qcow2: IMAGE.qcow2 holds
# IMAGE's data, and husk boots on IMAGE (husk) and on IMAGE.qcow2
# (husk-qcow2), QEMU on IMAGE.qcow2 (qemu-qcow2).
set -euo pipefail

# shellcheck source=tools/bench-in-host-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-in-host-lib.sh"

RUNS=$1 VMLINUZ=$2 INITRD=$3 IMAGE=$4
read -ra HUSK_CMD <<<"${HUSK:-husk}"
CMDLINE="console=ttyS0 quiet"
TESTS=(randread-4k-qd32-iops seqread-1m-mibs seqwrite-1m-mibs)
FORMAT=${BENCH_FORMAT:-raw}
VMMS=(husk qemu)
[[ $FORMAT == raw ]] || VMMS=(husk husk-qcow2 qemu-qcow2)

vmm_command() {
	local image=$IMAGE format=raw
	[[ $1 != *-qcow2 ]] || image=$IMAGE.qcow2 format=qcow2
	case $1 in
	husk*)
		CMD=("${HUSK_CMD[@]}" run --kernel "$VMLINUZ" --initrd "$INITRD" --memory 512M
			--cpus 2 --disk "$image,format=$format" --cmdline "$CMDLINE")
		;;
	qemu*)
		# shellcheck disable=SC2054 # QEMU's options use commas
		CMD=(qemu-system-x86_64 -enable-kvm -cpu host -M pc -m 512M -smp 2 -nographic
			-no-reboot -nic none -kernel "$VMLINUZ" -initrd "$INITRD" -append "$CMDLINE"
			-drive "file=$image,if=none,id=d0,format=$format,cache=writeback,aio=threads"
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
	local results
	results=$(mktemp)
	run_rounds "$results" run_once
	echo
	echo "virtio-blk with fio in the guest, median of $RUNS runs (512M, 2 vCPUs, --direct=1, host page cache)"
	if [[ $FORMAT == raw ]]; then
		table "$results" husk qemu
	else
		table "$results" husk-qcow2 husk qemu-qcow2
	fi
	rm -f "$results"
}

# table RESULTS A B [C]: each test's medians for the VMMs given, and the
# ratios of the first to each of the others.
table() {
	local results=$1 t v
	shift
	local -a head=(test "$@")
	for v in "${@:2}"; do head+=("$1/$v"); done
	printf '%-24s' "${head[0]}"
	printf ' %12s' "${head[@]:1}"
	echo
	for t in "${TESTS[@]}"; do
		local -a m=()
		for v in "$@"; do
			m+=("$(awk -v v="$v" -v t="$t" '$1 == v && $2 == t { print $3 }' "$results" | median 1)")
		done
		printf '%-24s' "$t"
		printf ' %12s' "${m[@]}"
		for v in "${m[@]:1}"; do
			awk -v a="${m[0]}" -v b="$v" 'BEGIN {
				printf " %12s", (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2f", a / b) }'
		done
		echo
	done
}

main "$@"
