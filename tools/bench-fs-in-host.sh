#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The measuring half of tools/bench-fs; runs where the VMMs run (on a KVM
# host, or inside the nested test host).
#   bench-fs-in-host.sh RUNS VMLINUZ INITRD SHAREDIR
# Boots the same kernel and initramfs with husk (HUSK, default "husk"),
# sharing SHAREDIR with --share, and with QEMU's vhost-user-fs-pci served by
# virtiofsd (VIRTIOFSD, default Debian's /usr/lib/qemu/virtiofsd) on the
# same directory, RUNS times each, interleaved; SHAREDIR is emptied before
# every boot. The guest prints "HUSK-FS name value" lines.
# QEMU boots twice a run: "qemu" is virtiofsd as it comes (no_xattr: it
# answers the guest's getxattr with ENOSYS, so the guest stops asking), and
# "qemu-xattr" adds -o xattr, serving extended attributes as husk always
# does. Only with xattrs does the guest ask for security.capability before
# the first write to a file and before a chown: two of the thirteen requests
# per untarred file.
# HUSK_B, HUSK_B_ARGS, HUSK_B_SHARE: a second husk binary (default the
# first), arguments added to its `run`, and options added to its --share
# (noxattr, say); any one boots it in each run too, as "husk-b": an A/B
# comparison taken from the same test host.
# BENCH_FS_NO_QEMU=1: only husk and husk-b boot, for an A/B comparison in
# half the time; the table gives husk-b/husk.
# BENCH_FS_BOOT_LIMIT: seconds one boot may take (default 1200).
# BENCH_PROFILE=1: each boot runs under `perf record -a` (PERF, default
# "perf"), and where the host's CPUs went is printed after it, by program
# and by function. BENCH_EXIT_REASONS=1: each boot's exits by reason and
# MSR accesses by register (bench-in-host-lib.sh).
set -euo pipefail

# shellcheck source=tools/bench-in-host-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-in-host-lib.sh"

RUNS=$1 VMLINUZ=$2 INITRD=$3 SHARE=$4
read -ra HUSK_CMD <<<"${HUSK:-husk}"
read -ra HUSK_B_EXTRA <<<"${HUSK_B_ARGS:-}"
VMMS=(husk qemu qemu-xattr)
[[ -z ${HUSK_B:-}${HUSK_B_ARGS:-}${HUSK_B_SHARE:-} ]] || VMMS=(husk husk-b qemu qemu-xattr)
[[ -z ${BENCH_FS_NO_QEMU:-} ]] || VMMS=(husk husk-b)
VIRTIOFSD=${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
BOOT_LIMIT=${BENCH_FS_BOOT_LIMIT:-1200}
# nokaslr: a stuck guest's addresses (guest_rips_report) are the same in
# every boot of this kernel, so /proc/kallsyms of any nokaslr boot names them.
CMDLINE="console=ttyS0 quiet nokaslr"
TAG=bench
# name, unit, kind: "time" or "count" (lower is better, ratio qemu/husk)
# or "rate" (higher is better, ratio husk/qemu), and the target ratio.
# local-untar-s is the untar into the guest's own memory: the guest's work
# alone, which no VMM can make faster; untar-cost-s is what the share adds
# to it. The kvm- rows are the host KVM's counts for the whole boot; the
# poll- rows, husk's request queue thread's (--timings): its wake-ups (a
# kick each, but for kicks that came while it was busy), the requests its
# polling caught (and found as the window closed), and its windows cut
# short because the test host took its CPU.
TESTS=(
	"local-untar-s s time -"
	"untar-s s time -"
	"untar-cost-s s time -"
	"find-stat-s s time -"
	"metadata-s s time 1.5"
	"seqwrite-mibs MiB/s rate 1.0"
	"seqread-mibs MiB/s rate 1.0"
)
for name in "${KVM_STATS[@]}"; do TESTS+=("kvm-$name n count -"); done
TESTS+=("poll-woken n count -" "poll-caught n count -" "poll-late n count -"
	"poll-preempted n count -")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-fs.XXXXXX")
VFSD_PID=""

cleanup() {
	[[ -z $VFSD_PID ]] || kill "$VFSD_PID" 2>/dev/null || true
	rm -rf "$WORK"
}

# Empty, fresh for every boot (each VMM opens it anew when it starts).
clear_share() {
	rm -rf "$SHARE"
	mkdir -p "$SHARE"
}

vmm_command() {
	case $1 in
	husk | husk-b)
		CMD=("${HUSK_CMD[@]}")
		[[ $1 == husk || -z ${HUSK_B:-} ]] || CMD=("$HUSK_B")
		CMD+=(run)
		local share=$SHARE:$TAG
		[[ $1 == husk ]] || CMD+=("${HUSK_B_EXTRA[@]}")
		[[ $1 == husk || -z ${HUSK_B_SHARE:-} ]] || share+=,$HUSK_B_SHARE
		CMD+=(--kernel "$VMLINUZ" --initrd "$INITRD" --memory 512M
			--cpus 1 --share "$share" --cmdline "$CMDLINE" --timings)
		;;
	qemu | qemu-xattr)
		# vhost-user needs the guest's RAM in shared memory.
		# shellcheck disable=SC2054 # QEMU's options use commas
		CMD=(qemu-system-x86_64 -enable-kvm -cpu host -M pc -m 512M -smp 1 -nographic
			-no-reboot -nic none -kernel "$VMLINUZ" -initrd "$INITRD" -append "$CMDLINE"
			-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem
			-chardev "socket,id=char0,path=$WORK/vfsd.sock"
			-device "vhost-user-fs-pci,chardev=char0,tag=$TAG")
		;;
	esac
}

# virtiofsd on SHARE, ready when its socket appears. sandbox=chroot: the
# default (namespace) pivot_roots, which cannot leave an initramfs root
# such as the test host's; the per-request work is the same.
start_virtiofsd() {
	local xattr=no_xattr
	[[ $1 != qemu-xattr ]] || xattr=xattr
	rm -f "$WORK/vfsd.sock"
	"$VIRTIOFSD" --socket-path="$WORK/vfsd.sock" -o source="$SHARE" -o cache=auto \
		-o "$xattr" -o sandbox=chroot </dev/null >"$WORK/vfsd.log" 2>&1 &
	VFSD_PID=$!
	local i
	for ((i = 0; i < 300; i++)); do
		[[ -S $WORK/vfsd.sock ]] && return 0
		kill -0 "$VFSD_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "bench: virtiofsd did not come up:" >&2
	sed 's/^/  virtiofsd| /' "$WORK/vfsd.log" >&2
	return 1
}

stop_virtiofsd() {
	[[ -n $VFSD_PID ]] || return 0
	# It ends by itself when QEMU hangs up; give it a moment, then insist.
	local i
	for ((i = 0; i < 50; i++)); do
		kill -0 "$VFSD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill "$VFSD_PID" 2>/dev/null || true
	wait "$VFSD_PID" 2>/dev/null || true
	VFSD_PID=""
}

PERF_PID=""

profile_start() {
	[[ -n ${BENCH_PROFILE:-} ]] || return 0
	${PERF:-perf} record -a -F 199 -o "$WORK/perf.data" >"$WORK/perf.log" 2>&1 &
	PERF_PID=$!
}

# Samples in each program and library, then in each function, above a
# floor; an idle CPU shows as the swapper's.
profile_report() {
	local vmm=$1 sort
	[[ -n $PERF_PID ]] || return 0
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=""
	for sort in comm,dso comm,dso,sym; do
		${PERF:-perf} report -i "$WORK/perf.data" --stdio --sort "$sort" --percent-limit 0.8 2>&1 |
			awk -v p="  profile $vmm| " '!/^#/ && NF && n++ < 40 { print p $0 }' >&2
	done
}

# One boot: prints "VMM TEST VALUE" for each result. The console goes to a
# file and a watchdog stops a hung VM; a boot that did not finish every
# job shows its console's last lines.
run_once() {
	local vmm=$1 console=$WORK/console pid line done_="" errors=0
	clear_share
	# A test host that wedges mid-run leaves this as its last word.
	echo "bench: $vmm boots; the test host has $(awk '/^MemAvailable/ { print int($2 / 1024) }' /proc/meminfo) MiB available" >&2
	vmm_command "$vmm"
	if [[ $vmm == qemu* ]] && ! start_virtiofsd "$vmm"; then
		return 0
	fi
	profile_start
	kvm_stats_start
	exit_reasons_start
	"${CMD[@]}" </dev/null >"$console" 2>&1 &
	pid=$!
	wait_vm "$pid" "$BOOT_LIMIT" "$vmm" || true
	wait "$pid" || true
	[[ $vmm != qemu* ]] || stop_virtiofsd
	profile_report "$vmm"
	exit_reasons_report "$vmm"
	[[ -z $KVM_STATS_OUT ]] || sed "s/^/$vmm kvm-/" "$KVM_STATS_OUT"
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line%$'\r'}
		case $line in
		# Anywhere in the line: BIOS escape codes may come before it.
		*HUSK-FS-ERROR\ *)
			echo "bench: $vmm: guest error: ${line#*HUSK-FS-ERROR }" >&2
			errors=1
			;;
		*HUSK-FS-DONE*) done_=1 ;;
		*HUSK-FS\ *) echo "$vmm ${line#*HUSK-FS }" ;;
		"husk: share $TAG: "*) echo "bench: $vmm: ${line#husk: }" >&2 ;;
		"husk: virtio-fs queue 1: waits"*) echo "bench: $vmm: ${line#husk: }" >&2 ;;
		"husk: virtio-fs queue 1: "*)
			local -a n
			read -ra n <<<"$(tr -c '0-9\n' ' ' <<<"${line#husk: virtio-fs queue 1: }")"
			printf '%s poll-%s %s\n' "$vmm" woken "${n[0]}" "$vmm" caught "${n[1]}" \
				"$vmm" late "${n[2]}" "$vmm" preempted "${n[3]}"
			;;
		*) [[ -z ${BENCH_VERBOSE:-} ]] || echo "  $vmm| $line" >&2 ;;
		esac
	done <"$console"
	if [[ -z $done_ || $errors == 1 ]]; then
		echo "bench: $vmm: the guest did not finish cleanly; its console's last lines:" >&2
		tail -n 40 "$console" | tr -d '\r' | sed "s/^/  $vmm| /" >&2
		if [[ $vmm == qemu* && -s $WORK/vfsd.log ]]; then
			tail -n 20 "$WORK/vfsd.log" | sed 's/^/  virtiofsd| /' >&2
		fi
	fi
}

# median_of VMM TEST RESULTS [DECIMALS]
median_of() {
	awk -v v="$1" -v t="$2" '$1 == v && $2 == t { print $3 }' "$3" | median "${4:-2}"
}

# husk against one QEMU figure: qemu/husk for times and counts, husk/qemu
# for rates.
ratio() {
	awk -v k="$1" -v h="$2" -v q="$3" 'BEGIN {
		if (k == "time" || k == "count") { num = q; den = h } else { num = h; den = q }
		print (h == "-" || q == "-" || den == 0) ? "-" : sprintf("%.2f", num / den) }'
}

main() {
	trap cleanup EXIT
	[[ -d $SHARE ]] || { echo "bench: no directory $SHARE" >&2; exit 1; }
	local results=$WORK/results vmm spec
	: >"$results"
	run_rounds "$results" run_once
	clear_share
	echo
	echo "virtio-fs, median of $RUNS runs (512M, 1 vCPU, share on tmpfs; QEMU: vhost-user-fs-pci + virtiofsd cache=auto)"
	echo "metadata: untar 10,000 small files, then find + stat them cold; streaming: 256 MiB dd bs=1M (+ sync), read cold"
	echo "qemu: virtiofsd as it comes (no xattrs); qemu-xattr: virtiofsd -o xattr, serving xattrs as husk does"
	echo "ratio: > 1.0 means husk is better (qemu/husk for times, husk/qemu for rates)"
	local huskies=(husk) q others=(qemu qemu-xattr)
	[[ ${VMMS[1]} != husk-b ]] || huskies+=(husk-b)
	if [[ -n ${BENCH_FS_NO_QEMU:-} ]]; then
		huskies=(husk-b) others=(husk)
		echo "A/B: husk-b/husk > 1.0 means husk-b is better"
	fi
	printf '%-26s %6s' test unit
	printf ' %10s' "${VMMS[@]}"
	for vmm in "${huskies[@]}"; do
		for q in "${others[@]}"; do printf ' %17s' "$vmm/$q"; done
	done
	printf ' %7s\n' target
	for spec in "${TESTS[@]}"; do
		local t unit kind target
		read -r t unit kind target <<<"$spec"
		printf '%-26s %6s' "$t" "$unit"
		local places=2
		[[ $kind != count ]] || places=0
		for vmm in "${VMMS[@]}"; do printf ' %10s' "$(median_of "$vmm" "$t" "$results" "$places")"; done
		for vmm in "${huskies[@]}"; do
			for q in "${others[@]}"; do
				printf ' %17s' "$(ratio "$kind" "$(median_of "$vmm" "$t" "$results")" \
					"$(median_of "$q" "$t" "$results")")"
			done
		done
		[[ $target == - ]] && target="" || target=">=$target"
		printf ' %7s\n' "$target"
	done
}

main "$@"
