#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The measuring half of tools/bench-exec, run where the VMMs run:
#   bench-exec-in-host.sh RUNS VMLINUZ MODULES_DIR QEMU_INITRD
# Times `husk exec -- true` and QEMU booting QEMU_INITRD (which runs true
# and powers off), RUNS times each, interleaved. A second husk exec per run
# runs `cat /proc/uptime`: the guest's age when the command starts.
set -euo pipefail

# shellcheck source=tools/bench-in-host-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-in-host-lib.sh"

RUNS=$1 VMLINUZ=$2 MODULES=$3 QEMU_INITRD=$4
read -ra HUSK_CMD <<<"${HUSK:-husk}"
HUSK_EXEC=("${HUSK_CMD[@]}" exec --kernel "$VMLINUZ" --modules "$MODULES" --mount /tmp)
QEMU_COMMON=(-enable-kvm -cpu host -m 1G -smp 1 -nographic -no-reboot -nic none
	-kernel "$VMLINUZ" -initrd "$QEMU_INITRD" -append "console=ttyS0 quiet loglevel=3 panic=-1")

uptime_now() {
	local t _
	read -r t _ </proc/uptime
	echo "$t"
}

# elapsed COMMAND...: seconds the command took (its output is dropped); fails
# with it, or after two minutes.
elapsed() {
	local t0 t1
	[[ -z ${BENCH_VERBOSE:-} ]] || echo "bench: $*" >&2
	t0=$(uptime_now)
	timeout -k 5 120 "$@" </dev/null >/dev/null 2>&1 || return 1
	t1=$(uptime_now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

main() {
	local results i t up
	results=$(mktemp)
	cd /tmp
	# The first exec builds and caches the initramfs; that is not what is measured.
	"${HUSK_EXEC[@]}" -- true || { echo "bench: husk exec -- true failed (status $?)"; exit 1; }
	# The order bench-boot uses: inside the nested test host, a KVM guest
	# started right after a microvm one has been seen to hang the test
	# host's CPU (a soft lockup in its kernel), whichever VMM it is.
	for ((i = 1; i <= RUNS; i++)); do
		t=$(elapsed qemu-system-x86_64 -M microvm,acpi=on "${QEMU_COMMON[@]}") || t=-
		echo "qemu-microvm $t" >>"$results"
		t=$(elapsed qemu-system-x86_64 -M pc "${QEMU_COMMON[@]}") || t=-
		echo "qemu-pc $t" >>"$results"
		t=$(elapsed "${HUSK_EXEC[@]}" -- true) || t=-
		echo "husk $t" >>"$results"
		up=$(timeout -k 5 120 "${HUSK_EXEC[@]}" -- cat /proc/uptime </dev/null 2>/dev/null | cut -d' ' -f1) || up=-
		echo "husk-uptime ${up:--}" >>"$results"
		echo "bench: run $i: $(tail -n 4 "$results" | tr '\n' ' ')"
	done
	local -A med=()
	local k
	for k in husk husk-uptime qemu-pc qemu-microvm; do
		med[$k]=$(awk -v k="$k" '$1 == k && $2 != "-" { print $2 }' "$results" | median 2)
	done
	echo
	echo "husk exec -- true against QEMU booting the same kernel to true, median of $RUNS runs (1 vCPU, 1G)"
	printf '%-28s %10s %10s\n' "" "wall (s)" "husk/this"
	for k in husk qemu-pc qemu-microvm; do
		printf '%-28s %10s %10s\n' "$k" "${med[$k]}" \
			"$(awk -v h="${med[husk]}" -v q="${med[$k]}" 'BEGIN { if (q > 0 && h > 0) printf "%.2f", h / q; else print "-" }')"
	done
	echo "husk: the command started at guest uptime ${med[husk-uptime]} s (kernel boot and /init);" \
		"the rest of the wall time is husk's set-up, the power-off and the exit"
	if grep -q ' -$' "$results"; then
		echo "bench: some runs failed (marked -)"
		return 1
	fi
}

main "$@"
