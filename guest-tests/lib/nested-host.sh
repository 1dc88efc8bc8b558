#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Run a script inside the nested test host: Debian's generic kernel booted
# under QEMU TCG with an emulated AMD CPU that has SVM, so kvm_amd loads and
# offers a real /dev/kvm even where this machine's own /dev/kvm cannot boot
# an unmodified kernel (see TESTING.md). The CPU also has nested paging
# (NPT): KVM then needs no shadow page tables and nested guests boot about
# a fifth faster.
#
# With -a arm64 the test host is an aarch64 one instead: Debian's arm64
# kernel under qemu-system-aarch64 (TCG), `-M virt,virtualization=on` with
# a GICv3 and `-cpu max`, so the kernel starts at EL2 and KVM comes up in
# VHE mode (built into Debian's arm64 kernel: no module to load). Its
# busybox is Debian's busybox-static:arm64, and it has no bash: SCRIPT
# runs with busybox sh, and PAYLOAD holds static aarch64 programs.
#
#   nested-host.sh [-a x86_64|arm64] [-c CPUS] [-m MiB] [-t SECONDS] [-l LOG] [-D VOLUME] -p PAYLOAD SCRIPT [ARG]...
#
# PAYLOAD is a directory that appears as /payload in the test host; put
# programs there with nested_stage_binary (source this file). VOLUME, an
# ext4 file system image, is mounted read-only at /volume: big files (the
# cloud test images) ride in it rather than in the initramfs. SCRIPT runs
# with bash, from /tmp (a tmpfs), with PATH=/payload/bin:/bin. Its output
# streams to stdout (and to LOG); nested-host.sh exits with its status,
# 75 if the test host's kernel wedged (see _nh_stream), or 1 if the test host
# never reported a status for another reason (crash, timeout).
#
# The test host's kernel log goes to its second serial port, LOG.kmsg (at
# every level), never into the script's output: a kernel line landing in
# the middle of a RESULT line would corrupt it.
#
# Defaults come from HUSK_NESTED_CPUS (2), HUSK_NESTED_MEM (4096 MiB),
# HUSK_NESTED_TIMEOUT (4000 s: CI gives 90 minutes for everything) and
# HUSK_NESTED_SILENCE (300 s: a script that prints nothing for that long is
# taken for a wedged test host), HUSK_NESTED_CPU (QEMU's -cpu) and
# HUSK_NESTED_ARCH (-a).
set -euo pipefail

_NH_LIB=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=guest-tests/lib/common.sh
source "$_NH_LIB/common.sh"
# shellcheck source=guest-tests/lib/debian-kernel.sh
source "$_NH_LIB/debian-kernel.sh"
# shellcheck source=guest-tests/lib/mkinitramfs.sh
source "$_NH_LIB/mkinitramfs.sh"

# Where the payload is inside the test host; wrappers hard-code it.
NESTED_PAYLOAD=/payload
# Where -D's volume is mounted in the test host.
NESTED_VOLUME=/volume
# The test host prints this as its last word; nothing else prints it.
NESTED_EXIT_TAG=HUSK-NESTED-EXIT
# Written to the log (not by the test host) when its kernel wedged.
NESTED_LOCKUP_TAG=HUSK-NESTED-LOCKUP
_NH_LOCKUP_RE='BUG: soft lockup\|detected stalls on CPUs' # for grep
# Exit status of nested_host when the test host wedged: the test bed
# failed, not the script (EX_TEMPFAIL: try again).
NESTED_WEDGED=75

# Copy a dynamically linked program into PAYLOAD so it runs in the test
# host: the binary in libexec/, every library ldd lists plus the dynamic
# loader in lib/, and a bin/NAME wrapper that starts it through that
# loader. The libraries stay out of /lib on purpose: the test host's
# static busybox loads glibc's NSS modules at run time, and a copied
# libc there made busybox crash (TESTING.md).
#   nested_stage_binary SRC PAYLOAD [NAME [EXTRA_ARG]...]
nested_stage_binary() {
	local src=$1 payload=$2 name=${3:-$(basename "$1")}
	shift $(($# < 3 ? $# : 3))
	[[ -x $src ]] || die "cannot stage '$src': not an executable"
	mkdir -p "$payload"/{bin,lib,libexec}
	cp -L "$src" "$payload/libexec/$name"
	local lib loader=""
	while read -r lib; do
		cp -Ln "$lib" "$payload/lib/" 2>/dev/null || true
		[[ $lib == */ld-linux* ]] && loader=$(basename "$lib")
	done < <(ldd "$src" 2>/dev/null | grep -o '/[^ ]*' || true)
	if [[ -z $loader ]]; then
		# A static program needs no loader.
		ln -sf "../libexec/$name" "$payload/bin/$name"
		return 0
	fi
	local extra="" a
	for a in "$@"; do extra+=" $(printf '%q' "$a")"; done
	# exec keeps the wrapper's pid, so signals sent to it reach the program.
	cat >"$payload/bin/$name" <<-EOW
		#!/bin/sh
		exec $NESTED_PAYLOAD/lib/$loader --library-path $NESTED_PAYLOAD/lib --argv0 $name $NESTED_PAYLOAD/libexec/$name$extra "\$@"
	EOW
	chmod 755 "$payload/bin/$name"
}

# The shared libraries a program of another architecture needs, found in
# DIRS (the first that holds a name wins), and theirs, once each: ldd
# cannot run a foreign program, so this walks readelf's NEEDED entries.
# Prints one path per line; returns 1, naming the library, if one is
# nowhere in DIRS.
#   foreign_lib_closure SRC DIR...
foreign_lib_closure() {
	local src=$1
	shift
	local -A seen=()
	local queue=("$src") file name dir found
	while ((${#queue[@]})); do
		file=${queue[0]}
		queue=("${queue[@]:1}")
		while read -r name; do
			[[ -n ${seen[$name]:-} ]] && continue
			seen[$name]=1
			found=""
			for dir in "$@"; do
				[[ -e $dir/$name ]] && found=$dir/$name && break
			done
			[[ -n $found ]] || { warn "$src needs $name, which is in none of: $*"; return 1; }
			echo "$found"
			queue+=("$found")
		done < <(readelf -d "$file" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
	done
}

# nested_stage_binary for a program of another architecture than this
# machine's (the arm64 husk, cross-built, for the aarch64 test host): its
# libraries come from DIRS (foreign_lib_closure), its dynamic loader is
# the one its ELF header names (PT_INTERP), looked up in DIRS too.
#   nested_stage_foreign_binary SRC PAYLOAD NAME DIR...
nested_stage_foreign_binary() {
	local src=$1 payload=$2 name=$3
	shift 3
	[[ -x $src ]] || die "cannot stage '$src': not an executable"
	local interp loader="" lib dir libs
	interp=$(readelf -l "$src" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
	[[ -n $interp ]] || die "cannot stage $src: no program interpreter (a static program needs no staging)"
	for dir in "$@"; do
		[[ -e $dir/${interp##*/} ]] && loader=$dir/${interp##*/} && break
	done
	[[ -n $loader ]] || die "cannot stage $src: its loader ${interp##*/} is in none of: $*"
	libs=$(foreign_lib_closure "$src" "$@") || die "cannot stage $src: a library is missing"
	mkdir -p "$payload"/{bin,lib,libexec}
	cp -L "$src" "$payload/libexec/$name"
	while read -r lib; do
		[[ -z $lib ]] || cp -Ln "$lib" "$payload/lib/"
	done <<<"$libs"
	cp -Ln "$loader" "$payload/lib/"
	cat >"$payload/bin/$name" <<-EOW
		#!/bin/sh
		exec $NESTED_PAYLOAD/lib/${loader##*/} --library-path $NESTED_PAYLOAD/lib --argv0 $name $NESTED_PAYLOAD/libexec/$name "\$@"
	EOW
	chmod 755 "$payload/bin/$name"
}

# QEMU for the test host: the program (its wrapper passes -L so that QEMU
# finds its firmware in the payload) and the firmware a Linux boot with
# -M pc or -M microvm loads.
nested_stage_qemu() {
	local payload=$1 f
	nested_stage_binary "$(command -v qemu-system-x86_64)" "$payload" qemu-system-x86_64 \
		-L "$NESTED_PAYLOAD/share/qemu"
	mkdir -p "$payload/share/qemu"
	local dir
	for f in bios-256k.bin bios-microvm.bin linuxboot.bin linuxboot_dma.bin kvmvapic.bin \
		multiboot.bin multiboot_dma.bin vgabios-stdvga.bin; do
		# Debian's QEMU looks in all three (its --firmwarepath).
		for dir in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
			if [[ -e $dir/$f ]]; then
				cp -L "$dir/$f" "$payload/share/qemu/"
				break
			fi
		done
	done
	[[ -e $payload/share/qemu/bios-256k.bin ]] || die "no bios-256k.bin for QEMU (install seabios)"
}

# The test host's /init: mount the basics, load what KVM needs (kvm_amd;
# nothing on arm64, where KVM is built in), run the script, report its
# status on a line of its own, power off.
#   _nh_write_init FILE ARCH SHELL
_nh_write_init() {
	local early="" late=""
	if [[ $2 == arm64 ]]; then
		# QEMU's virt machine has one serial port, for the kernel's log. The
		# script's output goes to a virtio console, whose driver is a module:
		# its /dev/hvc0 shows up once the modules are in.
		# shellcheck disable=SC2016 # expanded by the test host's sh
		late='n=0
		while [ ! -c /dev/hvc0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
		[ -c /dev/hvc0 ] || echo "no /dev/hvc0 after 10 s: the script has no output" >/dev/console
		exec </dev/null >/dev/hvc0 2>&1'
	else
		# The script's output has ttyS0 to itself; the kernel logs to ttyS1.
		early='exec </dev/null >/dev/ttyS0 2>&1'
	fi
	cat >"$1" <<-EOI
		#!/bin/sh
		export PATH=$NESTED_PAYLOAD/bin:/bin
		mount -t proc proc /proc
		mount -t sysfs sys /sys
		mount -t devtmpfs dev /dev
		mount -t tmpfs -o size=75% tmp /tmp
		# devtmpfs has no /dev/fd; bash's process substitution needs it.
		ln -s /proc/self/fd /dev/fd
		$early
		# "#!/usr/bin/env bash" scripts find bash through PATH.
		mkdir -p /usr/bin && ln -s /bin/busybox /usr/bin/env
		# nx_huge_pages=off: KVM's NX huge-page recovery thread was seen wedged
		# in a soft lockup here (the emulated CPU claims iTLB multihit).
		for m in \$(cat /modules/order); do
			case \$m in
			kvm.ko) insmod /modules/\$m nx_huge_pages=off ;;
			*) insmod /modules/\$m ;;
			esac
		done
		$late
		# A volume (-D) is the only disk; its modules are loaded only with it.
		if grep -q virtio_blk /modules/order; then
			n=0
			while [ ! -b /dev/vda ] && [ \$n -lt 50 ]; do sleep 0.1; n=\$((n + 1)); done
			mkdir -p $NESTED_VOLUME
			mount -t ext4 -o ro /dev/vda $NESTED_VOLUME ||
				echo "$HUSK_LOG_TAG: cannot mount the volume (/dev/vda) at $NESTED_VOLUME"
		fi
		[ -c /dev/kvm ] || echo "$HUSK_LOG_TAG: no /dev/kvm in the test host (\$(dmesg | grep -m1 -i kvm || echo 'KVM did not load'))"
		${HUSK_QUIET:+: }echo "$HUSK_LOG_TAG: test host up after \$(cut -d' ' -f1 /proc/uptime)s"
		cd /tmp
		$3 $NESTED_PAYLOAD/.nested/main.sh
		echo "$NESTED_EXIT_TAG \$? \$(cut -d' ' -f1 /proc/uptime)"
		poweroff -f
	EOI
}

# The first lockup or stall report in KMSG and what follows it (the stuck
# task's name, its registers and stack), or the log's end without one: the
# first report names the culprit, later ones mostly its victims.
_nh_first_lockup() {
	local at
	at=$(grep -n -m1 "$_NH_LOCKUP_RE" "$1" 2>/dev/null | cut -d: -f1) || true
	if [[ -n $at ]]; then
		sed -n "$at,$((at + 44))p" "$1"
	else
		tail -n 15 "$1" 2>/dev/null || true
	fi
}

# Copy the test host's console to stdout and LOG as lines arrive, without
# the serial line's carriage returns. The status line is for us, not for
# whoever watches the demo, so quiet mode keeps it out of stdout.
# With KILL_PATTERN, also watch for a wedged test host (seen under TCG's SVM
# emulation with nested KVM guests): its kernel reports a soft lockup or an
# RCU stall in KMSG (a CPU stuck for good; the stall report has shown up
# without a backtrace, the CPU deaf even to NMIs) and the script has printed
# nothing for a minute, or it prints nothing for SILENCE seconds. Such a host never
# reports; its QEMU is stopped at once (KILL names it by a path only its
# command line holds) and LOG gets NESTED_LOCKUP_TAG with the reason.
#   _nh_stream LOG [KILL_PATTERN KMSG SILENCE]
_nh_stream() {
	local log=$1 kill_pattern=${2:-} kmsg=${3:-} silence=${4:-0}
	local line partial="" why last=$SECONDS
	: >"$log"
	while :; do
		# A read that times out keeps what it got of a line: the rest follows.
		if IFS= read -r -t 10 line; then
			line=$partial$line partial="" last=$SECONDS
			line=${line%$'\r'}
			printf '%s\n' "$line" >>"$log"
			[[ -n ${HUSK_QUIET:-} && $line == "$NESTED_EXIT_TAG "* ]] || printf '%s\n' "$line"
		elif (($? > 128)); then
			partial+=$line
		else
			# The end, maybe after a last line without a newline.
			line=$partial$line
			[[ -z $line ]] || printf '%s\n' "${line%$'\r'}" | tee -a "$log"
			return 0
		fi
		[[ -n $kill_pattern ]] || continue
		why=""
		if ((SECONDS - last >= 60)) &&
			grep -q "$_NH_LOCKUP_RE" "$kmsg" 2>/dev/null; then
			why="its kernel reported a soft lockup or an RCU stall, and nothing was printed for a minute"
		elif ((silence > 0 && SECONDS - last >= silence)); then
			why="it printed nothing for ${silence}s"
		fi
		if [[ -n $why ]]; then
			echo "$NESTED_LOCKUP_TAG $why" >>"$log"
			pkill -KILL -f -- "$kill_pattern" || true
			kill_pattern=""
		fi
	done
}

# Last reported status in a log, or nothing.
_nh_parse_exit() {
	awk -v tag="$NESTED_EXIT_TAG" '$1 == tag { rc = $2; up = $3 } END { if (rc != "") print rc, up }' "$1"
}

# A subshell function, so that its cleanup trap stays its own.
nested_host() (
	local cpus=${HUSK_NESTED_CPUS:-2} mem=${HUSK_NESTED_MEM:-4096} cpu=${HUSK_NESTED_CPU:-}
	local limit=${HUSK_NESTED_TIMEOUT:-4000} silence=${HUSK_NESTED_SILENCE:-300}
	local log="" payload="" volume="" arch=${HUSK_NESTED_ARCH:-x86_64}
	local opt OPTIND=1
	while getopts "a:c:m:t:l:p:D:" opt; do
		case $opt in
		a) arch=$OPTARG ;;
		c) cpus=$OPTARG ;;
		m) mem=$OPTARG ;;
		t) limit=$OPTARG ;;
		l) log=$OPTARG ;;
		p) payload=$OPTARG ;;
		D) volume=$OPTARG ;;
		*) die "nested-host: bad option" ;;
		esac
	done
	shift $((OPTIND - 1))
	[[ $# -ge 1 && -n $payload ]] || die "usage: nested-host.sh [-a x86_64|arm64] [-c CPUS] [-m MiB] [-t SECONDS] [-l LOG] [-D VOLUME] -p PAYLOAD SCRIPT [ARG]..."
	local script=$1
	shift
	[[ -r $script ]] || die "nested-host: cannot read script '$script'"
	[[ -d $payload ]] || die "nested-host: payload '$payload' is not a directory"
	# What differs between the two test hosts: QEMU and its machine, the
	# kernel, the modules /init loads, the shell, the consoles.
	local qemu shell bb_opt=() host_mods=() machine_args=() append
	case $arch in
	x86_64)
		qemu=qemu-system-x86_64 shell=$NESTED_PAYLOAD/bin/bash
		command -v $qemu >/dev/null || die "$qemu not found (install qemu-system-x86)"
		debian_kernel amd64
		host_mods=(-m irqbypass -m ccp -m kvm -m kvm-amd -m tun -m vhost_net)
		machine_args=(-cpu "${cpu:-qemu64,+svm,+npt}" -serial stdio -serial "file:KMSG")
		append="console=ttyS1"
		;;
	arm64)
		qemu=qemu-system-aarch64 shell=/bin/sh
		command -v $qemu >/dev/null || die "$qemu not found (install qemu-system-arm)"
		[[ -z $volume ]] || die "nested-host: -D is not supported in the arm64 test host"
		debian_kernel arm64
		debian_static_busybox arm64
		bb_opt=(-b "$BUSYBOX")
		host_mods=(-m virtio_mmio -m virtio_console -m tun -m vhost_net)
		# pauth-impdef: QEMU's own pointer-authentication hash instead of
		# the architected QARMA, which costs TCG several times the boot time.
		cpu=${cpu:-max,pauth-impdef=on}
		# shellcheck disable=SC2054 # QEMU's options are comma lists
		machine_args=(-M virt,virtualization=on,gic-version=3 -cpu "$cpu"
			-serial "file:KMSG" -device virtio-serial-device
			-chardev stdio,id=out -device virtconsole,chardev=out)
		append="console=ttyAMA0"
		;;
	*) die "nested-host: -a x86_64|arm64, not '$arch'" ;;
	esac

	local work
	work=$(mktemp -d "${TMPDIR:-/tmp}/husk-nested.XXXXXX")
	# shellcheck disable=SC2064 # expand $work now
	trap "rm -rf '$work'" EXIT
	[[ -n $log ]] || log=$work/console.log

	# The script and its arguments, and bash to run it with.
	mkdir -p "$payload/.nested"
	cp "$script" "$payload/.nested/script"
	{
		printf 'cd /tmp\n'
		printf 'exec %q %q' "$shell" "$NESTED_PAYLOAD/.nested/script"
		printf ' %q' "$@"
		printf '\n'
	} >"$payload/.nested/main.sh"
	[[ $arch != x86_64 || -e $payload/bin/bash ]] ||
		nested_stage_binary "$(command -v bash)" "$payload" bash

	_nh_write_init "$work/init" "$arch" "$shell"
	# The volume is a read-only virtio disk, not more initramfs: the
	# initramfs lives in the test host's RAM twice over (the archive, then
	# the unpacked files), so a cloud image of a few hundred MB there would
	# need the test host's memory raised for every run that carries it,
	# and unpacking it under TCG costs as much as reading it. From a disk,
	# the test host reads only the blocks the tests use, and runs without
	# a volume boot exactly as before (no virtio modules, same memory).
	local vol_mods=() vol_args=()
	if [[ -n $volume ]]; then
		[[ -r $volume ]] || die "nested-host: cannot read volume '$volume'"
		# ext4 is a module in the generic kernel; crc32c, for its checksums, is
		# asked for at mount time, not a dependency in modules.dep.
		vol_mods=(-m virtio_pci -m virtio_blk -m crc32c_generic -m ext4)
		vol_args=(-drive "file=$volume,if=virtio,format=raw,readonly=on")
	fi
	# Uncompressed: the test host unpacks it under TCG, where gunzip of
	# a payload holding QEMU costs more than copying the bytes. tun gives
	# the network tests and benchmarks their TAP devices (/dev/net/tun).
	mkinitramfs -o "$work/host.cpio" -z none -i "$work/init" -k "$KERNEL_MODULES" \
		"${host_mods[@]}" "${vol_mods[@]}" "${bb_opt[@]}" -d "$payload=$NESTED_PAYLOAD"

	log "booting the nested test host ($arch, $KERNEL_VERSION, $cpus CPUs, $mem MiB, limit ${limit}s)"
	local start=$SECONDS
	# No stdin (CI has none), the script's serial port on stdout, the
	# kernel's in a file, no monitor; -no-reboot and panic=-1 turn a
	# test-host crash into an exit instead of a hang.
	local kmsg=$log.kmsg qemu_rc=0 result wedged
	machine_args=("${machine_args[@]//KMSG/$kmsg}")
	timeout -k 10 "$limit" "$qemu" \
		-accel tcg,thread=multi -smp "$cpus" -m "$mem" "${machine_args[@]}" \
		-display none -monitor none -nic none -no-reboot \
		"${vol_args[@]}" \
		-kernel "$KERNEL_VMLINUZ" -initrd "$work/host.cpio" \
		-append "$append loglevel=7 panic=-1 oops=panic" </dev/null 2>&1 |
		_nh_stream "$log" "$work/host.cpio" "$kmsg" "$silence" || qemu_rc=$?
	result=$(_nh_parse_exit "$log")
	if [[ -z $result ]]; then
		wedged=$(sed -n "s/^$NESTED_LOCKUP_TAG //p" "$log")
		if [[ -n $wedged ]]; then
			warn "the nested test host wedged ($wedged); stopped it. Its kernel's log, from the first lockup report if there is one ($kmsg):"
			_nh_first_lockup "$kmsg" | tr -d '\r' | sed 's/^/  kmsg| /' >&2
			return "$NESTED_WEDGED"
		elif ((qemu_rc == 124 || qemu_rc == 137)); then
			warn "nested test host timed out after ${limit}s; its kernel's last words:"
		else
			warn "nested test host ended (qemu status $qemu_rc) without reporting a result; its kernel's last words:"
		fi
		# The log goes with the work directory: show its end now, a whole
		# oops (its first line names the fault) if the kernel crashed.
		tail -n 60 "$kmsg" 2>/dev/null | tr -d '\r' | sed 's/^/  kmsg| /' >&2
		return 1
	fi
	log "nested test host: script status ${result% *}, test-host uptime ${result#* }s, wall $((SECONDS - start))s"
	return "${result% *}"
)

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	nested_host "$@"
fi
