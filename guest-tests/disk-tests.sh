# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Whole-VM tests that boot a distribution cloud image, sourced by
# vm-tests.sh (whose pass, fail, skip, vm_wait and HUSK_CMD they use). The
# image is Debian 12 built from Debian's packages by lib/mkcloudimage.sh,
# with systemd, cloud-init and its own kernel; HUSK_CLOUD_IMAGES is the
# directory holding it (image.env says what is in it), $ASSETS/cloud-image
# the NoCloud seed the runner made (seed.img).
# Every boot uses a qcow2 overlay on the image, in $LOGDIR, so the cached
# image stays as built; HUSK_QEMU_IMG says how to run qemu-img.
# HUSK_TEST_IMAGE_TIMEOUT bounds one boot (seconds, default 600: systemd
# and cloud-init take 4-7 minutes in the nested test host).

DISK_TESTS=(image-boot-kernel image-boot-own-kernel image-boot-separate-boot image-persist)

# What the seed's cloud-init scripts print on ttyS0.
DISK_RAN_MARK=HUSK-CLOUD-INIT-RAN
DISK_PERSIST_MARK=HUSK-PERSIST

# An overlay on a cached image, for one test's boots.
#   disk_overlay BASE OUT
disk_overlay() {
	rm -f "$2"
	"${QEMU_IMG[@]}" create -q -f qcow2 -b "$1" -F qcow2 "$2"
}

# Boot the cloud image with husk and wait for it to power off; sets VM_LOG,
# VM_RC, VM_WALL like vm_boot. Not through vm_start: the image's own
# kernel and command line, not guest-init.sh's.
#   disk_boot NAME [husk run argument]...
disk_boot() {
	local name=$1
	shift
	VM_LOG=$LOGDIR/$name.log
	# shellcheck disable=SC2034 # vm_wait reads VM_T0 and VM_PID
	VM_T0=$(now)
	"${HUSK_CMD[@]}" run "$@" --memory 1G --cpus 2 --net user </dev/null >"$VM_LOG" 2>"$VM_LOG.err" &
	# shellcheck disable=SC2034
	VM_PID=$!
	disk_wait "$name"
	info "$name: status $VM_RC after ${VM_WALL}s wall"
}

# vm_wait for a boot of minutes: a note every 30 s on how far it got, so
# that the nested test host is not taken for wedged: it stops one that
# prints nothing for a minute after its kernel reported a soft lockup, and
# a busy test host's kernel reports one while a husk vCPU clears its huge
# pages under TCG.
# A boot whose guest kernel reports an RCU stall (a CPU that answers
# neither its timer nor an NMI) is stopped DISK_STALL_GRACE seconds later,
# with husk's threads saved beside its log, and VM_RC is "stalled"; so is
# one whose console says nothing for DISK_SILENCE seconds (seen: a guest
# stuck for good while it assigned PCI BARs, 2 s into its boot, with no
# CPU left to report it).
disk_wait() {
	local name=$1 deadline=$((SECONDS + DISK_TIMEOUT)) next=$((SECONDS + 30)) last stall_at=""
	local size last_size="" quiet_since=$SECONDS
	while kill -0 "$VM_PID" 2>/dev/null && ((SECONDS < deadline)); do
		if ((SECONDS >= next)); then
			last=$(tr -d '\r' <"$VM_LOG" | grep -a . | tail -n 1 | cut -c1-100 || true)
			info "$name: $(elapsed "$VM_T0" "$(now)")s, the console's last line: ${last:-(none yet)}"
			next=$((SECONDS + 30))
		fi
		if [[ -z $stall_at ]] && grep -aq "$DISK_STALL_REPORT" "$VM_LOG" 2>/dev/null; then
			stall_at=$SECONDS
			info "$name: the guest's kernel reports a stalled CPU; stopping in ${DISK_STALL_GRACE}s"
		fi
		size=$(wc -c <"$VM_LOG" 2>/dev/null || echo 0)
		if [[ $size != "$last_size" ]]; then
			last_size=$size quiet_since=$SECONDS
		elif [[ -z $stall_at ]] && ((SECONDS >= quiet_since + DISK_SILENCE)); then
			info "$name: the console has been silent for ${DISK_SILENCE}s; taken for a stall"
			stall_at=$((SECONDS - DISK_STALL_GRACE))
		fi
		if [[ -n $stall_at ]] && ((SECONDS >= stall_at + DISK_STALL_GRACE)); then
			vm_dump_threads "$VM_PID" >"$VM_LOG.threads" 2>&1 || true
			kill -KILL "$VM_PID" 2>/dev/null || true
			wait "$VM_PID" 2>/dev/null || true
			VM_RC=stalled
			VM_WALL=$(elapsed "$VM_T0" "$(now)")
			return 0
		fi
		sleep 1
	done
	vm_wait 1
}

# The clock ticks thread TID spent in husk itself over vm_dump_threads'
# two seconds, from its dump FILE. Linux adds guest time to user time at
# its own moments, so the difference may come out a few ticks either way.
#   disk_user_ticks TID FILE
disk_user_ticks() {
	grep -Eo "(^| )$1/user=-?[0-9]+\(\+-?[0-9]+\)" "$2" | sed 's/.*(+//; s/)//' | head -n 1 | grep . || echo 999
}

# Whether the stalled boot's vCPUs all sat inside KVM_RUN (the ioctl
# 0xae80, system call 16), where husk has handed the CPU to the host's
# KVM, spending no time in husk itself: then it is the emulated test host
# that lost the vCPU (its KVM runs on TCG's emulation of SVM, with shadow
# paging, and its own kernel often reports a stall too). A vCPU thread
# anywhere else, or busy in husk, is husk's fault.
disk_stall_in_kvm() {
	local threads=$VM_LOG.threads line tid
	[[ -s $threads ]] || return 1
	while read -r line; do
		tid=$(cut -d' ' -f2 <<<"$line")
		case $line in
		*"syscall=16 0x"*" 0xae80") ;;
		*syscall=running) (($(disk_user_ticks "$tid" "$threads") <= DISK_HUSK_TICKS)) || return 1 ;;
		*) return 1 ;;
		esac
	done < <(grep -E '^thread [0-9]+ husk-vcpu' "$threads")
}

# disk_boot on a new overlay of BASE (at OVERLAY) until it does not stall
# inside the test host's KVM (disk_stall_in_kvm), DISK_BOOTS times at most;
# DISK_STALLS names the stalled boots, their logs and threads are kept.
#   disk_boot_settled NAME BASE OVERLAY [husk run argument]...
disk_boot_settled() {
	local name=$1 base=$2 overlay=$3 boot
	shift 3
	DISK_STALLS=""
	for ((boot = 1; boot <= DISK_BOOTS; boot++)); do
		disk_overlay "$base" "$overlay"
		disk_boot "$name" "$@"
		[[ $VM_RC == stalled ]] && disk_stall_in_kvm || return 0
		DISK_STALLS+="boot $boot stalled after ${VM_WALL}s with every vCPU inside the test host's KVM_RUN; "
		cp "$VM_LOG" "$VM_LOG.stall-$boot" && cp "$VM_LOG.threads" "$VM_LOG.stall-$boot.threads"
		info "$name: boot $boot stalled; husk's threads then:"
		sed 's/^/    /' "$VM_LOG.threads"
	done
}

# A pass, and a line naming the stalled boots before it, if any.
disk_pass() {
	pass "$1"
	[[ -z $DISK_STALLS ]] || info "$1: passed after ${DISK_STALLS%; }"
}

# Why the boot of an image without --kernel cannot be judged: husk said,
# with its usage status, that it wants a kernel. Empty when it tried.
disk_own_kernel_refused() {
	[[ $VM_RC == 2 ]] || return 0
	grep -m1 -e '--kernel is required' -e 'unexpected argument' "$VM_LOG.err" || true
}

# What went wrong with a cloud-init boot that should have powered off
# after cloud-init's runcmd, from its log; empty when nothing did.
#   disk_boot_problems [EXTRA_MARK]
disk_boot_problems() {
	local p=""
	[[ $VM_RC == 0 ]] || p+="husk's status was $VM_RC (want 0); "
	grep -q 'login:' "$VM_LOG" || p+="no login prompt on ttyS0; "
	grep -q "$DISK_RAN_MARK" "$VM_LOG" || p+="cloud-init's runcmd did not print $DISK_RAN_MARK; "
	grep -q 'reboot: Power down' "$VM_LOG" ||
		p+="the guest did not power off by itself; "
	echo "${p%; }"
}

# qemu-img check of an overlay (and so of what husk wrote): its problems,
# or nothing.
disk_check() {
	local out
	out=$("${QEMU_IMG[@]}" check "$1" 2>&1) || echo "qemu-img check: $(tr '\n' ' ' <<<"$out")"
}

# image-boot-kernel and image-persist: the image's kernel and initramfs
# handed to husk, the compressed image as vda ("quiet": in the nested test
# host every byte on the serial port is an exit through two hypervisors);
# then the same overlay booted again, where the script the first boot
# left for cloud-init prints what that boot wrote.
disk_test_kernel_and_persist() {
	local overlay=$LOGDIR/image-kernel.qcow2 problems
	local -a kernel=(--kernel "$CLOUD_DIR/vmlinuz" --initrd "$CLOUD_DIR/initrd.img"
		--cmdline "root=UUID=$CLOUD_ROOT_UUID ro console=ttyS0,115200 quiet")
	disk_boot_settled image-boot-kernel "$CLOUD_DIR/debian-12-cloud.qcow2" "$overlay" \
		"${kernel[@]}" --disk "$overlay,format=qcow2" --disk "$SEED_DIR/seed.img,ro"
	problems=$(disk_boot_problems)
	[[ -n $problems ]] || problems=$(disk_check "$overlay")
	if [[ -z $problems ]]; then
		disk_pass image-boot-kernel
	else
		fail image-boot-kernel "$DISK_STALLS$problems" "$VM_LOG"
		skip image-persist "the first boot (image-boot-kernel) failed"
		return 0
	fi
	want image-persist || return 0
	disk_boot image-persist "${kernel[@]}" --disk "$overlay,format=qcow2" \
		--disk "$SEED_DIR/seed.img,ro"
	local found
	found=$(grep -a -o -m1 "$DISK_PERSIST_MARK [a-z-]*" "$VM_LOG" || true)
	problems=$(disk_boot_problems)
	[[ $found == "$DISK_PERSIST_MARK iid-husk-first" ]] ||
		problems+="${problems:+; }the second boot read '${found:-nothing}' (want '$DISK_PERSIST_MARK iid-husk-first')"
	[[ -n $problems ]] || problems=$(disk_check "$overlay")
	if [[ -z $problems ]]; then
		pass image-persist
	else
		fail image-persist "$problems" "$VM_LOG"
	fi
}

# image-boot-own-kernel and image-boot-separate-boot: husk run IMAGE, no
# --kernel: husk finds the kernel, initramfs and command line in grub.cfg.
# A boot that stalls inside the test host's KVM is tried again
# (disk_boot_settled).
#   disk_test_own_kernel NAME IMAGE
disk_test_own_kernel() {
	local name=$1 overlay=$LOGDIR/$1.qcow2 problems refused
	want "$name" || return 0
	disk_boot_settled "$name" "$2" "$overlay" "$overlay" --disk "$SEED_DIR/seed.img,ro"
	refused=$(disk_own_kernel_refused)
	if [[ -n $refused ]]; then
		skip "$name" "husk run cannot find a kernel in an image yet ($refused)"
		return 0
	fi
	problems=$(disk_boot_problems)
	[[ -n $problems ]] || problems=$(disk_check "$overlay")
	if [[ -z $problems ]]; then
		disk_pass "$name"
	else
		fail "$name" "$DISK_STALLS$problems" "$VM_LOG"
	fi
}

run_disk_tests() {
	local t
	SEED_DIR=$ASSETS/cloud-image
	CLOUD_DIR=${HUSK_CLOUD_IMAGES:-}
	if [[ -z $CLOUD_DIR || ! -r $CLOUD_DIR/image.env || ! -r $SEED_DIR/seed.img ]]; then
		for t in "${DISK_TESTS[@]}"; do skip "$t" "no cloud image in ${CLOUD_DIR:-(HUSK_CLOUD_IMAGES unset)} (the runner builds it with lib/mkcloudimage.sh)"; done
		return 0
	fi
	read -ra QEMU_IMG <<<"${HUSK_QEMU_IMG:-qemu-img}"
	if ! "${QEMU_IMG[@]}" --version >/dev/null 2>&1; then
		for t in "${DISK_TESTS[@]}"; do skip "$t" "no qemu-img for the image overlays"; done
		return 0
	fi
	# shellcheck source=/dev/null
	source "$CLOUD_DIR/image.env"
	DISK_TIMEOUT=${HUSK_TEST_IMAGE_TIMEOUT:-600}
	DISK_STALL_REPORT='rcu_preempt detected stalls on CPUs'
	DISK_STALL_GRACE=30
	DISK_BOOTS=3
	DISK_HUSK_TICKS=3 # of 200 in two seconds: a vCPU thread busy in husk uses far more
	DISK_SILENCE=180  # systemd and cloud-init print every few seconds, 60 s at the slowest seen
	local t0
	t0=$(now)
	want image-boot-kernel image-persist && disk_test_kernel_and_persist
	disk_test_own_kernel image-boot-own-kernel "$CLOUD_DIR/debian-12-cloud.qcow2"
	disk_test_own_kernel image-boot-separate-boot "$CLOUD_DIR/debian-12-cloud-boot.qcow2"
	info "cloud image tests: $(elapsed "$t0" "$(now)")s"
	rm -f "$LOGDIR"/image-*.qcow2
}
