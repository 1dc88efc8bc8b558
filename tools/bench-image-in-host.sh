#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The measuring half of tools/bench-image; runs where the VMMs run (on a KVM
# host, or inside the nested test host), with bash and busybox-level tools.
#   bench-image-in-host.sh RUNS IMAGE_DIR SEED CMDLINE
# IMAGE_DIR holds mkcloudimage.sh's debian-12-cloud.qcow2, vmlinuz and
# initrd.img. Each boot gets a fresh qcow2 overlay on the image, and SEED
# (a NoCloud volume) as the second disk: husk (HUSK, default "husk") boots
# `husk run OVERLAY` and finds the kernel in it; QEMU -M pc is handed
# vmlinuz, initrd.img and CMDLINE (the image's grub.cfg entry). RUNS boots
# each, interleaved, in reverse order every other run. Times come from
# /proc/uptime: VMM start to the kernel's first line ("Linux version", from
# earlyprintk) and to "login:" on the serial console; then the VMM is
# stopped.
set -euo pipefail

# shellcheck source=tools/bench-in-host-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-in-host-lib.sh"

RUNS=$1 IMAGE_DIR=$2 SEED=$3 CMDLINE=$4
read -ra HUSK_CMD <<<"${HUSK:-husk}"
read -ra QEMU_IMG <<<"${HUSK_QEMU_IMG:-qemu-img}"
LIMIT=${BENCH_IMAGE_TIMEOUT:-900}
WORK=$(mktemp -d)
OVERLAY=$WORK/overlay.qcow2
VMMS=(husk qemu)

vmm_command() {
	case $1 in
	husk)
		CMD=("${HUSK_CMD[@]}" run --timings "$OVERLAY" --disk "$SEED,ro" --memory 1G --cpus 2)
		;;
	qemu)
		# shellcheck disable=SC2054 # QEMU's options use commas
		CMD=(qemu-system-x86_64 -enable-kvm -cpu host -M pc -m 1G -smp 2 -nographic
			-no-reboot -nic none -kernel "$IMAGE_DIR/vmlinuz" -initrd "$IMAGE_DIR/initrd.img"
			-append "$CMDLINE" -drive "file=$OVERLAY,if=virtio,format=qcow2"
			-drive "file=$SEED,if=virtio,format=raw,readonly=on")
		;;
	esac
}

# stop PID: SIGTERM, then SIGKILL if it has not gone within 10 s.
stop() {
	local n=0
	kill -TERM "$1" 2>/dev/null || return 0
	while kill -0 "$1" 2>/dev/null && ((n < 100)); do
		sleep 0.1
		n=$((n + 1))
	done
	kill -KILL "$1" 2>/dev/null || true
}

# One boot: prints "VMM KERNEL_S LOGIN_S LOOKUP_MS". The console is read
# as it arrives, a prompt without its newline too (a read that times out
# keeps what it got).
time_boot() {
	local vmm=$1 t0 _ fd pid line partial=""
	local kernel="-" login="-" lookup="-" start=$SECONDS next=60
	rm -f "$OVERLAY"
	"${QEMU_IMG[@]}" create -q -f qcow2 -b "$IMAGE_DIR/debian-12-cloud.qcow2" -F qcow2 "$OVERLAY"
	vmm_command "$vmm"
	read -r t0 _ </proc/uptime
	exec {fd}< <(exec "${CMD[@]}" </dev/null 2>&1)
	pid=$!
	while :; do
		if IFS= read -r -t 0.1 -u "$fd" line; then
			line=$partial$line partial=""
		elif (($? > 128)); then
			partial+=$line line=$partial
		else
			echo "bench: $vmm: the VMM ended before the login prompt" >&2
			break
		fi
		line=${line%$'\r'}
		case $line in
		*"Linux version"*) [[ $kernel != - ]] || read -r kernel _ </proc/uptime ;;
		*"found the kernel in "*) lookup=${line##*found the kernel in } lookup=${lookup%% *} ;;
		*login:*)
			read -r login _ </proc/uptime
			break
			;;
		esac
		[[ -z ${BENCH_VERBOSE:-} || -z $line || -n $partial ]] || echo "  $vmm| $line" >&2
		if ((SECONDS - start >= LIMIT)); then
			echo "bench: $vmm: no login prompt after $LIMIT s, stopped" >&2
			break
		fi
		if ((SECONDS - start >= next)); then
			echo "bench: $vmm: booting for $((next / 60)) min" >&2
			next=$((next + 60))
		fi
	done
	stop "$pid"
	exec {fd}<&-
	rm -f "$OVERLAY"
	awk -v v="$vmm" -v a="$t0" -v k="$kernel" -v l="$login" -v ms="$lookup" 'BEGIN {
		printf "%s %s %s %s\n", v, (k == "-" ? "-" : sprintf("%.2f", k - a)),
			(l == "-" ? "-" : sprintf("%.2f", l - a)), ms }'
}

main() {
	local results vmm
	results=$(mktemp)
	run_rounds "$results" time_boot
	local -A kern=() login=()
	for vmm in "${VMMS[@]}"; do
		kern[$vmm]=$(awk -v v="$vmm" '$1 == v && $3 != "-" { print $2 }' "$results" | median 2)
		login[$vmm]=$(awk -v v="$vmm" '$1 == v && $3 != "-" { print $3 }' "$results" | median 2)
	done
	echo
	echo "Cloud image to its login prompt, median of $RUNS runs (seconds from VMM start; 1G, 2 vCPUs)"
	printf '%-6s %12s %12s %14s\n' VMM "to kernel" "to login:" "husk/this"
	for vmm in "${VMMS[@]}"; do
		awk -v v="$vmm" -v k="${kern[$vmm]}" -v l="${login[$vmm]}" -v h="${login[husk]}" 'BEGIN {
			printf "%-6s %12s %12s %14s\n", v, k, l, (h == "-" || l == "-" || l == 0) ? "-" : sprintf("%.2f", h / l) }'
	done
	echo "husk's kernel lookup here (ms): $(awk '$1 == "husk" { printf "%s ", $4 }' "$results")"
	rm -rf "$results" "$WORK"
}

main
