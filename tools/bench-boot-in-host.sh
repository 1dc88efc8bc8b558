#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The measuring half of tools/bench-boot; runs where the VMMs run (on a KVM
# host, or inside the nested test host), with bash and busybox-level tools.
#   bench-boot-in-host.sh RUNS VMLINUZ INITRD
# Boots the same kernel and initramfs with husk (HUSK, default "husk"),
# QEMU -M microvm and QEMU -M pc, RUNS times each, interleaved so that
# drift in the host hits all three alike. Each guest prints HUSK-BENCH-UP
# from its /init and powers off. Times come from /proc/uptime (busybox date
# has no sub-second format): VMM start to the marker line, and to exit.
set -euo pipefail

# shellcheck source=tools/bench-in-host-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-in-host-lib.sh"

RUNS=$1 VMLINUZ=$2 INITRD=$3
read -ra HUSK_CMD <<<"${HUSK:-husk}"
CMDLINE="console=ttyS0 quiet"
QEMU_COMMON=(-enable-kvm -cpu host -m 512M -smp 1 -nographic -no-reboot -nic none
	-kernel "$VMLINUZ" -initrd "$INITRD")

vmm_command() {
	case $1 in
	husk) CMD=("${HUSK_CMD[@]}" run --kernel "$VMLINUZ" --initrd "$INITRD" --cmdline "$CMDLINE") ;;
	# microvm powers off through ACPI only with acpi=on (its GED device).
	qemu-microvm) CMD=(qemu-system-x86_64 -M "microvm,acpi=on" "${QEMU_COMMON[@]}" -append "$CMDLINE") ;;
	qemu-pc) CMD=(qemu-system-x86_64 -M pc "${QEMU_COMMON[@]}" -append "$CMDLINE") ;;
	esac
}

# One boot: prints "VMM MARKER_S EXIT_S STATUS". The VMM's output is read
# line by line as it arrives and the marker is timed when it is read.
# The "exit" line comes from the same pipe, written as the VMM ends.
time_boot() {
	local vmm=$1 t0 _
	vmm_command "$vmm"
	read -r t0 _ </proc/uptime
	{
		"${CMD[@]}" </dev/null 2>&1 && echo "HUSK-BENCH-EXIT 0" || echo "HUSK-BENCH-EXIT $?"
	} | {
		local line marker="" t="" rc=""
		while IFS= read -r line; do
			case $line in
			*HUSK-BENCH-UP*) [[ -n $marker ]] || read -r marker _ </proc/uptime ;;
			HUSK-BENCH-EXIT*)
				read -r t _ </proc/uptime
				rc=${line#HUSK-BENCH-EXIT }
				;;
			*) [[ -z ${BENCH_VERBOSE:-} ]] || echo "  $vmm| $line" >&2 ;;
			esac
		done
		awk -v v="$vmm" -v a="$t0" -v m="${marker:-}" -v e="$t" -v rc="$rc" \
			'BEGIN { printf "%s %s %.2f %s\n", v, (m == "" ? "-" : sprintf("%.2f", m - a)), e - a, rc }'
	}
}

main() {
	local results i vmm line
	results=$(mktemp)
	local vmms=(husk qemu-microvm qemu-pc)
	for ((i = 1; i <= RUNS; i++)); do
		for vmm in "${vmms[@]}"; do
			line=$(time_boot "$vmm")
			echo "bench: run $i: $line"
			echo "$line" >>"$results"
		done
	done

	# Medians over the runs that reached the marker and exited 0.
	local -A up=() down=()
	local failed=0
	for vmm in "${vmms[@]}"; do
		up[$vmm]=$(awk -v v="$vmm" '$1 == v && $2 != "-" && $4 == 0 { print $2 }' "$results" | median 2)
		down[$vmm]=$(awk -v v="$vmm" '$1 == v && $2 != "-" && $4 == 0 { print $3 }' "$results" | median 2)
		if awk -v v="$vmm" '$1 == v && ($2 == "-" || $4 != 0) { bad = 1 } END { exit !bad }' "$results"; then
			echo "bench: $vmm: some runs did not reach the marker or exit 0 (see the runs above)"
			failed=1
		fi
	done

	echo
	echo "Boot time, median of $RUNS runs (seconds from VMM start; same kernel, initramfs, 512M, 1 vCPU)"
	printf '%-14s %10s %10s %16s %16s\n' VMM "to marker" "to exit" "husk/this marker" "husk/this exit"
	for vmm in "${vmms[@]}"; do
		awk -v v="$vmm" -v u="${up[$vmm]}" -v d="${down[$vmm]}" -v hu="${up[husk]}" -v hd="${down[husk]}" '
			function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2f", a / b) }
			BEGIN { printf "%-14s %10s %10s %16s %16s\n", v, u, d, ratio(hu, u), ratio(hd, d) }'
	done
	rm -f "$results"
	return "$failed"
}

main
