#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The measuring half of tools/bench-instance; runs where the VMMs run (on a
# KVM host, or inside the nested test host), with bash and busybox tools.
#   bench-instance-in-host.sh RUNS EXECS STREAM_MIB IMAGE_DIR PAYLOAD CMDLINE [husk|qemu]
# IMAGE_DIR holds mkcloudimage.sh's debian-12-cloud.qcow2, vmlinuz and
# initrd.img; PAYLOAD the user-data, its NoCloud seed.img and ssh/, the key
# ssh logs in with. Times come from /proc/uptime. One vCPU each: guests
# with two stall now and then in the emulated test host (guest-tests/README.md).
set -euo pipefail

# shellcheck source=tools/bench-in-host-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-in-host-lib.sh"

RUNS=$1 EXECS=$2 STREAM_MIB=$3 IMAGE_DIR=$4 PAYLOAD=$5 CMDLINE=$6 ONLY=${7:-}
read -ra HUSK_CMD <<<"${HUSK:-husk}"
read -ra QEMU_IMG <<<"${HUSK_QEMU_IMG:-qemu-img}"
LIMIT=${BENCH_INSTANCE_TIMEOUT:-1500}
WORK=$(mktemp -d)
IMAGE=$IMAGE_DIR/debian-12-cloud.qcow2
SSH_PORT=2222
VMMS=(husk qemu)
[[ -z $ONLY ]] || VMMS=("$ONLY")
export HUSK_HOME=$WORK/husk-home HOME=$WORK/home

now() {
	local t _
	read -r t _ </proc/uptime
	echo "$t"
}

since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# ssh's home: the key, and a passwd line for the test host's root, whom
# ssh must be able to look up.
setup_ssh() {
	mkdir -p "$HOME/.ssh"
	cp "$PAYLOAD"/ssh/id_ed25519* "$HOME/.ssh/"
	chmod 700 "$HOME/.ssh"
	chmod 600 "$HOME/.ssh/id_ed25519"
	grep -q '^root:' /etc/passwd 2>/dev/null || echo "root:x:0:0:root:$HOME:/bin/sh" >>/etc/passwd
	# The test host's loopback is down until someone brings it up.
	ip link set lo up 2>/dev/null || true
}

SSH=(ssh -q -p "$SSH_PORT" -i "$HOME/.ssh/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no
	-o UserKnownHostsFile=/dev/null -o ConnectTimeout=30 husk@127.0.0.1)

# husk launch to ready: prints "husk LAUNCH_S STOP_S"; the exec figures
# of the first run go to $WORK/exec.
husk_run() {
	local run=$1 t0 launch stop rc=0
	t0=$(now)
	"${HUSK_CMD[@]}" launch "$IMAGE" --name bench --cpus 1 --memory 1G --timings \
		--cloud-init "$PAYLOAD/user-data" -p "127.0.0.1:$SSH_PORT:22" \
		--timeout "$LIMIT" >"$WORK/launch.out" 2>"$WORK/launch.err" || rc=$?
	launch=$(since "$t0")
	if ((rc != 0)); then
		echo "bench: husk launch failed with status $rc: $(tail -n 3 "$WORK/launch.err" | tr '\n' ' ')" >&2
		tail -n 30 "$HUSK_HOME/instances/bench/console.log" >&2 2>/dev/null || true
		launch=-
	else
		echo "bench: run $run: husk --timings: $(grep -v '^$' "$WORK/launch.err" | tr '\n' ' ')" >&2
		[[ $run != 1 ]] || bench_exec >&2
	fi
	t0=$(now)
	"${HUSK_CMD[@]}" stop bench >/dev/null 2>&1 && stop=$(since "$t0") || stop=-
	"${HUSK_CMD[@]}" delete bench >/dev/null 2>&1 || true
	echo "husk $launch $stop"
}

# QEMU to cloud-init's final message, then system_powerdown to its exit:
# prints "qemu BOOT_S STOP_S". The console (and QEMU's monitor, behind
# Ctrl-A c) is on stdio; stdin is a pipe this script holds.
qemu_run() {
	local overlay=$WORK/overlay.qcow2 fifo=$WORK/qemu.in out=$WORK/qemu.out
	local t0 ready=- stop=- pid in start=$SECONDS next=60
	rm -f "$overlay" "$fifo" "$out"
	"${QEMU_IMG[@]}" create -q -f qcow2 -b "$IMAGE" -F qcow2 "$overlay"
	mkfifo "$fifo"
	t0=$(now)
	# shellcheck disable=SC2054 # QEMU's options use commas
	qemu-system-x86_64 -enable-kvm -cpu host -M pc -m 1G -smp 1 -nographic \
		-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= -kernel "$IMAGE_DIR/vmlinuz" -initrd "$IMAGE_DIR/initrd.img" \
		-append "$CMDLINE" -drive "file=$overlay,if=virtio,format=qcow2" \
		-drive "file=$PAYLOAD/seed.img,if=virtio,format=raw,readonly=on" <"$fifo" >"$out" 2>&1 &
	pid=$!
	exec {in}>"$fifo"
	while kill -0 "$pid" 2>/dev/null; do
		if grep -q 'Cloud-init v\. .* finished' "$out"; then
			ready=$(since "$t0")
			break
		fi
		if ((SECONDS - start >= LIMIT)); then
			echo "bench: qemu: cloud-init not done after $LIMIT s" >&2
			break
		fi
		if ((SECONDS - start >= next)); then
			echo "bench: qemu: booting for $((next / 60)) min" >&2
			next=$((next + 60))
		fi
		sleep 0.2
	done
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "bench: qemu ended before cloud-init was done: $(tail -n 5 "$out" | tr '\n' ' ')" >&2
		exec {in}>&-
		rm -f "$overlay" "$fifo"
		echo "qemu - -"
		return
	fi
	t0=$(now)
	printf '\001csystem_powerdown\n' >&"$in"
	while kill -0 "$pid" 2>/dev/null && ((SECONDS - start < LIMIT + 120)); do sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		tail -n 20 "$out" >&2
	elif [[ $ready != - ]]; then
		stop=$(since "$t0")
	fi
	wait "$pid" 2>/dev/null || true
	exec {in}>&-
	rm -f "$overlay" "$fifo"
	echo "qemu $ready $stop"
}

# The round trip of EXECS `husk exec bench -- true` against as many new ssh
# connections, then STREAM_MIB MiB through `cat` both ways, each timed.
bench_exec() {
	local i t0 all_husk="" all_ssh="" n
	for ((i = 0; i < 30; i++)); do
		"${SSH[@]}" true 2>/dev/null && break
		sleep 1
	done
	if ! "${HUSK_CMD[@]}" exec bench -- true; then
		echo "bench: husk exec fails on a ready instance: no exec figures" >&2
		"${HUSK_CMD[@]}" info bench >&2 || true
		tail -n 40 "$HUSK_HOME/instances/bench/console.log" "$HUSK_HOME/instances/bench/husk.log" >&2 || true
		return 0
	fi
	for ((i = 1; i <= EXECS; i++)); do
		t0=$(now)
		"${HUSK_CMD[@]}" exec bench -- true || echo "bench: husk exec failed ($?)"
		all_husk+="$(since "$t0")"$'\n'
		t0=$(now)
		"${SSH[@]}" true || echo "bench: ssh failed ($?)"
		all_ssh+="$(since "$t0")"$'\n'
	done
	local mh ms
	mh=$(printf '%s' "$all_husk" | median 3)
	ms=$(printf '%s' "$all_ssh" | median 3)
	echo "exec-rt husk $mh ssh $ms" >"$WORK/exec"
	for i in husk ssh; do
		local cmd=("${HUSK_CMD[@]}" exec bench --)
		[[ $i == husk ]] || cmd=("${SSH[@]}")
		t0=$(now)
		n=$(head -c $((STREAM_MIB << 20)) /dev/zero | "${cmd[@]}" cat | wc -c)
		echo "stream $i $(since "$t0") $n" >>"$WORK/exec"
	done
	cat "$WORK/exec"
}

# run_vmm VMM RUN: one run of that VMM (husk_run, qemu_run, ...).
run_vmm() {
	"${1}_run" "$2"
}

main() {
	local results
	setup_ssh
	results=$WORK/results
	run_rounds "$results" run_vmm
	local -A up=() down=()
	for vmm in "${VMMS[@]}"; do
		up[$vmm]=$(awk -v v="$vmm" '$1 == v { print $2 }' "$results" | median 2)
		down[$vmm]=$(awk -v v="$vmm" '$1 == v { print $3 }' "$results" | median 2)
	done
	echo
	echo "Cloud image to ready (husk launch; QEMU to cloud-init's final message) and stop to exit,"
	echo "median of $RUNS runs (seconds; 1G, 1 vCPU)"
	printf '%-6s %10s %10s %12s %12s\n' VMM ready stop "husk/this" "husk/this"
	for vmm in "${VMMS[@]}"; do
		awk -v v="$vmm" -v u="${up[$vmm]}" -v d="${down[$vmm]}" -v hu="${up[husk]:--}" -v hd="${down[husk]:--}" '
			function r(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2f", a / b) }
			BEGIN { printf "%-6s %10s %10s %12s %12s\n", v, u, d, r(hu, u), r(hd, d) }'
	done
	if [[ -s $WORK/exec ]]; then
		echo
		awk -v n="$EXECS" -v mib="$STREAM_MIB" '
			$1 == "exec-rt" { printf "exec round trip, median of %d: husk exec %s s, ssh %s s, husk/ssh %.2f\n", n, $3, $5, ($5 > 0 ? $3 / $5 : 0) }
			$1 == "stream" { s[$2] = $3; b[$2] = $4 }
			END {
				for (k in s) printf "%d MiB through cat, %s: %s s (%.1f MiB/s, %d bytes back)\n", mib, k, s[k], (s[k] > 0 ? mib / s[k] : 0), b[k]
				if (s["husk"] > 0 && s["ssh"] > 0) printf "throughput husk/ssh: %.2f\n", s["ssh"] / s["husk"]
			}' "$WORK/exec"
	fi
	rm -rf "$WORK"
}

main
