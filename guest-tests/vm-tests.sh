#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Whole-VM tests: boot Debian kernels with husk on a real /dev/kvm and check
# from inside the guest. Runs directly on a KVM host or inside the nested
# test host (lib/runner decides), so it needs only bash and busybox-level
# tools. One line per check:
#   RESULT <name> PASS
#   RESULT <name> FAIL <reason>      (followed by the tail of the VM's log)
#   RESULT <name> SKIP <reason>
#
#   vm-tests.sh --assets DIR [--logs DIR] [--only NAME[,NAME]...] [--short]
#   vm-tests.sh --list
#   vm-tests.sh --skip-all REASON
#
# HUSK says how to run husk (default: husk on PATH). DIR holds cloud/ and
# generic/, each with vmlinuz and initrd.cpio.gz (guest-init.sh as /init).
# HUSK_TEST_TIMEOUT bounds one boot (seconds, default 120: in the nested
# test host a boot takes 5-15 s);
# HUSK_TEST_BIG_MEM is the guest size for the split-RAM check (default
# 3584M: above the 3 GiB start of the 32-bit PCI hole, small enough for a
# 4 GiB test host); HUSK_TEST_CMDLINE adds to the guest command line.
# DIR/net (optional) holds the network tests' kernel and initramfs.
# HUSK_TEST_NESTED=1 (the runner sets it in the test host) allows the
# tests that change the host: a TAP device, a DNS server on 127.0.0.1:53
# and /etc/resolv.conf; HUSK_DNSMASQ says how to run dnsmasq there.
set -euo pipefail

TESTS=(
	check-host boot-cloud poweroff cpus-1 memory-512M acpi-clean
	timer-tsc-deadline cpus-4 memory-split reboot panic boot-generic sigterm sigint seccomp user-drop
	halt-poll
	on-reboot-restart pci-clean hwrng blk-serial blk-two-disks blk-ro
	blk-root blk-fsck net-dhcp net-http-out net-dns net-hostfwd-tcp
	net-hostfwd-udp net-restrict net-tap-ping net-tap-http net-tap-link
	net-tap-vhost net-tap-vhost-off
)

# virtio-fs and husk exec have their own files, beside this one.
VM_TESTS_DIR=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=guest-tests/fs-tests.sh
source "$VM_TESTS_DIR/fs-tests.sh"
# shellcheck source=guest-tests/exec-tests.sh
source "$VM_TESTS_DIR/exec-tests.sh"
TESTS+=("${FS_TESTS[@]}" "${EXEC_TESTS[@]}")
# shellcheck source=guest-tests/disk-tests.sh
source "$VM_TESTS_DIR/disk-tests.sh" && TESTS+=("${DISK_TESTS[@]}")
# shellcheck source=guest-tests/vsock-tests.sh
source "$VM_TESTS_DIR/vsock-tests.sh" && TESTS+=("${VSOCK_ALL_TESTS[@]}")
# shellcheck source=guest-tests/gpu-tests.sh
source "$VM_TESTS_DIR/gpu-tests.sh" && TESTS+=("${GPU_TESTS[@]}")
# shellcheck source=guest-tests/instance-tests.sh
source "$VM_TESTS_DIR/instance-tests.sh" && TESTS+=("${INSTANCE_TESTS[@]}")
# shellcheck source=guest-tests/oci-tests.sh
source "$VM_TESTS_DIR/oci-tests.sh" && TESTS+=("${OCI_TESTS[@]}")

# The console tolerance: the kernel reports RAM minus the holes below
# 1 MiB and whatever the VMM reserves, so allow a few MiB.
MEM_TOLERANCE_KB=4096

PASSED=0 FAILED=0 SKIPPED=0

# With --only, a step's other tests keep their earlier verdicts: nothing
# is said of them.
result() {
	local name=$1 verdict=$2
	shift 2
	want "$name" || return 0
	echo "RESULT $name $verdict${*:+ $*}"
	case $verdict in
	PASS) PASSED=$((PASSED + 1)) ;;
	FAIL) FAILED=$((FAILED + 1)) ;;
	SKIP) SKIPPED=$((SKIPPED + 1)) ;;
	esac
}

pass() { result "$1" PASS; }
skip() { result "$1" SKIP "$2"; }

# A failure carries the end of the console and husk's stderr, so that a
# CI log alone tells what went wrong.
fail() {
	local name=$1 reason=$2 log=${3:-}
	want "$name" || return 0
	result "$name" FAIL "$reason"
	# One boot can fail several checks; show its log once.
	if [[ -n $log && $log == "${LOG_SHOWN:-}" ]]; then
		echo "  --- (log of this boot above)"
	elif [[ -n $log && -e $log ]]; then
		LOG_SHOWN=$log
		echo "  --- last lines of $log:"
		tail -n 30 "$log" | sed 's/^/  | /'
		if [[ -s $log.err ]]; then
			echo "  --- husk stderr:"
			tail -n 10 "$log.err" | sed 's/^/  | /'
		fi
		if [[ -s $log.threads ]]; then
			echo "  --- husk's threads when it was stopped:"
			sed 's/^/  | /' "$log.threads"
		fi
	fi
}

info() {
	echo "vm-tests: $*"
}

now() {
	local up _
	read -r up _ </proc/uptime
	echo "$up"
}

# Seconds between two /proc/uptime readings, two decimals.
elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}

# ---- running husk ------------------------------------------------------

# vm_start NAME FLAVOUR ACTION [husk run option]...
# Start husk in the background; sets VM_PID, VM_LOG, VM_T0. The command line
# carries a token unique to this boot, to find stray processes afterwards,
# and VM_CMDLINE_EXTRA if set (parameters for guest-init.sh).
vm_start() {
	local name=$1 flavour=$2 action=$3
	shift 3
	VM_LOG=$LOGDIR/$name.log
	VM_TOKEN=$name.$$
	VM_WALL=""
	VM_T0=$(now)
	"${HUSK_CMD[@]}" run --kernel "$ASSETS/$flavour/vmlinuz" \
		--initrd "${VM_INITRD:-$ASSETS/$flavour/initrd.cpio.gz}" \
		--cmdline "console=ttyS0 quiet husk_action=$action husk_test=$VM_TOKEN${VM_CMDLINE_EXTRA:+ $VM_CMDLINE_EXTRA}${HUSK_TEST_CMDLINE:+ $HUSK_TEST_CMDLINE}" \
		"$@" </dev/null >"$VM_LOG" 2>"$VM_LOG.err" &
	VM_PID=$!
}

# Wait for the VM to end; VM_RC is its status, or "timeout" after the
# deadline (the VM is then killed, so nothing outlives the test).
#   vm_wait [SECONDS]      (default: the boot timeout)
vm_wait() {
	local deadline=$((SECONDS + ${1:-$TIMEOUT}))
	VM_RC=0
	while kill -0 "$VM_PID" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			vm_dump_threads "$VM_PID" >"$VM_LOG.threads" 2>&1 || true
			kill -KILL "$VM_PID" 2>/dev/null || true
			VM_RC=timeout
			break
		fi
		sleep 0.1
	done
	if [[ $VM_RC == timeout ]]; then
		wait "$VM_PID" 2>/dev/null || true
	else
		wait "$VM_PID" || VM_RC=$?
	fi
	VM_WALL=$(elapsed "$VM_T0" "$(now)")
}

# Where each thread of a VMM that did not end in time was: its name,
# state, system call and kernel stack; then, over two seconds, the clock
# ticks each thread spent in husk itself, in the kernel and in the guest,
# and KVM's counters, so that a hung vCPU can be told from a hung test host.
vm_dump_threads() {
	local t first second
	for t in /proc/"$1"/task/*; do
		echo "thread ${t##*/} $(cat "$t/comm") $(awk '$1 == "State:" { print $2 }' "$t/status")" \
			"wchan=$(cat "$t/wchan") syscall=$(cut -d' ' -f1-3 "$t/syscall")"
		sed 's/^/    /' "$t/stack"
	done
	grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
	first=$(vm_thread_ticks "$1" && vm_kvm_counters "$1")
	sleep 2
	second=$(vm_thread_ticks "$1" && vm_kvm_counters "$1")
	awk 'NR == FNR { was[$1] = $2; next }
		{ printf "%s=%s(+%d)%s", $1, $2, $2 - was[$1], (++n % 5 ? " " : "\n") }
		END { print "" }' <(echo "$first") <(echo "$second")
}

# "TID/user N", "TID/kernel N", "TID/guest N": clock ticks of each thread
# of PID (user leaves out guest time, which Linux counts in both).
vm_thread_ticks() {
	local t
	for t in /proc/"$1"/task/*; do
		# Fields after the ")" of the name: utime is the 12th, stime the 13th, guest_time the 41st.
		sed 's/.*) //' "$t/stat" | awk -v t="${t##*/}" '{ print t "/user " $12 - $41; print t "/kernel " $13; print t "/guest " $41 }'
	done
}

# "counter value" for each of KVM's non-zero counters of the VMM PID
# (summed over its vCPUs), sorted.
vm_kvm_counters() {
	local f
	for f in /sys/kernel/debug/kvm/"$1"-*/*; do
		[[ -f $f ]] && echo "${f##*/} $(cat "$f" 2>/dev/null)"
	done | grep -E ' [0-9]+$' | grep -v ' 0$' | sort
}

# Wait until the console shows PATTERN COUNT times; fails if the VM ends
# or the deadline passes first.
vm_wait_for() {
	local pattern=$1 count=${2:-1} seen
	local deadline=$((SECONDS + TIMEOUT))
	# The log may not exist yet: husk's redirection happens in its own process.
	while seen=$(grep -c -- "$pattern" "$VM_LOG" 2>/dev/null) || true; ((${seen:-0} < count)); do
		kill -0 "$VM_PID" 2>/dev/null || return 1
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# vm_boot NAME FLAVOUR ACTION [option]...: start, then wait for the end.
vm_boot() {
	vm_start "$@"
	vm_wait
	local up
	up=$(fact uptime)
	info "$1: status $VM_RC after ${VM_WALL:-?}s wall, guest up at ${up:-never}s guest time"
}

# The value of "HUSK-FACT key=value" in the current log.
fact() {
	sed -n "s/^HUSK-FACT $1=//p" "$VM_LOG" | tr -d '\r' | tail -n 1
}

guest_came_up() {
	grep -q '^HUSK-GUEST-UP' "$VM_LOG"
}

# Processes whose command line matches PATTERN, as "PID:NAME:STATE"
# words. Callers bracket a letter of PATTERN ("husk_tes[t]=") so that grep
# does not find its own arguments.
processes_matching() {
	local f pid found=""
	for f in /proc/[0-9]*/cmdline; do
		if tr '\0' ' ' <"$f" 2>/dev/null | grep -q -- "$1"; then
			pid=${f#/proc/} && pid=${pid%/cmdline}
			found+=" $pid$(awk '$1 == "Name:" || $1 == "State:" { printf ":%s", $2 }' \
				"/proc/$pid/status" 2>/dev/null)"
		fi
	done
	echo "${found# }"
}

# Any process still running with this boot's token on its command line?
stray_processes() {
	processes_matching "husk_tes[t]=$VM_TOKEN"
}

# ---- checks ------------------------------------------------------------

# expect_status NAME WANT: the VM ended with status WANT.
expect_status() {
	local name=$1 want=$2
	if [[ $VM_RC == "$want" ]]; then
		pass "$name"
	else
		fail "$name" "husk exited with status $VM_RC, expected $want" "$VM_LOG"
	fi
}

expect_fact() {
	local name=$1 key=$2 want=$3 got
	got=$(fact "$key")
	if [[ -z $got ]]; then
		fail "$name" "guest reported no $key (did it come up?)" "$VM_LOG"
	elif [[ $got != "$want" ]]; then
		fail "$name" "guest $key is $got, expected $want" "$VM_LOG"
	else
		pass "$name"
	fi
}

# expect_memory NAME SIZE: SIZE as husk takes it (512M, 2G, MiB number).
expect_memory() {
	local name=$1 size=$2 want_kb got_kb
	case $size in
	*G) want_kb=$((${size%G} * 1024 * 1024)) ;;
	*M) want_kb=$((${size%M} * 1024)) ;;
	*) want_kb=$((size * 1024)) ;;
	esac
	got_kb=$(fact mem_managed_kb)
	if [[ -z $got_kb ]]; then
		fail "$name" "guest reported no memory size (did it come up?)" "$VM_LOG"
		return 0
	fi
	local diff=$((want_kb - got_kb))
	if ((diff < 0 || diff > MEM_TOLERANCE_KB)); then
		fail "$name" "guest manages ${got_kb}K of RAM, asked for ${want_kb}K (tolerance ${MEM_TOLERANCE_KB}K below)" "$VM_LOG"
	else
		pass "$name"
	fi
}

# ---- the tests ---------------------------------------------------------

test_check_host() {
	local rc=0 err
	err=$("${HUSK_CMD[@]}" check-host 2>&1 >/dev/null) || rc=$?
	if ((rc == 0)); then
		pass check-host
	else
		fail check-host "husk check-host exited $rc on a KVM host: $err"
	fi
}

# One plain boot answers several questions; each gets its own result.
test_default_boot() {
	vm_boot boot-cloud cloud poweroff
	if guest_came_up; then
		pass boot-cloud
	else
		fail boot-cloud "no HUSK-GUEST-UP on the console (status $VM_RC)" "$VM_LOG"
	fi
	expect_status poweroff 0
	expect_fact cpus-1 cpus 1
	expect_memory memory-512M 512M
	expect_fact acpi-clean acpi_problems 0
	expect_fact timer-tsc-deadline clockevent lapic-deadline
}

test_big_boot() {
	local size=${HUSK_TEST_BIG_MEM:-3584M}
	vm_boot big-boot cloud poweroff --cpus 4 --memory "$size"
	expect_fact cpus-4 cpus 4
	# The RAM must be all there, and some of it above 4 GiB: the
	# VMM put the 32-bit PCI hole in the middle.
	if [[ $(fact e820_ram_above_4g) == 0 ]]; then
		fail memory-split "no usable e820 RAM above 4 GiB for --memory $size" "$VM_LOG"
	else
		expect_memory memory-split "$size"
	fi
}

test_reboot() {
	vm_boot reboot cloud reboot
	expect_status reboot 5
}

test_panic() {
	vm_boot panic cloud panic
	if [[ $(fact pvpanic) == 0 ]]; then
		fail panic "the guest's pvpanic-mmio driver found no device" "$VM_LOG"
		return 0
	fi
	expect_status panic 4
}

test_generic() {
	vm_boot boot-generic generic poweroff
	if ! guest_came_up; then
		fail boot-generic "no HUSK-GUEST-UP on the console (status $VM_RC)" "$VM_LOG"
	elif [[ $VM_RC != 0 ]]; then
		fail boot-generic "came up but husk exited $VM_RC, expected 0" "$VM_LOG"
	else
		pass boot-generic
	fi
}

# test_signal NAME SIGNAL WANT: a running guest, a signal to husk, and then
# husk's status and whether anything of the VM is left.
test_signal() {
	local name=$1 sig=$2 want=$3
	# Background jobs of a script ignore SIGINT unless job control is on.
	set -m
	vm_start "$name" cloud hang
	set +m
	if ! vm_wait_for '^HUSK-GUEST-UP'; then
		kill -KILL "$VM_PID" 2>/dev/null || true
		vm_wait
		fail "$name" "guest did not come up (status $VM_RC)" "$VM_LOG"
		return 0
	fi
	kill "-$sig" "$VM_PID"
	vm_wait "$STOP_TIMEOUT"
	local left
	left=$(stray_processes)
	if [[ $VM_RC != "$want" ]]; then
		fail "$name" "husk exited with status $VM_RC after SIG$sig, expected $want" "$VM_LOG"
	elif [[ -n $left ]]; then
		local p
		for p in $left; do kill -KILL "${p%%:*}" 2>/dev/null || true; done
		fail "$name" "processes left after SIG$sig: $left" "$VM_LOG"
	else
		pass "$name"
	fi
}

# The seccomp mode ("Seccomp:" 2 is a filter), effective capabilities and
# filter count of each of a running husk's threads, as "NAME:MODE",
# "NAME=CAPEFF" and "NAME#FILTERS" words (no # word where the kernel does
# not say), after the main thread's capabilities ("main=CAPEFF").
seccomp_modes() {
	local t
	# The main thread by itself: its name is the dynamic loader's where husk runs through it.
	awk '$1 == "CapEff:" { printf "main=%s ", $2 }' /proc/"$1"/status 2>/dev/null
	for t in /proc/"$1"/task/*/status; do
		awk '$1 == "Name:" { n = $2 } $1 == "Seccomp:" { m = $2 } $1 == "CapEff:" { c = $2 }
			$1 == "Seccomp_filters:" { f = $2 }
			END { printf "%s:%s %s=%s ", n, m, n, c; if (f != "") printf "%s#%s ", n, f }' "$t" 2>/dev/null
	done
}

# while_running PROBE NAME [option]...: boots a hanging guest, sets
# PROBED to what `PROBE HUSK_PID` prints once the guest is up (empty if it
# never was), and stops it.
while_running() {
	PROBED=""
	vm_start "$2" cloud hang "${@:3}"
	if vm_wait_for '^HUSK-GUEST-UP'; then
		PROBED=$("$1" "$VM_PID")
	fi
	kill -TERM "$VM_PID" 2>/dev/null || true
	vm_wait "$STOP_TIMEOUT"
}

# While the guest runs, every husk thread (vCPUs, the I/O loop, queue
# workers, the hot-plug thread, glib's worker, the main thread) is under
# the system-call filter, and, where the kernel counts them, under two
# filters at least: the process-wide list and its own allow list. With
# --no-seccomp none is. As
# root, a vCPU thread keeps no capability, a share's thread the file ones
# and CAP_SYS_ADMIN (trusted.* xattrs), the main thread the file ones.
test_seccomp() {
	local on off caps_ok=1
	while_running seccomp_modes seccomp --cpus 2 --share "$LOGDIR:logs"
	on=$PROBED
	while_running seccomp_modes seccomp-off --no-seccomp
	off=$PROBED
	if [[ $(id -u) == 0 && ($(grep -o 'husk-vcpu[0-9]*=[0-9a-f]*' <<<"$on" | sort -u) != \
		$'husk-vcpu0=0000000000000000\nhusk-vcpu1=0000000000000000' ||
		$(grep -o 'husk-virtio-fs=[0-9a-f]*' <<<"$on" | sort -u) != husk-virtio-fs=000000000020001f ||
		$on != *main=000000000000001f*) ]]; then
		caps_ok=""
	fi
	if [[ -z $on || -z $off ]]; then
		fail seccomp "a guest did not come up (status $VM_RC)" "$VM_LOG"
	elif [[ $on == *husk-vcpu1:2* && $on == *husk-virtio-fs:2* && $on != *:[01]\ * &&
		$on != *#[01]\ * && $off == *husk-vcpu0:0* && $off != *:[12]\ * && -n $caps_ok ]]; then
		pass seccomp
	else
		fail seccomp "threads, their seccomp modes and capabilities: '$on' (want 2 for all, and 2 filters or more; as root CapEff 0 for vCPUs, 20001f for virtio-fs, 1f for the main thread); with --no-seccomp '$off' (want 0)" "$VM_LOG"
	fi
}

# Each of a running husk's threads as "NAME:UIDS:GIDS:GROUPS:CAPPRM:CAPEFF:SECCOMP"
# words (the four uids and gids joined by commas).
thread_ids() {
	local t
	for t in /proc/"$1"/task/*/status; do
		awk '$1 == "Name:" { n = $2 } $1 == "Uid:" { u = $2","$3","$4","$5 }
			$1 == "Gid:" { g = $2","$3","$4","$5 } $1 == "Groups:" { gr = $2 }
			$1 == "CapPrm:" { p = $2 } $1 == "CapEff:" { e = $2 } $1 == "Seccomp:" { m = $2 }
			END { printf "%s:%s:%s:%s:%s:%s:%s ", n, u, g, gr, p, e, m }' "$t" 2>/dev/null
	done
}

# --user as root: once the VM is set up, every husk thread (main, I/O,
# vCPUs, a share's) is nobody's, in nobody's group alone, with no
# capability at all, and still under its filter; the guest runs as ever.
test_user_drop() {
	if [[ $(id -u) != 0 ]]; then
		skip user-drop "--user needs husk started as root"
		return 0
	fi
	while_running thread_ids user-drop --user 65534:65534 --cpus 2 --share "$LOGDIR:logs"
	local want=65534,65534,65534,65534:65534,65534,65534,65534:65534:0000000000000000:0000000000000000:2
	local words w bad=""
	read -ra words <<<"$PROBED"
	for w in "${words[@]}"; do
		[[ ${w#*:} == "$want" ]] || bad+="$w "
	done
	if [[ -z $PROBED ]]; then
		fail user-drop "a guest did not come up (status $VM_RC)" "$VM_LOG"
	elif [[ -n $bad || $PROBED != *husk-vcpu1:* || $PROBED != *husk-virtio-fs:* ||
		$PROBED != *husk-io:* ]]; then
		fail user-drop "threads not all nobody's without capabilities: '${bad:-$PROBED}' (want NAME:$want)" "$VM_LOG"
	else
		pass user-drop
	fi
}

# KVM's counts for a running husk's VM, after the idle guest has halted a
# while: "POLLS HALTS", the halts where the vCPU polled before sleeping, and
# the halts it slept through (debugfs sums them over the vCPUs).
halt_counts() {
	sleep 3
	local dir
	for dir in /sys/kernel/debug/kvm/"$1"-*; do
		echo "$(cat "$dir/halt_attempted_poll") $(cat "$dir/halt_wakeup")"
	done
}

# --halt-poll reaches KVM: at 0 a halted vCPU never polls; at 100 ms (KVM
# grows its window after each short halt, up to this) it does.
test_halt_poll() {
	if [[ ! -d /sys/kernel/debug/kvm ]] && ! mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null; then
		skip halt-poll "no debugfs here to read KVM's halt counts from"
		return 0
	fi
	local off on
	while_running halt_counts halt-poll-off --halt-poll=0
	off=$PROBED
	while_running halt_counts halt-poll-on --halt-poll=100000
	on=$PROBED
	if [[ -z $off || -z $on ]]; then
		fail halt-poll "a guest did not come up, or KVM's debugfs has no halt counts (status $VM_RC)" "$VM_LOG"
	elif [[ $off =~ ^0\ [1-9] && $on =~ ^[1-9][0-9]*\ [0-9] ]]; then
		info "halt-poll: polls and halts slept through: '$off' with --halt-poll=0, '$on' with 100000"
		pass halt-poll
	else
		fail halt-poll "polls and halts with --halt-poll=0: '$off' (want 0 polls); with 100000: '$on' (want some)" "$VM_LOG"
	fi
}

# --on-reboot=restart: the guest reboots every time, so a restarting VMM
# shows the guest come up again. Guest RAM does not survive the reset, so
# the count is kept here, on the console, not in the guest.
test_restart() {
	local name=on-reboot-restart
	vm_start "$name" cloud reboot --on-reboot restart
	if vm_wait_for '^HUSK-GUEST-UP' 2; then
		kill -TERM "$VM_PID"
		vm_wait "$STOP_TIMEOUT"
		if [[ $VM_RC == 143 ]]; then
			pass "$name"
		else
			fail "$name" "guest restarted, but SIGTERM then gave status $VM_RC, expected 143" "$VM_LOG"
		fi
	else
		kill -KILL "$VM_PID" 2>/dev/null || true
		vm_wait
		fail "$name" "guest came up $(grep -c '^HUSK-GUEST-UP' "$VM_LOG") time(s), expected 2 (status $VM_RC)" "$VM_LOG"
	fi
}

sha_of() {
	sha256sum "$1" | cut -d' ' -f1
}

# One boot exercises the PCI bus, virtio-rng and virtio-blk: a writable
# ext4 root image (a.img) that the guest switches to and writes, and a
# read-only data image (b.img) it must not be able to change.
test_disks() {
	local a=$ASSETS/disks/a.img b=$ASSETS/disks/b.img
	local debugfs=${HUSK_DEBUGFS:-debugfs} e2fsck=${HUSK_E2FSCK:-e2fsck}
	local b_before
	b_before=$(sha_of "$b")
	vm_boot disks cloud blk-root --cpus 2 --disk "$a,serial=HUSKDISK1" --disk "$b,ro"
	if ! guest_came_up; then
		local t
		for t in pci-clean hwrng blk-serial blk-two-disks blk-ro blk-root blk-fsck; do
			fail "$t" "no HUSK-GUEST-UP on the console (status $VM_RC)" "$VM_LOG"
		done
		return 0
	fi
	# host bridge, virtio-rng and two virtio-blk functions, their BARs above 4 GiB
	if [[ $(fact pci_devices) == 4 && $(fact pci_problems) == 0 && $(fact pci_bars_high) == 3 ]]; then
		pass pci-clean
	else
		fail pci-clean "guest saw $(fact pci_devices) PCI devices (want 4), $(fact pci_problems) PCI/virtio complaints, $(fact pci_bars_high) virtio BARs above 4 GiB (want 3)" "$VM_LOG"
	fi
	if [[ $(fact hwrng_bytes) == 256 && $(fact hwrng_zero_bytes) -gt 200 && $(fact rng_current) == virtio_rng.* ]]; then
		pass hwrng
	else
		fail hwrng "hwrng gave $(fact hwrng_bytes) bytes, $(fact hwrng_zero_bytes) non-zero, source '$(fact rng_current)'" "$VM_LOG"
	fi
	expect_fact blk-serial serial_vda HUSKDISK1
	# 64 MiB and 32 MiB in 512-byte sectors, each with its own marker and
	# a request queue per vCPU
	if [[ $(fact size_vda) == 131072 && $(fact size_vdb) == 65536 &&
		$(fact marker_vda) == disk-a && $(fact marker_vdb) == disk-b &&
		$(fact queues_vda) == 2 && $(fact queues_vdb) == 2 ]]; then
		pass blk-two-disks
	else
		fail blk-two-disks "sizes $(fact size_vda)/$(fact size_vdb), markers '$(fact marker_vda)'/'$(fact marker_vdb)', queues $(fact queues_vda)/$(fact queues_vdb) (want 2 each)" "$VM_LOG"
	fi
	local b_after
	b_after=$(sha_of "$b")
	if [[ $(fact ro_vdb) == 1 && $(fact vdb_raw_write) == refused &&
		$(fact vdb_fs_write) == refused && $b_before == "$b_after" ]]; then
		pass blk-ro
	else
		fail blk-ro "ro=$(fact ro_vdb) raw write $(fact vdb_raw_write), fs write $(fact vdb_fs_write), image $([[ $b_before == "$b_after" ]] && echo unchanged || echo CHANGED)" "$VM_LOG"
	fi
	# The file the guest wrote on its root and flushed is in the image.
	local want got
	want=$(fact root_written_sha)
	got=$("$debugfs" -R "cat /written" "$a" 2>/dev/null | sha256sum | cut -d' ' -f1)
	if [[ $VM_RC != 0 ]]; then
		fail blk-root "husk exited $VM_RC, expected 0 after the guest's poweroff" "$VM_LOG"
	elif [[ -z $want || $want != "$got" ]]; then
		fail blk-root "guest wrote sha256 '${want:-nothing}', the image holds '$got'" "$VM_LOG"
	else
		pass blk-root
	fi
	local fsck_out rc=0
	fsck_out=$("$e2fsck" -fn "$a" 2>&1) || rc=$?
	if ((rc == 0)); then
		pass blk-fsck
	else
		fail blk-fsck "e2fsck -fn on the root image exited $rc: $(echo "$fsck_out" | tail -n 3 | tr '\n' ' ')"
	fi
}

# ---- networking --------------------------------------------------------
#
# Three boots of the network guest (guest-init.sh's husk_action=net): user
# networking with forwarded ports, user networking with restrict=on, and
# a TAP device. The host side (web servers, a DNS server, the TAP device,
# fetches through forwarded ports) runs here, in the test host.

NET_TAP_TESTS=(net-tap-ping net-tap-http net-tap-link net-tap-vhost net-tap-vhost-off)
# Forwarded ports visited as users do, with the guest's address set by
# DHCP and by hand: net-fwd-KIND-dhcp and net-fwd-KIND-static.
NET_FWD_AFTER=(first clients 200-visits 20-at-once udp)
NET_FWD_TESTS=()
for kind in "${NET_FWD_AFTER[@]}" early early-udp; do
	NET_FWD_TESTS+=("net-fwd-$kind-dhcp" "net-fwd-$kind-static")
done
TESTS+=("${NET_FWD_TESTS[@]}")
NET_TESTS=(net-dhcp net-http-out net-dns net-hostfwd-tcp net-hostfwd-udp
	net-restrict "${NET_FWD_TESTS[@]}" "${NET_TAP_TESTS[@]}")
NET_HTTP_PORT=18081 # this host's web server (127.0.0.1, and the TAP address)
NET_FWD_TCP=18080   # forwarded to the guest's port 80 (81, fwd-httpd's, in the net-fwd tests)
NET_FWD_UDP=18082   # forwarded to the guest's NET_GUEST_UDP
NET_FWD_DONE=18083  # the net-fwd tests: forwarded to the guest's port 80, for /cgi-bin/done
NET_GUEST_FWD_HTTPD=81
NET_GUEST_UDP=5555
NET_TAP=husktap0
NET_TAP_HOST=192.168.100.1
NET_TAP_GUEST=192.168.100.2
NET_DNS_NAME=husk-test.example
NET_DNS_ADDR=192.0.2.7
NET_PIDS=()

net_cleanup() {
	local p
	for p in "${NET_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	NET_PIDS=()
	if [[ -n ${NET_TAP_MADE:-} ]]; then
		ip link del "$NET_TAP" 2>/dev/null || tunctl -d "$NET_TAP" >/dev/null 2>&1 || true
		NET_TAP_MADE=""
	fi
}

# http_get URL OUT: busybox's wget in the test host (numeric addresses
# only: no NSS lookups, see TESTING.md), any wget elsewhere.
http_get() {
	echo "== $1" >>"$LOGDIR/net-wget.err"
	timeout 60 wget -q -O "$2" "$1" 2>>"$LOGDIR/net-wget.err"
}

# A web server on ADDR:NET_HTTP_PORT serving NET_WWW.
net_httpd() {
	busybox httpd -f -p "$1:$NET_HTTP_PORT" -h "$NET_WWW" &
	NET_PIDS+=($!)
}

# Wait until something answers on ADDR:PORT (a server just started).
net_wait_port() {
	local i
	for ((i = 0; i < 50; i++)); do
		if http_get "http://$1:$2/page.txt" /dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# The pages guests fetch from this host, and the servers that serve them.
net_host_setup() {
	NET_WWW=$LOGDIR/net-www
	mkdir -p "$NET_WWW"
	NET_PAGE="husk-host-page $$"
	echo "$NET_PAGE" >"$NET_WWW/page.txt"
	dd if=/dev/urandom of="$NET_WWW/big.bin" bs=64k count=16 2>/dev/null
	NET_BIG_SHA=$(sha_of "$NET_WWW/big.bin")
	# The test host starts with its loopback down.
	[[ -z ${HUSK_TEST_NESTED:-} ]] || ip link set lo up
	trap net_cleanup EXIT
	net_httpd 127.0.0.1
	net_wait_port 127.0.0.1 "$NET_HTTP_PORT" || info "the web server on 127.0.0.1:$NET_HTTP_PORT did not answer"
	net_dns_setup
}

# dnsmasq on 127.0.0.1:53 answering NET_DNS_NAME, and the test host's
# resolver pointed at it: user networking's DNS server (10.0.2.3) asks
# the resolver in /etc/resolv.conf. NET_DNS is empty, or why not.
net_dns_setup() {
	NET_DNS=""
	if [[ -z ${HUSK_TEST_NESTED:-} ]]; then
		NET_DNS="runs only in the nested test host: it replaces /etc/resolv.conf"
		return 0
	fi
	if [[ -z ${HUSK_DNSMASQ:-} ]]; then
		NET_DNS="no dnsmasq to serve the name (install dnsmasq-base)"
		return 0
	fi
	# dnsmasq looks its user up even as root; the test host has no passwd.
	[[ -e /etc/passwd ]] || echo "root:x:0:0:root:/:/bin/sh" >/etc/passwd
	[[ -e /etc/group ]] || echo "root:x:0:" >/etc/group
	echo "nameserver 127.0.0.1" >/etc/resolv.conf
	$HUSK_DNSMASQ --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null \
		--listen-address=127.0.0.1 --bind-interfaces --port=53 --user=root --group=root \
		--pid-file= --log-facility=- --address="/$NET_DNS_NAME/$NET_DNS_ADDR" \
		>"$LOGDIR/dnsmasq.log" 2>&1 &
	NET_PIDS+=($!)
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q 'started, version' "$LOGDIR/dnsmasq.log" && return 0
		kill -0 "${NET_PIDS[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	NET_DNS_BROKEN="dnsmasq did not start in the test host: $(tail -n 3 "$LOGDIR/dnsmasq.log" | tr '\n' ' ')"
}

# net_boot NAME GUEST_PARAMS [husk run option]...: start the network guest
# and wait until it serves; false (VM stopped) if it never does.
net_boot() {
	local name=$1 params=$2
	shift 2
	VM_CMDLINE_EXTRA=$params vm_start "$name" net net "$@"
	if vm_wait_for '^HUSK-NET-READY'; then
		return 0
	fi
	kill -KILL "$VM_PID" 2>/dev/null || true
	vm_wait
	return 1
}

# The guest powers off once /cgi-bin/done was fetched from BASE.
net_end() {
	http_get "$1/cgi-bin/done" /dev/null || true
	vm_wait
	info "$VM_NAME: status $VM_RC after ${VM_WALL:-?}s wall"
}

# net_fetch_guest BASE PREFIX: the guest's index.html and big.bin into
# LOGDIR/PREFIX.page and .big; prints what is wrong, nothing when all is well.
net_fetch_guest() {
	local base=$1 out=$LOGDIR/$2 page sha want
	http_get "$base/" "$out.page" || { echo "GET $base/ failed"; return 0; }
	page=$(cat "$out.page")
	[[ $page == "husk-guest-page $VM_TOKEN" ]] || { echo "GET $base/ gave '$page'"; return 0; }
	http_get "$base/big.bin" "$out.big" || { echo "GET $base/big.bin failed"; return 0; }
	sha=$(sha_of "$out.big")
	want=$(fact guest_big_sha)
	[[ $sha == "$want" ]] || echo "GET $base/big.bin: sha256 $sha, the guest has ${want:-nothing}"
}

# What a guest fetched from this host; prints what is wrong.
net_check_fetched() {
	local page big
	page=$(fact http_out)
	big=$(fact http_out_big_sha)
	if [[ $page != "$NET_PAGE" ]]; then
		echo "the guest's GET $1/page.txt gave '${page:-nothing}'"
	elif [[ $big != "$NET_BIG_SHA" ]]; then
		echo "the guest's GET $1/big.bin has sha256 '${big:-nothing}', want $NET_BIG_SHA"
	fi
}

# User networking: DHCP, the host's 127.0.0.1 as 10.0.2.2, DNS through
# 10.0.2.3, a forwarded TCP and UDP port into the guest.
test_net_user() {
	local t params
	VM_NAME=net-user
	params="husk_net_ip=dhcp husk_net_fetch=10.0.2.2:$NET_HTTP_PORT husk_net_udp=$NET_GUEST_UDP"
	[[ -n $NET_DNS ]] || params+=" husk_net_dns=$NET_DNS_NAME"
	if ! net_boot net-user "$params" --net "user,hostfwd=tcp:127.0.0.1:$NET_FWD_TCP-:80,hostfwd=udp:127.0.0.1:$NET_FWD_UDP-:$NET_GUEST_UDP"; then
		for t in net-dhcp net-http-out net-dns net-hostfwd-tcp net-hostfwd-udp; do
			fail "$t" "the network guest never got to serve (status $VM_RC)" "$VM_LOG"
		done
		return 0
	fi
	local fwd_problem i
	fwd_problem=$(net_fetch_guest "http://127.0.0.1:$NET_FWD_TCP" net-user-fwd)
	# A few datagrams: the guest's listener keeps the first.
	for i in 1 2 3; do
		printf 'husk-udp %s\n' "$VM_TOKEN" >"/dev/udp/127.0.0.1/$NET_FWD_UDP" || true
		sleep 0.3
	done
	net_end "http://127.0.0.1:$NET_FWD_TCP"

	local ip router dns
	ip=$(fact dhcp_ip) router=$(fact dhcp_router) dns=$(fact dhcp_dns)
	if [[ $ip == 10.0.2.15 && $(fact eth0_ip) == 10.0.2.15/24 && $router == 10.0.2.2 && $dns == 10.0.2.3 ]]; then
		pass net-dhcp
	else
		fail net-dhcp "DHCP gave address '$ip' (eth0 '$(fact eth0_ip)'), router '$router', DNS '$dns'; want 10.0.2.15, 10.0.2.2, 10.0.2.3" "$VM_LOG"
	fi
	local problem
	problem=$(net_check_fetched "http://10.0.2.2:$NET_HTTP_PORT")
	if [[ -z $problem ]]; then
		pass net-http-out
	else
		fail net-http-out "$problem" "$VM_LOG"
	fi
	if [[ -n $NET_DNS ]]; then
		skip net-dns "$NET_DNS"
	elif [[ -n ${NET_DNS_BROKEN:-} ]]; then
		fail net-dns "$NET_DNS_BROKEN"
	else
		expect_fact net-dns dns_answer "$NET_DNS_ADDR"
	fi
	if [[ -n $fwd_problem ]]; then
		fail net-hostfwd-tcp "through hostfwd=tcp:127.0.0.1:$NET_FWD_TCP-:80: $fwd_problem" "$VM_LOG"
	elif [[ $VM_RC != 0 ]]; then
		fail net-hostfwd-tcp "the guest served, but after /cgi-bin/done husk exited $VM_RC, expected 0" "$VM_LOG"
	else
		pass net-hostfwd-tcp
	fi
	local got
	got=$(fact udp_in)
	if [[ $(fact udp_listener) == none ]]; then
		skip net-hostfwd-udp "the guest image has no UDP listener (install netcat-openbsd)"
	elif [[ $got == "husk-udp $VM_TOKEN" ]]; then
		pass net-hostfwd-udp
	else
		fail net-hostfwd-udp "the guest's UDP port $NET_GUEST_UDP got '${got}' through hostfwd=udp:127.0.0.1:$NET_FWD_UDP" "$VM_LOG"
	fi
}

# ---- forwarded ports, visited as users visit them -----------------------

# fwd_visit KIND PORT: one visit to the guest's page through 127.0.0.1:PORT;
# prints what came back. Each kind of client ends its side differently:
#   nc       sends the request and half-closes at once (shutdown(SHUT_WR))
#   nc-late  half-closes 3 s later, long after the answer came
#   wget     never half-closes; it reads until the server closes
# A visit gives up after FWD_TIMEOUT seconds (default 10).
fwd_visit() {
	local req='GET / HTTP/1.0\r\n\r\n' limit=${FWD_TIMEOUT:-10}
	case $1 in
	nc) printf "$req" | timeout "$limit" busybox nc 127.0.0.1 "$2" 2>&1 ;;
	nc-late) (printf "$req"; sleep 3) | timeout "$limit" busybox nc 127.0.0.1 "$2" 2>&1 ;;
	wget) timeout "$limit" busybox wget -q -O - "http://127.0.0.1:$2/" 2>&1 ;;
	esac
}

# fwd_answered KIND PORT: true if the visit got the guest's page.
fwd_answered() {
	[[ $(fwd_visit "$1" "$2") == *"husk-guest-page $VM_TOKEN"* ]]
}

# fwd_visits_until_ready PORT UDP_PORT: visit (and send datagrams) from the
# moment husk starts until the guest serves. Whatever these get (refused,
# reset, nothing), the port must keep working for the visits after them.
fwd_visits_until_ready() {
	local n=0 deadline=$((SECONDS + TIMEOUT))
	while ! grep -q '^HUSK-NET-READY' "$VM_LOG" 2>/dev/null; do
		kill -0 "$VM_PID" 2>/dev/null || break
		((SECONDS < deadline)) || break
		fwd_visit nc "$1" >/dev/null || true
		printf 'husk-early %s\n' "$n" >"/dev/udp/127.0.0.1/$2" 2>/dev/null || true
		n=$((n + 1))
		sleep 0.2
	done
	FWD_EARLY=$n
}

# fwd_many PORT COUNT: COUNT visits one after another, nc and wget in turn;
# prints the first failure.
fwd_many() {
	local i kind
	for ((i = 0; i < $2; i++)); do
		kind=nc
		((i % 2)) && kind=wget
		if ! fwd_answered "$kind" "$1"; then
			echo "visit $((i + 1)) of $2 ($kind) got no page"
			return 0
		fi
	done
}

# fwd_at_once PORT COUNT: COUNT visits at the same time; prints how many
# failed. A SYN the guest drops comes again from slirp 6 s later, 18 s
# later...: each visit has 30 s.
fwd_at_once() {
	local i pids=() dir=$LOGDIR/fwd-at-once bad=0 got=""
	mkdir -p "$dir"
	for ((i = 0; i < $2; i++)); do
		(
			t0=$(now)
			FWD_TIMEOUT=30 fwd_visit nc "$1"
			echo "[exit $? after $(elapsed "$t0" "$(now)")s]"
		) >"$dir/$i" &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	for ((i = 0; i < $2; i++)); do
		grep -q "husk-guest-page $VM_TOKEN" "$dir/$i" && continue
		bad=$((bad + 1))
		got+=" '$(tr -d '\r' <"$dir/$i" | tr '\n' ' ' | cut -c1-100)'"
	done
	((bad == 0)) || echo "$bad of $2 visits at once got no page; they got:$got"
}

# fwd_boot NAME GUEST_IP: the network guest with its address from DHCP or
# set by hand, a TCP and a UDP port forwarded to it.
fwd_boot() {
	VM_NAME=$1
	local fwd="hostfwd=tcp:127.0.0.1:$NET_FWD_TCP-:$NET_GUEST_FWD_HTTPD"
	fwd+=",hostfwd=tcp:127.0.0.1:$NET_FWD_DONE-:80,hostfwd=udp:127.0.0.1:$NET_FWD_UDP-:$NET_GUEST_UDP"
	VM_CMDLINE_EXTRA="husk_net_ip=$2 husk_net_udp=$NET_GUEST_UDP husk_net_fwd_httpd=$NET_GUEST_FWD_HTTPD" \
		vm_start "$1" net net --net "user,$fwd"
}

# fwd_ready KIND...: wait until the guest serves; if it never does, fail
# net-fwd-KIND-MODE for each KIND and return false.
fwd_ready() {
	local k
	vm_wait_for '^HUSK-NET-READY' && return 0
	kill -KILL "$VM_PID" 2>/dev/null || true
	vm_wait
	for k in "$@"; do
		fail "net-fwd-$k" "the network guest never got to serve (status $VM_RC)" "$VM_LOG"
	done
	return 1
}

# fwd_datagrams PREFIX COUNT: COUNT datagrams, each from a socket (and a
# source port) of its own.
fwd_datagrams() {
	local i
	for ((i = 0; i < $2; i++)); do
		printf '%s %s %s\n' "$1" "$VM_TOKEN" "$i" >"/dev/udp/127.0.0.1/$NET_FWD_UDP" || true
		sleep 0.05
	done
}

# fwd_udp_verdict KIND-MODE: did all of fwd_datagrams husk-udp 20 arrive?
fwd_udp_verdict() {
	local got
	got=$(fact udp_lines_husk_udp)
	if [[ $(fact udp_listener) == none ]]; then
		skip "net-fwd-$1" "the guest image has no UDP listener (install netcat-openbsd)"
	elif [[ $got != 20 ]]; then
		fail "net-fwd-$1" "of 20 datagrams from 20 sockets, the guest got ${got:-none}" "$VM_LOG"
	else
		pass "net-fwd-$1"
	fi
}

# test_net_fwd_after MODE GUEST_IP: nothing visits until the guest serves
# and has been idle a while, so the first visit is the first traffic of
# all (with an address set by hand, husk has not even learnt the guest's
# MAC address); then every kind of client, many visits one after another
# and at once, and datagrams.
test_net_fwd_after() {
	local mode=$1 k
	fwd_boot "net-fwd-$mode" "$2"
	fwd_ready "${NET_FWD_AFTER[@]/%/-$mode}" || return 0
	sleep 2
	local first="" clients="" many="" once=""
	fwd_answered nc-late "$NET_FWD_TCP" || first="the first visit (nc, half-closing after 3 s) got no page"
	for k in nc nc-late wget nc wget; do
		fwd_answered "$k" "$NET_FWD_TCP" || { clients="a visit by $k got no page"; break; }
	done
	many=$(fwd_many "$NET_FWD_TCP" 200)
	once=$(fwd_at_once "$NET_FWD_TCP" 20)
	fwd_datagrams husk-udp 20
	sleep 0.5
	net_end "http://127.0.0.1:$NET_FWD_DONE"
	[[ -z $once ]] || once+=" (the guest's kernel counts $(fact listen_overflows) listen queue overflows)"
	fwd_verdict "first-$mode" "$first"
	fwd_verdict "clients-$mode" "$clients"
	fwd_verdict "200-visits-$mode" "$many"
	fwd_verdict "20-at-once-$mode" "$once"
	fwd_udp_verdict "udp-$mode"
}

# test_net_fwd_early MODE GUEST_IP: visits and datagrams from the moment
# husk starts, while the guest boots. Whatever they get (refused, reset,
# nothing), every kind of visit works once the guest serves.
test_net_fwd_early() {
	local mode=$1 k problem=""
	fwd_boot "net-fwd-early-$mode" "$2"
	fwd_visits_until_ready "$NET_FWD_TCP" "$NET_FWD_UDP"
	fwd_ready "early-$mode" "early-udp-$mode" || return 0
	for k in nc nc-late wget; do
		fwd_answered "$k" "$NET_FWD_TCP" ||
			{ problem="after $FWD_EARLY visits while the guest booted, a visit by $k got no page"; break; }
	done
	fwd_datagrams husk-udp 20
	sleep 0.5
	net_end "http://127.0.0.1:$NET_FWD_DONE"
	fwd_verdict "early-$mode" "$problem"
	fwd_udp_verdict "early-udp-$mode"
}

# fwd_verdict KIND-MODE PROBLEM: the test's verdict (PROBLEM empty: passed).
fwd_verdict() {
	if [[ -n $2 ]]; then
		fail "net-fwd-$1" "$2" "$VM_LOG"
	elif [[ $VM_RC != 0 ]]; then
		fail "net-fwd-$1" "the guest served, but after /cgi-bin/done husk exited $VM_RC, expected 0" "$VM_LOG"
	else
		pass "net-fwd-$1"
	fi
}

# restrict=on: nothing gets out of the guest, forwarded ports still get in.
test_net_restrict() {
	VM_NAME=net-restrict
	if ! net_boot net-restrict "husk_net_ip=dhcp husk_net_fetch=10.0.2.2:$NET_HTTP_PORT" \
		--net "user,restrict=on,hostfwd=tcp:127.0.0.1:$NET_FWD_TCP-:80"; then
		fail net-restrict "the network guest never got to serve (status $VM_RC)" "$VM_LOG"
		return 0
	fi
	local fwd_problem
	fwd_problem=$(net_fetch_guest "http://127.0.0.1:$NET_FWD_TCP" net-restrict-fwd)
	net_end "http://127.0.0.1:$NET_FWD_TCP"
	# (DHCP offers no router nor DNS server to a restricted guest.)
	if [[ $(fact dhcp_ip) != 10.0.2.15 ]]; then
		fail net-restrict "DHCP gave the guest '$(fact dhcp_ip)', not 10.0.2.15" "$VM_LOG"
	elif [[ $(fact http_out) != failed ]]; then
		fail net-restrict "the guest reached http://10.0.2.2:$NET_HTTP_PORT despite restrict=on (got '$(fact http_out)')" "$VM_LOG"
	elif [[ -n $fwd_problem ]]; then
		fail net-restrict "forwarded port with restrict=on: $fwd_problem" "$VM_LOG"
	else
		pass net-restrict
	fi
}

# A TAP device in the test host with NET_TAP_HOST/24; the guest takes
# NET_TAP_GUEST. Pings and HTTP both ways, carried by the kernel's
# vhost-net (husk's default where /dev/vhost-net opens), then again with
# vhost=off, where husk carries every frame itself.
test_net_tap() {
	local t
	VM_NAME=net-tap
	if [[ -z ${HUSK_TEST_NESTED:-} ]]; then
		for t in "${NET_TAP_TESTS[@]}"; do
			skip "$t" "runs only in the nested test host: it creates a TAP device"
		done
		return 0
	fi
	local err
	if ! err=$({ ip tuntap add dev "$NET_TAP" mode tap 2>/dev/null || tunctl -t "$NET_TAP"; } 2>&1 >/dev/null) ||
		! err=$({ ip addr add "$NET_TAP_HOST/24" dev "$NET_TAP" && ip link set "$NET_TAP" up; } 2>&1); then
		for t in "${NET_TAP_TESTS[@]}"; do
			fail "$t" "cannot set up the TAP device $NET_TAP in the test host: $err"
		done
		return 0
	fi
	NET_TAP_MADE=1
	net_httpd "$NET_TAP_HOST"
	NET_TAP_EXTRA=husk_net_rebind=1 net_tap_boot net-tap "tap=$NET_TAP" net-tap-ping net-tap-http net-tap-link net-tap-vhost
	VM_NAME=net-tap-vhost-off
	net_tap_boot net-tap-vhost-off "tap=$NET_TAP,vhost=off" net-tap-vhost-off
	net_cleanup_tap
}

# The kernel's vhost worker for husk process PID: "vhost-PID", a kernel
# thread (before Linux 6.4) or a thread of PID's own. Prints its CPU ticks.
vhost_worker_ticks() {
	local comm
	for comm in /proc/[0-9]*/comm "/proc/$1"/task/*/comm; do
		if [[ $(cat "$comm" 2>/dev/null) == "vhost-$1" ]]; then
			awk '{ print $14 + $15 }' "${comm%/comm}/stat"
			return 0
		fi
	done
	return 1
}

# net_tap_boot NAME --net-VALUE TEST...: one boot on the TAP device. With
# one test, it stands for ping and HTTP both ways and the absence of a vhost
# worker; with four, they are ping, HTTP, link and vhost-net in use (after
# the guest reset and restarted the device: NET_TAP_EXTRA=husk_net_rebind=1).
net_tap_boot() {
	local name=$1 net=$2 t
	shift 2
	if ! net_boot "$name" "husk_net_ip=$NET_TAP_GUEST/24 husk_net_ping=$NET_TAP_HOST husk_net_fetch=$NET_TAP_HOST:$NET_HTTP_PORT husk_net_link=1${NET_TAP_EXTRA:+ $NET_TAP_EXTRA}" \
		--net "$net"; then
		for t in "$@"; do
			fail "$t" "the network guest never got to serve (status $VM_RC)" "$VM_LOG"
		done
		return 0
	fi
	local ping_in=ok fwd_problem vhost=""
	ping -c 3 -W 3 "$NET_TAP_GUEST" >"$LOGDIR/$name-ping.log" 2>&1 || ping_in=failed
	fwd_problem=$(net_fetch_guest "http://$NET_TAP_GUEST" "$name")
	local ticks
	if ticks=$(vhost_worker_ticks "$VM_PID"); then
		vhost="a vhost-$VM_PID worker with $ticks CPU ticks"
		((ticks > 0)) || vhost="an idle vhost-$VM_PID worker"
	fi
	# The guest's link follows the host's interface, down and up again.
	local link=""
	if (($# > 1)); then
		ip link set "$NET_TAP" down && TIMEOUT=60 vm_wait_for '^HUSK-LINK 0' || link="no carrier loss in the guest after 60 s"
		ip link set "$NET_TAP" up
		[[ -n $link ]] || TIMEOUT=60 vm_wait_for '^HUSK-LINK 1' 2 || link="the guest's carrier did not come back in 60 s"
	fi
	net_end "http://$NET_TAP_GUEST"
	local ping_problem="" problem
	[[ $(fact ping_out) == ok && $ping_in == ok ]] ||
		ping_problem="ping guest → $NET_TAP_HOST: $(fact ping_out), host → $NET_TAP_GUEST: $ping_in ($(tail -n 1 "$LOGDIR/$name-ping.log"))"
	problem=$(net_check_fetched "http://$NET_TAP_HOST:$NET_HTTP_PORT")
	[[ -z $fwd_problem ]] || problem="${problem:+$problem; }host → guest: $fwd_problem"
	if (($# == 1)); then
		if [[ -n $ping_problem$problem ]]; then
			fail "$1" "${ping_problem:+$ping_problem; }$problem" "$VM_LOG"
		elif [[ -n $vhost ]]; then
			fail "$1" "vhost=off, yet there is $vhost" "$VM_LOG"
		else
			pass "$1"
		fi
		return 0
	fi
	if [[ -z $link ]]; then pass "$3"; else fail "$3" "$link ($(grep -c '^HUSK-LINK' "$VM_LOG") HUSK-LINK lines)" "$VM_LOG"; fi
	if [[ -z $ping_problem ]]; then pass "$1"; else fail "$1" "$ping_problem" "$VM_LOG"; fi
	if [[ -z $problem ]]; then pass "$2"; else fail "$2" "$problem" "$VM_LOG"; fi
	if [[ $(fact rebind) != ok ]]; then
		fail "$4" "the guest's unbind and bind of its driver (a reset and a new start): $(fact rebind)" "$VM_LOG"
	elif grep -q "husk carries the frames instead" "$VM_LOG.err"; then
		fail "$4" "vhost-net did not take the device: $(grep -m1 "husk carries" "$VM_LOG.err")" "$VM_LOG"
	elif [[ $vhost == "a vhost-$VM_PID worker with"* ]]; then
		pass "$4"
	elif [[ ! -c /dev/vhost-net ]]; then
		fail "$4" "the test host has no /dev/vhost-net (vhost_net did not load)"
	else
		fail "$4" "the frames did not go through vhost-net: ${vhost:-no vhost-$VM_PID worker} ($(head -c 300 "$VM_LOG.err"))" "$VM_LOG"
	fi
}

# The TAP device goes, and the web server bound to its address with it.
net_cleanup_tap() {
	kill "${NET_PIDS[-1]}" 2>/dev/null || true
	unset 'NET_PIDS[-1]'
	ip link del "$NET_TAP" 2>/dev/null || tunctl -d "$NET_TAP" >/dev/null 2>&1 || true
	NET_TAP_MADE=""
}

test_net() {
	local t
	if [[ ! -r $ASSETS/net/vmlinuz || ! -r $ASSETS/net/initrd.cpio.gz ]]; then
		for t in "${NET_TESTS[@]}"; do skip "$t" "no network guest in $ASSETS/net"; done
		return 0
	fi
	net_host_setup
	want net-dhcp net-http-out net-dns net-hostfwd-tcp net-hostfwd-udp && test_net_user
	want net-restrict && test_net_restrict
	want $(printf 'net-fwd-%s-dhcp ' "${NET_FWD_AFTER[@]}") && test_net_fwd_after dhcp dhcp
	want $(printf 'net-fwd-%s-static ' "${NET_FWD_AFTER[@]}") &&
		test_net_fwd_after static 10.0.2.15/24
	want net-fwd-early-dhcp net-fwd-early-udp-dhcp && test_net_fwd_early dhcp dhcp
	want net-fwd-early-static net-fwd-early-udp-static && test_net_fwd_early static 10.0.2.15/24
	want "${NET_TAP_TESTS[@]}" && test_net_tap
	net_cleanup
}

# want NAME...: is any of these tests asked for (--only, and not left out
# by --short), or all of them?
want() {
	local t
	for t in "$@"; do
		[[ ,$LEFT_OUT, == *",$t,"* ]] && continue
		[[ -z $ONLY || ,$ONLY, == *",$t,"* ]] && return 0
	done
	return 1
}

# The cloud image's boots (systemd and cloud-init) take 3 to 8 minutes each
# in the emulated test host, and about one in three stalls there (the
# guest's vCPU inside svm_vcpu_run for minutes, with RCU stall reports in
# the test host). --short boots it once, for the feature the others build
# on (image-boot-own-kernel), and reports the rest as skipped, unless
# --only names them. An instance's tests wait up to 40 minutes a boot.
SLOW_TESTS=(image-boot-kernel image-persist image-boot-separate-boot "${INSTANCE_TESTS[@]}")

leave_out_slow() {
	local t
	for t in "${SLOW_TESTS[@]}"; do
		[[ -n $ONLY && ,$ONLY, == *",$t,"* ]] && continue # asked for by name
		skip "$t" "more boots of the cloud image than CI's emulated test host can hold, left out by --short (HUSK_TEST_CLOUD=all runs them)"
		LEFT_OUT+=,$t
	done
}

# Each step runs when one of the tests it answers is wanted; it reports
# all of them.
run_all() {
	local t0
	t0=$(now)
	want check-host && test_check_host
	want boot-cloud poweroff cpus-1 memory-512M acpi-clean timer-tsc-deadline && test_default_boot
	want cpus-4 memory-split && test_big_boot
	want reboot && test_reboot
	want panic && test_panic
	want boot-generic && test_generic
	want sigterm && test_signal sigterm TERM 143
	want sigint && test_signal sigint INT 130
	want seccomp && test_seccomp
	want user-drop && test_user_drop
	want halt-poll && test_halt_poll
	want on-reboot-restart && test_restart
	want pci-clean hwrng blk-serial blk-two-disks blk-ro blk-root blk-fsck && test_disks
	want "${NET_TESTS[@]}" && test_net
	want "${FS_TESTS[@]}" && run_fs_tests
	want "${EXEC_TESTS[@]}" && run_exec_tests
	want "${DISK_TESTS[@]}" && run_disk_tests
	want "${VSOCK_ALL_TESTS[@]}" && run_vsock_tests
	want "${GPU_TESTS[@]}" && run_gpu_tests
	want "${INSTANCE_TESTS[@]}" && run_instance_tests
	want "${OCI_TESTS[@]}" && run_oci_tests
	info "$PASSED passed, $FAILED failed, $SKIPPED skipped in $(elapsed "$t0" "$(now)")s"
}

main() {
	ASSETS="" LOGDIR="" ONLY="" LEFT_OUT="" SHORT=""
	while [[ $# -gt 0 ]]; do
		case $1 in
		--list)
			printf '%s\n' "${TESTS[@]}"
			return 0
			;;
		--skip-all)
			local t
			for t in "${TESTS[@]}"; do skip "$t" "${2:?--skip-all needs a reason}"; done
			return 0
			;;
		--assets) ASSETS=${2:?} && shift ;;
		--logs) LOGDIR=${2:?} && shift ;;
		--only) ONLY=${2:?} && shift ;;
		--short) SHORT=1 ;;
		*)
			echo "husk-test: vm-tests.sh: unknown argument '$1'" >&2
			return 2
			;;
		esac
		shift
	done
	[[ -n $ASSETS ]] || { echo "husk-test: vm-tests.sh needs --assets DIR" >&2; return 2; }
	local f
	for f in cloud/vmlinuz cloud/initrd.cpio.gz generic/vmlinuz generic/initrd.cpio.gz; do
		[[ -r $ASSETS/$f ]] || { echo "husk-test: missing $ASSETS/$f" >&2; return 2; }
	done
	LOGDIR=${LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/husk-vm-tests.XXXXXX")}
	mkdir -p "$LOGDIR"
	read -ra HUSK_CMD <<<"${HUSK:-husk}"
	TIMEOUT=${HUSK_TEST_TIMEOUT:-120}
	# A signalled husk has no guest to wait for.
	STOP_TIMEOUT=20
	[[ -z $SHORT ]] || leave_out_slow
	run_all
	((FAILED == 0))
}

main "$@"
