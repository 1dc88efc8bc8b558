#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The measuring half of tools/bench-net; runs where the VMMs run (on a KVM
# host, or inside the nested test host).
#   bench-net-in-host.sh RUNS VMLINUZ INITRD
# Boots the same kernel and iperf3 initramfs with husk (HUSK, default
# "husk") and QEMU's virtio-net-pci, on user networking and on a TAP
# device, RUNS times each, interleaved. An iperf3 server here answers on
# 127.0.0.1 (user networking: the guest's 10.0.2.2) and on TAP_HOST. The
# guest prints "HUSK-IPERF tx-mbits|rx-mbits VALUE" lines.
# BENCH_NESTED=1: this is the throwaway test host, whose loopback starts
# down; BENCH_IPERF_TIME is the length of one iperf3 test (seconds);
# BENCH_MODES is user, tap or user,tap (the default). On TAP, QEMU boots
# twice: with vhost=off and (as "qemu-vhost") with vhost=on, the kernel's
# vhost-net, which husk uses by default.
# HUSK_B, HUSK_B_ARGS: a second husk binary (default the first), and
# arguments added to its `run`; HUSK_B_TAP: options added to its --net
# tap=... (",vhost=off"). Any of them boots it in each run after the
# first, as "husk-b": an A/B comparison taken from the same test host.
set -euo pipefail

# shellcheck source=tools/bench-in-host-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-in-host-lib.sh"

RUNS=$1 VMLINUZ=$2 INITRD=$3
read -ra HUSK_CMD <<<"${HUSK:-husk}"
read -ra HUSK_B_EXTRA <<<"${HUSK_B_ARGS:-}"
VMMS=(husk qemu)
[[ -z ${HUSK_B:-}${HUSK_B_ARGS:-}${HUSK_B_TAP:-} ]] || VMMS=(husk husk-b qemu)
[[ ,${BENCH_MODES:-user,tap}, != *,tap,* ]] || VMMS+=(qemu-vhost)
IPERF_TIME=${BENCH_IPERF_TIME:-8}
TAP=husktap0 TAP_HOST=192.168.100.1 TAP_GUEST=192.168.100.2
TESTS=(user-tx-mbits user-rx-mbits tap-tx-mbits tap-rx-mbits)
PIDS=()
SERVER=""
TAP_MADE=""

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if [[ -n $TAP_MADE ]]; then
		ip link del "$TAP" 2>/dev/null || tunctl -d "$TAP" >/dev/null 2>&1 || true
	fi
}

# The TAP device, if this host lets us make one (root; /dev/net/tun).
setup_tap() {
	if ip link show "$TAP" >/dev/null 2>&1; then
		echo "bench: $TAP exists already; refusing to reconfigure it" >&2
		return 1
	fi
	{ ip tuntap add dev "$TAP" mode tap 2>/dev/null || tunctl -t "$TAP" >/dev/null; } &&
		TAP_MADE=1 &&
		ip addr add "$TAP_HOST/24" dev "$TAP" &&
		ip link set "$TAP" up
}

# husk-b's "husk run ...", in husk.
husk_b_command() {
	husk=("${HUSK_CMD[@]}")
	[[ -z ${HUSK_B:-} ]] || husk=("$HUSK_B")
	husk+=(run "${HUSK_B_EXTRA[@]}")
}

vmm_command() {
	local vmm=$1 mode=$2 params net
	case $mode in
	user) params="bench_ip=10.0.2.15/24 bench_server=10.0.2.2" ;;
	tap) params="bench_ip=$TAP_GUEST/24 bench_server=$TAP_HOST" ;;
	esac
	# Verbose: the whole kernel log, to show what came before a guest that crashed.
	local loglevel=quiet
	[[ -z ${BENCH_VERBOSE:-} ]] || loglevel=ignore_loglevel
	local cmdline="console=ttyS0 $loglevel $params"
	case $vmm in
	husk | husk-b)
		net=user
		[[ $mode == tap ]] && net=tap=$TAP
		local husk=("${HUSK_CMD[@]}" run)
		[[ $vmm == husk ]] || husk_b_command
		[[ $vmm == husk || $mode != tap ]] || net+=${HUSK_B_TAP:-}
		CMD=("${husk[@]}" --kernel "$VMLINUZ" --initrd "$INITRD" --memory 512M
			--cpus 2 --cmdline "$cmdline" --net "$net")
		;;
	qemu | qemu-vhost)
		# QEMU's slirp NIC has a 1500-byte MTU; husk's --net user offers 65520.
		net=user,id=n0
		[[ $mode == tap ]] && net=tap,id=n0,ifname=$TAP,script=no,downscript=no,vhost=off
		[[ $vmm == qemu ]] || net=${net%off}on
		# shellcheck disable=SC2054 # QEMU's options use commas
		CMD=(qemu-system-x86_64 -enable-kvm -cpu host -M pc -m 512M -smp 2 -nographic
			-no-reboot -kernel "$VMLINUZ" -initrd "$INITRD" -append "$cmdline"
			-netdev "$net" -device virtio-net-pci,netdev=n0,romfile=)
		;;
	esac
}

# One boot: prints "VMM MODE-DIR-mbits VALUE" for each iperf3 result. The
# console goes to a file, as in the tests, and a watchdog stops a hung VM.
run_once() {
	local vmm=$1 mode=$2 line pid
	start_server "$mode"
	vmm_command "$vmm" "$mode"
	children_cpu
	local cpu_before=$CHILDREN_CPU
	"${CMD[@]}" </dev/null >"$CONSOLE" 2>&1 &
	pid=$!
	# Two tests plus a boot.
	wait_vm "$pid" $((2 * IPERF_TIME * 3 + 180)) "$vmm $mode" || true
	local rc=0
	wait "$pid" || rc=$?
	children_cpu
	report_cpu "$vmm $mode" "$cpu_before" "$CHILDREN_CPU"
	# A boot that ends badly says how, and shows its console's last lines.
	if ! grep -q 'HUSK-IPERF rx-mbits' "$CONSOLE"; then
		echo "bench: $vmm $mode: ended (status $rc) before its last test; its console's last lines:" >&2
		tail -n 15 "$CONSOLE" | tr -d '\r' | sed "s/^/  $vmm\/$mode| /" >&2
	fi
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line%$'\r'}
		case $line in
		# Anywhere in the line: BIOS escape codes may come before it.
		*HUSK-IPERF\ *) echo "$vmm $mode-${line#*HUSK-IPERF }" ;;
		*HUSK-IPERF-MTU\ *) echo "bench: $vmm $mode: guest MTU ${line#*HUSK-IPERF-MTU }" >&2 ;;
		*) [[ -z ${BENCH_VERBOSE:-} ]] || echo "  $vmm/$mode| $line" >&2 ;;
		esac
	done <"$CONSOLE"
	stop_server
}

# The CPU time (user and system clock ticks) of this shell's children that
# have ended: read around one VMM's life, it is that VMM's CPU time (and a
# few sleeps'). On a test host with two CPUs, a VMM that spends more of
# them leaves less to the guest and the iperf3 server.
# Sets CHILDREN_CPU; in this shell, not a $(...) one, whose children are not ours.
children_cpu() {
	local stat fields
	read -r stat <"/proc/$BASHPID/stat"
	read -ra fields <<<"${stat##*) }" # from the state field on: cutime and cstime are 14th and 15th
	CHILDREN_CPU="${fields[13]} ${fields[14]}"
}

report_cpu() {
	local label=$1 hz
	hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
	awk -v l="$label" -v hz="$hz" -v b="$2" -v a="$3" 'BEGIN {
		split(b, x, " "); split(a, y, " ")
		u = (y[1] - x[1]) / hz; s = (y[2] - x[2]) / hz
		printf "bench: %s: the VMM used %.1f s of CPU (%.1f user, %.1f system)\n", l, u + s, u, s
	}' >&2
}

# A fresh iperf3 server for each boot: a guest that dies in the middle of a
# test would leave a shared one waiting for it, and every later boot with
# no figures.
start_server() {
	local addr=127.0.0.1
	[[ $1 == user ]] || addr=$TAP_HOST
	iperf3 -s -B "$addr" >/dev/null 2>&1 &
	SERVER=$! # run_once runs in a pipeline's subshell: stop_server, not cleanup, ends it
	sleep 1
}

stop_server() {
	kill "$SERVER" 2>/dev/null || true
	wait "$SERVER" 2>/dev/null || true
}

# Results are lines of "RUN VMM TEST VALUE".
median_of() {
	awk -v v="$1" -v t="$2" '$2 == v && $3 == t { print $4 }' "$3" | median 1
}

ratio() {
	awk -v h="$1" -v q="$2" 'BEGIN { print (h == "-" || q == "-" || q == 0) ? "-" : sprintf("%.2f", h / q) }'
}

# paired VMM TEST RESULTS [OTHER]: the median of VMM/OTHER (default qemu)
# over the runs that have both.
paired() {
	awk -v v="$1" -v t="$2" -v o="${4:-qemu}" '$3 == t && $4 != "-" { x[$1, $2] = $4 }
		END { for (k in x) { split(k, p, SUBSEP)
			if (p[2] == v && ((p[1], o) in x) && x[p[1], o] > 0) print x[k] / x[p[1], o] } }' "$3" |
		median 2
}

main() {
	trap cleanup EXIT
	[[ -z ${BENCH_NESTED:-} ]] || ip link set lo up
	local modes=()
	[[ ,${BENCH_MODES:-user,tap}, != *,user,* ]] || modes+=(user)
	if [[ ,${BENCH_MODES:-user,tap}, != *,tap,* ]]; then
		:
	elif setup_tap; then
		modes+=(tap)
	else
		echo "bench: cannot set up the TAP device $TAP (needs root and /dev/net/tun): TAP rows skipped" >&2
	fi
	local results i vmm mode t
	results=$(mktemp)
	CONSOLE=$(mktemp)
	for ((i = 1; i <= RUNS; i++)); do
		run_order "$i"
		for mode in "${modes[@]}"; do
			for vmm in "${ORDER[@]}"; do
				[[ $vmm != qemu-vhost || $mode == tap ]] || continue
				run_once "$vmm" "$mode" | sed "s/^/$i /" | tee -a "$results" | sed "s/^$i /bench: run $i: /"
			done
		done
	done
	echo
	echo "virtio-net, TCP with iperf3 (${IPERF_TIME} s each way), median of $RUNS runs (512M, 2 vCPUs); Mbit/s"
	echo "tx: guest to host, rx: host to guest; user: --net user / -netdev user;"
	echo "tap: --net tap (vhost-net if it opens) / -netdev tap,vhost=off; qemu-vhost: -netdev tap,vhost=on"
	echo "paired: the median of each run's own ratio, which a test host's drift between runs does not move"
	# Each husk against each QEMU: "husk/qemu", "husk/qemu-vhost", ...
	local pairs=() h q
	for h in "${VMMS[@]}"; do
		[[ $h == husk* ]] || continue
		for q in "${VMMS[@]}"; do [[ $q != qemu* ]] || pairs+=("$h/$q"); done
	done
	printf '%-16s' test
	printf ' %10s' "${VMMS[@]}"
	for vmm in "${pairs[@]}"; do printf ' %16s %7s' "$vmm" paired; done
	echo
	for t in "${TESTS[@]}"; do
		printf '%-16s' "$t"
		for vmm in "${VMMS[@]}"; do printf ' %10s' "$(median_of "$vmm" "$t" "$results")"; done
		for vmm in "${pairs[@]}"; do
			h=${vmm%/*} q=${vmm#*/}
			printf ' %16s %7s' "$(ratio "$(median_of "$h" "$t" "$results")" "$(median_of "$q" "$t" "$results")")" \
				"$(paired "$h" "$t" "$results" "$q")"
		done
		echo
	done
	rm -f "$results" "$CONSOLE"
}

main "$@"
