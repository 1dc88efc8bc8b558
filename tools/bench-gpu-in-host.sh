#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The measuring half of tools/bench-gpu; runs where the VMMs run (on a KVM
# host, or inside the nested test host).
#   bench-gpu-in-host.sh RUNS FRAMES VMLINUZ INITRD
# Boots the 3D guest (guest-init.sh's action gpu-gl) with husk --gpu virgl
# (HUSK, default "husk") and with QEMU's virtio-gpu-gl-pci and
# -display egl-headless, RUNS times each, in alternating order, with the
# same kernel command line. The guest runs kmscube for FRAMES frames and
# reports kmscube's last "Rendered N frames in S sec (F fps)" as the fact
# gl_rate; the VMM is stopped once it has. BENCH_MODULES, when set, is a
# directory of kernel modules to load first (vgem, for a render node
# where the host has no GPU), with their order in its file "order".
set -euo pipefail

# shellcheck source=tools/bench-in-host-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-in-host-lib.sh"

RUNS=$1 FRAMES=$2 VMLINUZ=$3 INITRD=$4
read -ra HUSK_CMD <<<"${HUSK:-husk}"
CMDLINE="console=ttyS0 quiet husk_action=gpu-gl husk_gl_frames=$FRAMES vt.global_cursor_default=0"
# A boot's limit: the 3D guest's boot, then FRAMES frames at 1 fps or more.
LIMIT=$((300 + FRAMES))
WORK=$(mktemp -d)
VMMS=(husk qemu)

vmm_command() {
	case $1 in
	husk) CMD=("${HUSK_CMD[@]}" run --kernel "$VMLINUZ" --initrd "$INITRD" --cmdline "$CMDLINE"
		--memory 1G --cpus 1 --gpu virgl) ;;
	# -vga none: the GPU is the guest's only display, as under husk.
	qemu) CMD=(qemu-system-x86_64 -enable-kvm -cpu host -M pc -smp 1 -m 1G -no-reboot -nic none
		-monitor none -serial stdio -vga none -device virtio-gpu-gl-pci -display egl-headless
		-kernel "$VMLINUZ" -initrd "$INITRD" -append "$CMDLINE") ;;
	esac
}

# A render node for QEMU's egl-headless: the modules in BENCH_MODULES.
load_modules() {
	local m
	[[ -n ${BENCH_MODULES:-} ]] || return 0
	while read -r m; do
		insmod "$BENCH_MODULES/$m" 2>/dev/null || echo "bench: insmod $m failed" >&2
	done <"$BENCH_MODULES/order"
	for m in 1 2 3 4 5 6 7 8 9 10; do
		[[ -e /dev/dri/renderD128 ]] && return 0
		sleep 0.5
	done
	echo "bench: no /dev/dri/renderD128 after loading vgem" >&2
}

# What stops QEMU from the bench before any boot, or nothing.
qemu_missing() {
	local devices
	devices=$(qemu-system-x86_64 -device help 2>&1) || true
	[[ $devices == *virtio-gpu-gl-pci* ]] || {
		echo "QEMU lists no virtio-gpu-gl-pci (its GL modules not found; QEMU_MODULE_DIR=${QEMU_MODULE_DIR:-})"
		return
	}
	ls /dev/dri/renderD* >/dev/null 2>&1 || echo "no DRM render node for -display egl-headless"
}

# One boot: prints "VMM FPS FRAMES SECS RENDERER", "-" for what it did not
# give. The VMM's output goes to a file, read each second.
time_gl() {
	local vmm=$1 out=$WORK/$1.out pid start=$SECONDS rate="" renderer
	vmm_command "$vmm"
	"${CMD[@]}" </dev/null >"$out" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		rate=$(sed -n 's/^HUSK-FACT gl_rate=//p' "$out" | tr -d '\r')
		[[ -z $rate ]] || break
		if ((SECONDS - start >= LIMIT)); then
			echo "bench: $vmm: no frame rate after $LIMIT s, stopped" >&2
			break
		fi
		sleep 1
	done
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	renderer=$(sed -n 's/^HUSK-FACT gl_renderer=//p' "$out" | tr -d '\r' | tr ' ' '_')
	if [[ -z $rate ]]; then
		sed 's/^/  '"$vmm"'| /' "$out" | tail -n 25 >&2
	elif [[ -n ${BENCH_VERBOSE:-} ]]; then
		sed 's/^/  '"$vmm"'| /' "$out" >&2
	fi
	# "600 frames in 47.9 sec (12.5 fps)"
	awk -v v="$vmm" -v r="$rate" -v g="${renderer:--}" 'BEGIN {
		if (split(r, f, /[ ()]+/) >= 6) printf "%s %s %s %s %s\n", v, f[6], f[1], f[4], g
		else printf "%s - - - %s\n", v, g
	}'
}

main() {
	local results=$WORK/results vmm failed=0 why
	load_modules
	why=$(qemu_missing)
	if [[ -n $why ]]; then
		echo "bench: QEMU cannot run the 3D guest here: $why"
		VMMS=(husk)
	fi
	run_rounds "$results" time_gl

	local -A fps=()
	for vmm in "${VMMS[@]}"; do
		fps[$vmm]=$(awk -v v="$vmm" '$1 == v { print $2 }' "$results" | median 2)
		if awk -v v="$vmm" '$1 == v && $2 == "-" { bad = 1 } END { exit !bad }' "$results"; then
			echo "bench: $vmm: some runs gave no frame rate (see above)"
			failed=1
		fi
	done
	echo
	echo "kmscube, $FRAMES frames, median of $RUNS runs (frames per second; same kernel, guest, command line, 1G, 1 vCPU)"
	printf '%-8s %10s %14s  %s\n' VMM fps "husk/this" "guest's GL renderer"
	for vmm in "${VMMS[@]}"; do
		awk -v v="$vmm" -v f="${fps[$vmm]}" -v h="${fps[husk]}" \
			-v g="$(awk -v v="$vmm" '$1 == v && $5 != "-" { r = $5 } END { print r }' "$results")" '
			BEGIN { printf "%-8s %10s %14s  %s\n", v, f,
				(f == "-" || h == "-" || f == 0) ? "-" : sprintf("%.2f", h / f), g }'
	done
	rm -rf "$WORK"
	return "$failed"
}

main
