#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Build a busybox-static initramfs (cpio newc, gzip or plain):
#   mkinitramfs.sh -o OUT -i INIT [-k MODULES_DIR] [-m MODULE]... \
#                  [-f SRC=DEST]... [-d SRCDIR=DEST]... [-z gzip|none] [-b BUSYBOX]
#
#   -i INIT         becomes /init (a busybox sh script or a static binary)
#   -k, -m          kernel modules by name (pvpanic-mmio, virtio_pci...),
#                   resolved with MODULES_DIR/modules.dep: the image gets
#                   them and their dependencies in /modules, and
#                   /modules/order lists the files in insmod order
#   -f, -d          extra files and directory trees
#   -z none         skip compression (faster to unpack under TCG)
#   -b BUSYBOX      a static busybox of another architecture (the arm64
#                   test host's) instead of this machine's busybox-static
#
# Busybox is linked as every applet in /bin, so /init may be `#!/bin/sh`.
# /dev/console is in the image as a real device node (the kernel opens it
# for init's stdio before init runs) without needing root to build it.
set -euo pipefail

_MI_LIB=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=guest-tests/lib/common.sh
source "$_MI_LIB/common.sh"

# Module names are written with '-' or '_' interchangeably.
_mi_norm() {
	local n=${1##*/}
	n=${n%.ko*}
	echo "${n//-/_}"
}

# Print the modules.dep paths of the named modules and everything they need,
# dependencies first (the order insmod needs). modules.dep lines look like
# "kernel/a/b.ko: kernel/c/d.ko kernel/e/f.ko"; a depth-first walk gives a
# valid order whatever order the line lists its dependencies in.
modules_resolve() {
	local moddir=$1
	shift
	[[ -r $moddir/modules.dep ]] || die "no modules.dep in $moddir (depmod not run?)"
	local -A dep_of=() path_of=() seen=()
	local line mod deps
	while IFS= read -r line; do
		mod=${line%%:*}
		deps=${line#*:}
		path_of[$(_mi_norm "$mod")]=$mod
		dep_of[$(_mi_norm "$mod")]=$deps
	done <"$moddir/modules.dep"

	_mi_visit() {
		local name=$1 d
		[[ -n ${seen[$name]:-} ]] && return 0
		[[ -n ${path_of[$name]:-} ]] ||
			die "module '$name' not found in $moddir (built in, or misspelt?)"
		seen[$name]=1
		for d in ${dep_of[$name]}; do
			_mi_visit "$(_mi_norm "$d")"
		done
		echo "${path_of[$name]}"
	}
	local m
	for m in "$@"; do
		_mi_visit "$(_mi_norm "$m")"
	done
}

# One cpio "newc" entry for a character device, written by hand: cpio can
# only archive nodes that exist, and making one (mknod) needs root.
_mi_cpio_chardev() {
	local name=$1 major=$2 minor=$3
	local namesize=$((${#name} + 1))
	# ino mode uid gid nlink mtime filesize devmaj devmin rdevmaj rdevmin namesize check
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		0x7fff0001 $((0020000 | 0600)) 0 0 1 0 0 0 0 "$major" "$minor" "$namesize" 0
	printf '%s\0' "$name"
	_mi_pad4 $((110 + namesize))
}

_mi_cpio_trailer() {
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		0 0 0 0 1 0 0 0 0 0 0 11 0
	printf 'TRAILER!!!\0'
	_mi_pad4 $((110 + 11))
}

_mi_pad4() {
	local pad=$(((4 - $1 % 4) % 4))
	((pad == 0)) || head -c "$pad" /dev/zero
}

_mi_static_busybox() {
	local bb
	bb=$(command -v busybox || true)
	[[ -n $bb ]] || die "busybox not found (install busybox-static)"
	bb=$(readlink -f "$bb")
	# A dynamic busybox would need the host's libc inside the image.
	if ldd "$bb" >/dev/null 2>&1; then
		die "$bb is dynamically linked; install busybox-static"
	fi
	echo "$bb"
}

# A subshell function, so that its cleanup trap stays its own.
mkinitramfs() (
	local out="" init="" moddir="" compress=gzip busybox=""
	local -a modules=() files=() dirs=()
	local opt OPTIND=1
	while getopts "o:i:k:m:f:d:z:b:" opt; do
		case $opt in
		o) out=$OPTARG ;;
		i) init=$OPTARG ;;
		k) moddir=$OPTARG ;;
		m) modules+=("$OPTARG") ;;
		f) files+=("$OPTARG") ;;
		d) dirs+=("$OPTARG") ;;
		z) compress=$OPTARG ;;
		b) busybox=$OPTARG ;;
		*) die "mkinitramfs: bad option" ;;
		esac
	done
	[[ -n $out && -n $init ]] || die "mkinitramfs: -o OUT and -i INIT are required"
	[[ -r $init ]] || die "mkinitramfs: cannot read init '$init'"
	((${#modules[@]} == 0)) || [[ -n $moddir ]] || die "mkinitramfs: -m needs -k MODULES_DIR"
	case $compress in gzip | none) ;; *) die "mkinitramfs: -z gzip|none" ;; esac

	local root
	root=$(mktemp -d "${TMPDIR:-/tmp}/husk-initramfs.XXXXXX")
	# shellcheck disable=SC2064 # expand $root now, the trap runs later
	trap "rm -rf '$root'" EXIT

	mkdir -p "$root"/{bin,dev,proc,sys,tmp,modules,etc}
	local host_busybox
	host_busybox=$(_mi_static_busybox)
	cp "${busybox:-$host_busybox}" "$root/bin/busybox"
	# The applets are listed by this machine's busybox, which runs here:
	# one of another architecture would not. Debian builds both from the
	# same source and configuration, so the lists are the same.
	local applet
	for applet in $("$host_busybox" --list); do
		[[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
	done
	ln -s bin "$root/sbin"
	cp "$init" "$root/init"
	chmod 755 "$root/init"

	local rel resolved=""
	: >"$root/modules/order"
	if ((${#modules[@]})); then
		# Not inline in the for: a failure inside $(...) would be lost.
		resolved=$(modules_resolve "$moddir" "${modules[@]}")
		for rel in $resolved; do
			cp "$moddir/$rel" "$root/modules/"
			basename "$rel" >>"$root/modules/order"
		done
	fi

	local spec src dest
	for spec in "${files[@]}"; do
		src=${spec%%=*} dest=${spec#*=}
		mkdir -p "$root/$(dirname "$dest")"
		cp -L "$src" "$root/$dest"
	done
	for spec in "${dirs[@]}"; do
		src=${spec%%=*} dest=${spec#*=}
		mkdir -p "$root/$dest"
		cp -a "$src/." "$root/$dest/"
	done

	mkdir -p "$(dirname "$out")"
	local compressor=(cat)
	[[ $compress == gzip ]] && compressor=(gzip -1 -n)
	# The console node goes after the main archive: the kernel unpacks
	# concatenated archives in order, and dev/ must exist first.
	{
		(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
			cpio -o -H newc -R 0:0 --quiet)
		_mi_cpio_chardev dev/console 5 1
		_mi_cpio_trailer
	} | "${compressor[@]}" >"$out.tmp"
	mv "$out.tmp" "$out"
)

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	mkinitramfs "$@"
fi
