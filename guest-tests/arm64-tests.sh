#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Whole-VM tests for arm64 hosts, run inside the aarch64 test host
# (lib/runner --arch arm64) or directly on an arm64 machine with KVM.
# Plain sh: the aarch64 test host has busybox and no bash. One line per
# check, as vm-tests.sh prints them:
#   RESULT <name> PASS|FAIL <reason>|SKIP <reason>
#
#   arm64-tests.sh --assets DIR (--husk PATH | --no-husk "SKIP|FAIL REASON")
#                  [--only NAME[,NAME]...]
#   arm64-tests.sh --list
#   arm64-tests.sh --skip-all REASON
#
# DIR holds kvm-arm64-probe (a static aarch64 program) and husk's guest:
# vmlinuz (Debian's arm64 kernel), initrd.cpio.gz (busybox, guest-init.sh,
# the virtio modules) and exec-modules (the module tree husk exec loads
# from). --husk is the arm64 husk to test; --no-husk says why there is
# none, and husk's tests get that verdict.
set -eu

TESTS="arm64-kvm arm64-boot arm64-smp arm64-poweroff arm64-gpio arm64-reboot arm64-panic
arm64-blk arm64-net arm64-fs arm64-exec arm64-exec-status"
# The probe runs a few guest instructions: seconds even under TCG. A
# guest boots in about 10 s under nested KVM in the emulated test host
# (guest-tests/README.md, "arm64"): 90 s is ample, and under the 120 s of
# silence after which the runner takes the test host for wedged.
PROBE_TIMEOUT=${HUSK_TEST_TIMEOUT:-120}
BOOT_TIMEOUT=${HUSK_TEST_TIMEOUT:-90}

ONLY=""
ASSETS=""
HUSK=""
NO_HUSK=""
LOGS=/tmp/arm64-logs

want() {
	[ -z "$ONLY" ] && return 0
	case ",$ONLY," in *",$1,"*) return 0 ;; esac
	return 1
}

result() {
	want "$1" || return 0
	echo "RESULT $*"
}

# arm64-kvm: the test host's /dev/kvm runs a guest to an MMIO exit and a
# PSCI SYSTEM_OFF (kvm-arm64-probe.c says how). The probe prints what it
# saw; its status alone decides, and its lines follow a failure.
test_arm64_kvm() {
	want arm64-kvm || return 0
	probe=$ASSETS/kvm-arm64-probe
	if [ ! -x "$probe" ]; then
		result arm64-kvm FAIL "no $probe"
		return 0
	fi
	if [ ! -c /dev/kvm ]; then
		result arm64-kvm FAIL "no /dev/kvm: $(dmesg | grep -m1 -i 'kvm' || echo 'KVM said nothing')"
		return 0
	fi
	# How KVM came up (VHE or nVHE), for the log.
	echo "arm64-tests: $(dmesg | grep -m1 -i 'kvm.*mode initialized' || echo 'kvm: no mode line in dmesg')"
	rc=0
	out=$(timeout "$PROBE_TIMEOUT" "$probe" 2>&1) || rc=$?
	echo "$out" | sed 's/^/arm64-tests: /'
	if [ "$rc" -eq 0 ] && echo "$out" | grep -q '^kvm-arm64-probe: PASS$'; then
		result arm64-kvm PASS
	else
		result arm64-kvm FAIL "kvm-arm64-probe exited $rc: $(echo "$out" | tail -n 1)"
	fi
}

# ---- husk's guests ------------------------------------------------------

now() {
	cut -d' ' -f1 /proc/uptime
}

# A failure shows the end of the guest's console and husk's stderr.
fail() {
	name=$1 why=$2 log=${3:-}
	result "$name" FAIL "$why"
	[ -n "$log" ] || return 0
	if [ "$log" = "${LOG_SHOWN:-}" ]; then
		echo "  --- (log of this boot above)"
		return 0
	fi
	LOG_SHOWN=$log
	if [ -s "$log" ]; then
		echo "  --- last lines of $log:"
		tail -n 25 "$log" | tr -d '\r' | sed 's/^/  | /'
	fi
	if [ -s "$log.err" ]; then
		echo "  --- husk stderr:"
		tail -n 10 "$log.err" | sed 's/^/  | /'
	fi
}

# vm_start NAME ACTION [husk run option]...: husk runs the guest in the
# background (VM_PID), its console in VM_LOG; the guest's /init
# (guest-init.sh) does ACTION. VM_EXTRA adds kernel parameters.
vm_start() {
	name=$1 action=$2
	shift 2
	VM_LOG=$LOGS/$name.log VM_TOKEN=$name.$$ VM_T0=$(now)
	# shellcheck disable=SC2086 # HUSK may be a command with arguments
	$HUSK run --kernel "$ASSETS/vmlinuz" --initrd "$ASSETS/initrd.cpio.gz" \
		--cmdline "console=ttyS0 quiet husk_action=$action husk_test=$VM_TOKEN${VM_EXTRA:+ $VM_EXTRA}" \
		"$@" </dev/null >"$VM_LOG" 2>"$VM_LOG.err" &
	VM_PID=$!
}

# Wait for the VM, BOOT_TIMEOUT at most (then it is killed): VM_RC is its
# status or "timeout", VM_WALL its seconds.
vm_wait() {
	deadline=$(($(cut -d. -f1 /proc/uptime) + BOOT_TIMEOUT))
	while kill -0 "$VM_PID" 2>/dev/null && [ "$(cut -d. -f1 /proc/uptime)" -lt "$deadline" ]; do
		sleep 0.2
	done
	if kill -0 "$VM_PID" 2>/dev/null; then
		kill -KILL "$VM_PID" 2>/dev/null || true
		wait "$VM_PID" 2>/dev/null || true
		VM_RC=timeout
	else
		VM_RC=0
		wait "$VM_PID" || VM_RC=$?
	fi
	VM_WALL=$(awk -v a="$VM_T0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
	echo "arm64-tests: $(basename "$VM_LOG" .log): status $VM_RC after ${VM_WALL}s"
}

# vm_boot NAME ACTION [option]...: start and wait.
vm_boot() {
	vm_start "$@"
	vm_wait
}

# Wait until the console has a line matching PATTERN (grep) while the VM
# runs; false if the VM ended or BOOT_TIMEOUT passed first.
vm_wait_for() {
	deadline=$(($(cut -d. -f1 /proc/uptime) + BOOT_TIMEOUT))
	while [ "$(cut -d. -f1 /proc/uptime)" -lt "$deadline" ]; do
		tr -d '\r' <"$VM_LOG" | grep -q "$1" && return 0
		kill -0 "$VM_PID" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

# The value of "HUSK-FACT KEY=value" on the console, the last one.
fact() {
	tr -d '\r' <"$VM_LOG" | sed -n "s/^HUSK-FACT $1=//p" | tail -n 1
}

up() {
	tr -d '\r' <"$VM_LOG" | grep -q '^HUSK-GUEST-UP'
}

# Whether husk's tests can run: with no husk, each gets --no-husk's verdict.
husk_ready() {
	[ -z "$NO_HUSK" ] && return 0
	result "$1" "$NO_HUSK"
	return 1
}

# One boot with two vCPUs answers four questions: userspace came up
# (guest-init.sh's marker on husk's console, the UART), the guest sees
# both CPUs, its power-off is husk's status 0 (as on x86), and the power
# button's GPIO controller is found in the device tree and bound.
test_boot() {
	want arm64-boot || want arm64-smp || want arm64-poweroff || want arm64-gpio || return 0
	if [ -n "$NO_HUSK" ]; then
		for t in arm64-boot arm64-smp arm64-poweroff arm64-gpio; do husk_ready $t || true; done
		return 0
	fi
	vm_boot boot poweroff --cpus 2
	if up; then
		result arm64-boot PASS
	else
		fail arm64-boot "no HUSK-GUEST-UP on the console (status $VM_RC)" "$VM_LOG"
	fi
	cpus=$(fact cpus)
	if [ "$cpus" = 2 ]; then
		result arm64-smp PASS
	else
		fail arm64-smp "the guest sees '${cpus:-nothing}' CPUs with --cpus 2" "$VM_LOG"
	fi
	if [ "$VM_RC" = 0 ] && up; then
		result arm64-poweroff PASS
	else
		fail arm64-poweroff "husk exited with status $VM_RC after the guest's power-off, expected 0" "$VM_LOG"
	fi
	if [ "$(fact pl061_bound)" = 1 ]; then
		result arm64-gpio PASS
	else
		fail arm64-gpio "the guest's pl061_gpio driver bound '$(fact pl061_bound)' controllers, expected 1" "$VM_LOG"
	fi
}

# A guest reboot (PSCI SYSTEM_RESET) ends husk with status 5, as on x86.
test_reboot() {
	want arm64-reboot || return 0
	husk_ready arm64-reboot || return 0
	vm_boot reboot reboot
	if [ "$VM_RC" = 5 ] && up; then
		result arm64-reboot PASS
	else
		fail arm64-reboot "husk exited with status $VM_RC after the guest's reboot, expected 5" "$VM_LOG"
	fi
}

# On x86 a guest panic reaches husk through pvpanic (status 4). Neither
# side has it on arm64 yet: Debian's arm64 kernel is built without
# CONFIG_PVPANIC, and husk's arm64 board describes no pvpanic device.
test_panic() {
	result arm64-panic SKIP "no pvpanic on arm64: Debian's arm64 kernel has CONFIG_PVPANIC unset and husk's arm64 board has no pvpanic-mmio node"
}

# A raw disk: the guest reads the host's first line and writes its own
# at 4 KiB, which the host then finds in the file.
test_blk() {
	want arm64-blk || return 0
	husk_ready arm64-blk || return 0
	img=$LOGS/blk.img
	dd if=/dev/zero of="$img" bs=1024 count=1024 2>/dev/null
	echo "husk-disk-marker $$" | dd of="$img" conv=notrunc 2>/dev/null
	vm_boot blk blk-rw --disk "$img"
	got=$(fact blk_read)
	back=$(dd if="$img" bs=4096 skip=1 count=1 2>/dev/null | tr -d '\000' | head -n 1)
	if [ "$got" != "husk-disk-marker $$" ]; then
		fail arm64-blk "the guest read '${got:-nothing}' from vda, expected 'husk-disk-marker $$'" "$VM_LOG"
	elif [ "$back" != "written by the guest $VM_TOKEN" ]; then
		fail arm64-blk "the disk file holds '${back:-nothing}' at 4 KiB after the guest's write ($(fact blk_write))" "$VM_LOG"
	elif [ "$VM_RC" != 0 ]; then
		fail arm64-blk "husk exited with status $VM_RC, expected 0" "$VM_LOG"
	else
		result arm64-blk PASS
	fi
}

# User networking (slirp): the guest's DHCP lease, then the host fetches
# the guest's page through a forwarded port, and /cgi-bin/done ends it.
test_net() {
	want arm64-net || return 0
	husk_ready arm64-net || return 0
	# The test host's init leaves lo down; the forward listens on it.
	ip link set lo up 2>/dev/null || true
	port=18080
	VM_EXTRA="husk_net_ip=dhcp" vm_start net net --net "user,hostfwd=tcp:127.0.0.1:$port-:80"
	if ! vm_wait_for '^HUSK-NET-READY'; then
		kill -KILL "$VM_PID" 2>/dev/null || true
		vm_wait
		fail arm64-net "the network guest never got to serve (status $VM_RC)" "$VM_LOG"
		return 0
	fi
	page=$(wget -q -O - "http://127.0.0.1:$port/" 2>&1 || true)
	wget -q -O /dev/null "http://127.0.0.1:$port/cgi-bin/done" 2>/dev/null || true
	vm_wait
	ip=$(fact dhcp_ip) router=$(fact dhcp_router)
	if [ "$ip" != 10.0.2.15 ] || [ "$router" != 10.0.2.2 ]; then
		fail arm64-net "DHCP gave address '$ip', router '$router'; want 10.0.2.15, 10.0.2.2" "$VM_LOG"
	elif [ "$page" != "husk-guest-page $VM_TOKEN" ]; then
		fail arm64-net "GET through the forward (127.0.0.1:$port) gave '$page'" "$VM_LOG"
	elif [ "$VM_RC" != 0 ]; then
		fail arm64-net "husk exited with status $VM_RC, expected 0" "$VM_LOG"
	else
		result arm64-net PASS
	fi
}

# virtio-fs: a --share read and written by the guest.
test_fs() {
	want arm64-fs || return 0
	husk_ready arm64-fs || return 0
	dir=$LOGS/share
	rm -rf "$dir" && mkdir -p "$dir"
	echo "from the host $$" >"$dir/hostfile"
	vm_boot fs fs-rw --share "$dir:work"
	got=$(fact fs_host_file)
	back=$(cat "$dir/guestfile" 2>/dev/null || true)
	if [ "$(fact fs_mounted)" != yes ]; then
		fail arm64-fs "the guest could not mount the share (status $VM_RC)" "$VM_LOG"
	elif [ "$got" != "from the host $$" ]; then
		fail arm64-fs "the guest read '${got:-nothing}' from the share" "$VM_LOG"
	elif [ "$back" != "written by the guest $VM_TOKEN" ]; then
		fail arm64-fs "the share's guestfile holds '${back:-nothing}' ($(fact fs_write))" "$VM_LOG"
	elif [ "$VM_RC" != 0 ]; then
		fail arm64-fs "husk exited with status $VM_RC, expected 0" "$VM_LOG"
	else
		result arm64-fs PASS
	fi
}

# husk exec NAME COMMAND...: the test host's root as the guest's, the
# kernel and module tree passed explicitly (the test host has no
# /boot/vmlinuz); EXEC_RC its status or "timeout".
husk_exec() {
	name=$1
	shift
	VM_LOG=$LOGS/$name.log VM_T0=$(now)
	# shellcheck disable=SC2086 # HUSK may be a command with arguments
	HUSK_CACHE=$LOGS/cache $HUSK exec --kernel "$ASSETS/vmlinuz" --modules "$ASSETS/exec-modules" \
		--console="$VM_LOG" -- "$@" </dev/null >"$LOGS/$name.out" 2>"$VM_LOG.err" &
	VM_PID=$!
	vm_wait
	EXEC_RC=$VM_RC
}

# `husk exec -- true`: status 0 (twice: the first run builds and caches
# the exec initramfs, the second is what a user waits for).
test_exec() {
	want arm64-exec || return 0
	husk_ready arm64-exec || return 0
	husk_exec exec-true-1 true
	rc1=$EXEC_RC
	husk_exec exec-true-2 true
	if [ "$rc1" = 0 ] && [ "$EXEC_RC" = 0 ]; then
		result arm64-exec PASS
	else
		fail arm64-exec "husk exec -- true exited $rc1, then $EXEC_RC; expected 0" "$VM_LOG"
	fi
}

# The command's exit status is husk exec's.
test_exec_status() {
	want arm64-exec-status || return 0
	husk_ready arm64-exec-status || return 0
	husk_exec exec-42 sh -c 'echo husk-exec-out; exit 42'
	out=$(cat "$LOGS/exec-42.out" 2>/dev/null || true)
	if [ "$EXEC_RC" != 42 ]; then
		fail arm64-exec-status "husk exec -- sh -c 'exit 42' exited $EXEC_RC, expected 42" "$VM_LOG"
	elif [ "$out" != husk-exec-out ]; then
		fail arm64-exec-status "the command's stdout came back as '$out'" "$VM_LOG"
	else
		result arm64-exec-status PASS
	fi
}

main() {
	while [ $# -gt 0 ]; do
		case $1 in
		--list)
			for t in $TESTS; do echo "$t"; done
			return 0
			;;
		--skip-all)
			for t in $TESTS; do echo "RESULT $t SKIP ${2:?--skip-all needs a reason}"; done
			return 0
			;;
		--assets) ASSETS=${2:?} && shift ;;
		--husk) HUSK=${2:?} && shift ;;
		--no-husk) NO_HUSK=${2:?} && shift ;;
		--only) ONLY=${2:?} && shift ;;
		*)
			echo "arm64-tests: unknown argument '$1'" >&2
			return 2
			;;
		esac
		shift
	done
	[ -n "$ASSETS" ] || {
		echo "arm64-tests: --assets DIR is required" >&2
		return 2
	}
	[ -n "$HUSK" ] || [ -n "$NO_HUSK" ] || NO_HUSK="FAIL arm64-tests.sh was given neither --husk nor --no-husk"
	mkdir -p "$LOGS"
	test_arm64_kvm
	test_boot
	test_reboot
	want arm64-panic && test_panic
	test_blk
	test_net
	test_fs
	test_exec
	test_exec_status
}

main "$@"
