#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The measuring half of tools/bench-arm64, run in the aarch64 test host
# (busybox sh, no bash):
#   bench-arm64-in-host.sh RUNS VMLINUZ INITRD MODULES_DIR
# Each run boots INITRD (its /init prints HUSK-BENCH-UP, runs true and
# powers off) with husk (HUSK) and with QEMU -M virt -accel kvm -cpu host
# (QEMU, if set), and runs `husk exec -- true` (all with 512M, 1 vCPU);
# the order turns every other run. Times come from /proc/uptime (busybox
# date has no sub-second format): VMM start to the marker line, and to
# the VMM's exit.
set -eu

RUNS=$1 VMLINUZ=$2 INITRD=$3 MODULES=$4
HUSK=${HUSK:-husk}
QEMU=${QEMU:-}
export HUSK_CACHE=/tmp/husk-cache
RESULTS=/tmp/bench-results

now() {
	cut -d' ' -f1 /proc/uptime
}

# vmm_run VMM: the VMM booting INITRD, its console on stdout; killed
# after 5 minutes (a boot here takes seconds).
vmm_run() {
	case $1 in
	husk)
		timeout 300 "$HUSK" run --kernel "$VMLINUZ" --initrd "$INITRD" --memory 512M --cpus 1 \
			--cmdline "console=ttyS0 quiet"
		;;
	qemu)
		timeout 300 "$QEMU" -M virt,gic-version=3 -accel kvm -cpu host -m 512M -smp 1 -nographic \
			-no-reboot -nic none -kernel "$VMLINUZ" -initrd "$INITRD" \
			-append "console=ttyAMA0 quiet"
		;;
	esac
}

# time_boot VMM: prints "VMM MARKER_S EXIT_S STATUS"; the marker is timed
# when its line is read, the exit when the VMM's own status line is.
time_boot() {
	t0=$(now)
	{
		rc=0
		vmm_run "$1" </dev/null 2>&1 || rc=$?
		echo "HUSK-BENCH-EXIT $rc"
	} | {
		marker=- t=- rc=-
		while IFS= read -r line; do
			case $line in
			*HUSK-BENCH-UP*) [ "$marker" != - ] || marker=$(now) ;;
			HUSK-BENCH-EXIT*)
				t=$(now)
				rc=${line#HUSK-BENCH-EXIT }
				;;
			*) [ -z "${BENCH_VERBOSE:-}" ] || echo "  $1| $line" >&2 ;;
			esac
		done
		awk -v v="$1" -v a="$t0" -v m="$marker" -v e="$t" -v rc="$rc" 'BEGIN {
			printf "%s %s %s %s\n", v, (m == "-" ? "-" : sprintf("%.2f", m - a)),
				(e == "-" ? "-" : sprintf("%.2f", e - a)), rc }'
	}
}

# time_exec: prints "husk-exec WALL_S STATUS".
time_exec() {
	t0=$(now)
	rc=0
	timeout 300 "$HUSK" exec --memory 512M --kernel "$VMLINUZ" --modules "$MODULES" -- true \
		</dev/null >/dev/null 2>/tmp/bench-exec.err || rc=$?
	awk -v a="$t0" -v b="$(now)" -v rc="$rc" 'BEGIN { printf "husk-exec %.2f %s\n", b - a, rc }'
}

# median COLUMN NAME: of the runs of NAME that ended with status 0.
median() {
	awk -v k="$2" -v c="$1" '$1 == k && $NF == 0 && $c != "-" { print $c }' "$RESULTS" | sort -n |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) print "-"
			else printf "%.2f\n", (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.2f", a / b; else print "-" }'
}

main() {
	: >"$RESULTS"
	vmms="husk${QEMU:+ qemu}"
	# The first exec builds and caches its initramfs: not what is measured.
	"$HUSK" exec --memory 512M --kernel "$VMLINUZ" --modules "$MODULES" -- true </dev/null ||
		{ echo "bench: husk exec -- true failed (status $?)"; exit 1; }
	i=1
	while [ "$i" -le "$RUNS" ]; do
		order="$vmms exec"
		[ $((i % 2)) = 1 ] || order="exec $(echo "$vmms" | awk '{ for (k = NF; k > 0; k--) printf "%s ", $k }')"
		line=""
		for v in $order; do
			if [ "$v" = exec ]; then r=$(time_exec); else r=$(time_boot "$v"); fi
			echo "$r" >>"$RESULTS"
			line="$line $r;"
		done
		echo "bench: run $i:$line"
		i=$((i + 1))
	done
	hu=$(median 2 husk) hd=$(median 3 husk) he=$(median 2 husk-exec)
	echo
	echo "arm64, median of $RUNS runs (seconds from VMM start; same kernel and initramfs, 512M, 1 vCPU)"
	printf "%-34s %10s %10s %10s\n" "" husk QEMU husk/QEMU
	if [ -n "$QEMU" ]; then
		qu=$(median 2 qemu) qd=$(median 3 qemu)
	else
		qu=- qd=-
	fi
	printf '%-34s %10s %10s %10s\n' "boot to userspace (marker)" "$hu" "$qu" "$(ratio "$hu" "$qu")"
	printf '%-34s %10s %10s %10s\n' "boot to exit" "$hd" "$qd" "$(ratio "$hd" "$qd")"
	printf '%-34s %10s %10s %10s\n' "exec -- true (QEMU: boot to exit)" "$he" "$qd" "$(ratio "$he" "$qd")"
	# Where an exec's time goes: the guest's age when the command runs.
	up=$(timeout 300 "$HUSK" exec --memory 512M --kernel "$VMLINUZ" --modules "$MODULES" -- \
		cat /proc/uptime </dev/null 2>/dev/null | cut -d' ' -f1) || up=-
	echo "husk exec: the command started at guest uptime ${up:--} s (one more run);" \
		"the rest is husk's set-up, the power-off and the exit"
	if awk '$NF != 0 || $2 == "-" { bad = 1 } END { exit !bad }' "$RESULTS"; then
		echo "bench: some runs failed (see the runs above)"
		return 1
	fi
}

main "$@"
