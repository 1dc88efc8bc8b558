#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A Debian 12 (bookworm) cloud image built from Debian's packages, shaped
# like the official debian-12-genericcloud-amd64.qcow2, for the tests that
# boot a distribution image with its own kernel (disk-tests.sh):
#
#   mkcloudimage.sh                 build (or find in the cache), print the
#                                   directory's image.env (shell assignments)
#   mkcloudimage.sh --seed OUT USER_DATA META_DATA
#                                   a NoCloud seed: vfat labelled CIDATA
#
# When sourced: cloud_image (sets CLOUD_DIR) and cloud_seed.
#
# The directory, ${HUSK_CACHE:-~/.cache/husk}/images/debian-12-KEY, holds:
#   debian-12-cloud.qcow2      GPT: 14 BIOS boot, 15 EFI system (vfat),
#                              1 ext4 root with /boot/grub/grub.cfg; root=UUID=
#   debian-12-cloud-boot.qcow2 the same plus 16, an ext4 /boot holding the
#                              kernel and grub.cfg (paths relative to it);
#                              root=LABEL=cloudimg-rootfs, as Ubuntu's images
#   vmlinuz, initrd.img        the image's own kernel and initramfs, read
#                              back out of the image with debugfs
#   image.env                  what the tests need to know (UUIDs, versions)
#   volume.ext4                all of the above in one ext4 filesystem, for
#                              the nested test host to mount from a disk
# KEY hashes this script and the version of the cloud kernel package, so a
# change to either builds a new image; older ones are removed. Everything
# comes from Debian's mirrors through mmdebstrap; the .debs are kept in
# images/debs so that a rebuild downloads only what changed.
set -euo pipefail

_CI_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_CI_SELF=$_CI_LIB/mkcloudimage.sh
# shellcheck source=guest-tests/lib/common.sh
source "$_CI_LIB/common.sh"

CLOUD_SUITE=bookworm
CLOUD_DISK_MIB=2048 # the virtual size, as the official image
CLOUD_ROOT_LABEL=cloudimg-rootfs
CLOUD_BOOT_LABEL=BOOT
# The kernel command line Debian's cloud images put in /etc/default/grub.
CLOUD_CMDLINE_EXTRA="console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0"
# GPT partition types.
_CI_BIOS_BOOT=21686148-6449-6E6F-744E-656564454649
_CI_ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
_CI_LINUX=0FC63DAF-8483-4772-8E79-3D69D8477DE4
_CI_XBOOTLDR=BC13C2FF-59E6-4262-A352-B275FD6F7172
# Packages beyond minbase: a systemd system with the cloud kernel,
# cloud-init and sshd, networking by ifupdown and dhclient as Debian's own
# images have it.
_CI_PACKAGES=systemd-sysv,udev,dbus,linux-image-cloud-amd64,initramfs-tools,cloud-init,openssh-server,ifupdown,isc-dhcp-client,iproute2,netbase,e2fsprogs,procps,sudo

# The sbin directories, for mkfs and sfdisk when run as a user.
PATH=$PATH:/usr/sbin:/sbin

# The versioned cloud kernel package behind the meta-package, and its
# version: part of the cache key.
_ci_kernel_package() {
	local pkg
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '/Depends: linux-image-/ { print $2; exit }')
	[[ -n $pkg ]] || die "cannot resolve linux-image-cloud-amd64 (run apt-get update)"
	echo "$pkg=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Version:/ { print $2; exit }')"
}

# The tools the build needs, by the Debian package that has them.
_ci_check_tools() {
	local t pkg missing=""
	for t in mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs debugfs:e2fsprogs sfdisk:fdisk \
		mkfs.vfat:dosfstools mcopy:mtools qemu-img:qemu-utils; do
		pkg=${t#*:}
		command -v "${t%%:*}" >/dev/null || missing+=" $pkg"
	done
	[[ -z $missing ]] || die "the cloud image needs:$missing (tools/setup-deps installs them)"
	[[ $(id -u) -eq 0 ]] || die "building the cloud image needs root (mmdebstrap --mode=root)"
}

# The root filesystem as a directory: mmdebstrap with no documentation,
# manual pages or translations, the .debs shared with earlier builds.
#   _ci_debootstrap DIR DEBCACHE
_ci_debootstrap() {
	local dir=$1 debs=$2 p
	local -a excl=()
	for p in /usr/share/man/'*' /usr/share/doc/'*' /usr/share/info/'*' /usr/share/locale/'*' \
		/usr/share/lintian/'*' /usr/share/bug/'*'; do
		excl+=(--dpkgopt="path-exclude=$p")
	done
	mkdir -p "$debs"
	# shellcheck disable=SC2016 # "$1" is the hooks' argument, not ours
	mmdebstrap --quiet --mode=root --variant=minbase --include="$_CI_PACKAGES" \
		"${excl[@]}" --dpkgopt='path-include=/usr/share/locale/locale.alias' \
		--skip=download/empty --skip=essential/unlink \
		--setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
		--setup-hook="sync-in $debs /var/cache/apt/archives/" \
		--customize-hook="sync-out /var/cache/apt/archives $debs" \
		--customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
		"$CLOUD_SUITE" "$dir" </dev/null >&2 ||
		die "mmdebstrap failed"
}

# The files a cloud image has that packages do not make: fstab, hostname,
# cloud-init's data sources, a network fallback, an empty machine-id (the
# first boot makes one, as on any cloud image).
#   _ci_configure DIR FSTAB
_ci_configure() {
	local dir=$1 fstab=$2
	printf '%s\n' "$fstab" >"$dir/etc/fstab"
	echo debian >"$dir/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$dir/etc/hosts"
	: >"$dir/etc/machine-id"
	rm -f "$dir/var/lib/dbus/machine-id"
	cat >"$dir/etc/cloud/cloud.cfg.d/01_husk_datasource.cfg" <<-'EOF'
		# NoCloud: a CIDATA volume (or none: the None source).
		datasource_list: [ NoCloud, None ]
	EOF
	# ifupdown reads cloud-init's rendering of the network config.
	mkdir -p "$dir/etc/network/interfaces.d"
	printf 'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n' \
		>"$dir/etc/network/interfaces"
	# The serial console gets its getty from console=ttyS0 (systemd's
	# getty generator); nothing to enable.
}

# grub.cfg as grub-mkconfig writes it on Debian 12 (grub 2.06) with
# Debian's cloud settings: GRUB_TIMEOUT=0, GRUB_TERMINAL="console serial"
# (so no gfxterm and no font), GRUB_SERIAL_COMMAND="serial --speed=115200",
# the console arguments in GRUB_CMDLINE_LINUX. Written from the template's
# shape rather than by running grub-mkconfig, which probes block devices a
# chroot does not have.
#   _ci_grub_cfg KVER ROOT_ARG ENTRY_UUID SEARCH_UUID PREFIX
# ROOT_ARG is root=...; ENTRY_UUID names the entries (the root file
# system's); SEARCH_UUID is the file system grub reads the kernel from;
# PREFIX is the kernel's directory there (/boot, or empty for a /boot
# partition).
_ci_grub_cfg() {
	local kver=$1 root=$2 id=$3 search=$4 prefix=$5
	local args="$CLOUD_CMDLINE_EXTRA "
	# The lines every entry loads its kernel with, at an indent.
	load() {
		local in=$1 extra=$2
		printf '%sload_video\n' "$in"
		printf '%sinsmod gzio\n' "$in"
		# shellcheck disable=SC2016 # grub's variable
		printf '%sif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n' "$in"
		printf '%sinsmod part_gpt\n' "$in"
		printf '%sinsmod ext2\n' "$in"
		printf '%ssearch --no-floppy --fs-uuid --set=root %s\n' "$in" "$search"
		printf "%secho\t'Loading Linux %s ...'\n" "$in" "$kver"
		printf '%slinux\t%s/vmlinuz-%s %s ro %s%s\n' "$in" "$prefix" "$kver" "$root" "$extra" "$args"
		printf "%secho\t'Loading initial ramdisk ...'\n" "$in"
		printf '%sinitrd\t%s/initrd.img-%s\n' "$in" "$prefix" "$kver"
	}
	cat <<-'EOF'
		#
		# DO NOT EDIT THIS FILE
		#
		# It is automatically generated by grub-mkconfig using templates
		# from /etc/grub.d and settings from /etc/default/grub
		#

		### BEGIN /etc/grub.d/00_header ###
		if [ -s $prefix/grubenv ]; then
		  set have_grubenv=true
		  load_env
		fi
		if [ "${next_entry}" ] ; then
		   set default="${next_entry}"
		   set next_entry=
		   save_env next_entry
		   set boot_once=true
		else
		   set default="0"
		fi

		if [ x"${feature_menuentry_id}" = xy ]; then
		  menuentry_id_option="--id"
		else
		  menuentry_id_option=""
		fi

		export menuentry_id_option

		if [ "${prev_saved_entry}" ]; then
		  set saved_entry="${prev_saved_entry}"
		  save_env saved_entry
		  set prev_saved_entry=
		  save_env prev_saved_entry
		  set boot_once=true
		fi

		function savedefault {
		  if [ -z "${boot_once}" ]; then
		    saved_entry="${chosen}"
		    save_env saved_entry
		  fi
		}
		function load_video {
		  if [ x$feature_all_video_module = xy ]; then
		    insmod all_video
		  else
		    insmod efi_gop
		    insmod efi_uga
		    insmod ieee1275_fb
		    insmod vbe
		    insmod vga
		    insmod video_bochs
		    insmod video_cirrus
		  fi
		}

		serial --speed=115200
		terminal_input console serial
		terminal_output console serial
		if [ x$feature_timeout_style = xy ] ; then
		  set timeout_style=menu
		  set timeout=0
		# Fallback normal timeout code in case the timeout_style feature is
		# unavailable.
		else
		  set timeout=0
		fi
		### END /etc/grub.d/00_header ###

		### BEGIN /etc/grub.d/05_debian_theme ###
		set menu_color_normal=cyan/blue
		set menu_color_highlight=white/blue
		### END /etc/grub.d/05_debian_theme ###

		### BEGIN /etc/grub.d/10_linux ###
	EOF
	printf "menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os \$menuentry_id_option 'gnulinux-simple-%s' {\n" "$id"
	load "	" ""
	printf '}\n'
	printf "submenu 'Advanced options for Debian GNU/Linux' \$menuentry_id_option 'gnulinux-advanced-%s' {\n" "$id"
	printf "\tmenuentry 'Debian GNU/Linux, with Linux %s' --class debian --class gnu-linux --class gnu --class os \$menuentry_id_option 'gnulinux-%s-advanced-%s' {\n" "$kver" "$kver" "$id"
	load "		" ""
	printf '\t}\n'
	printf "\tmenuentry 'Debian GNU/Linux, with Linux %s (recovery mode)' --class debian --class gnu-linux --class gnu --class os \$menuentry_id_option 'gnulinux-%s-recovery-%s' {\n" "$kver" "$kver" "$id"
	load "		" "single "
	printf '\t}\n'
	printf '}\n'
	cat <<-'EOF'

		### END /etc/grub.d/10_linux ###

		### BEGIN /etc/grub.d/20_linux_xen ###
		### END /etc/grub.d/20_linux_xen ###

		### BEGIN /etc/grub.d/30_os-prober ###
		### END /etc/grub.d/30_os-prober ###

		### BEGIN /etc/grub.d/30_uefi-firmware ###
		if [ "$grub_platform" = "efi" ]; then
			fwsetup --is-supported
			if [ "$?" = 0 ]; then
				menuentry 'UEFI Firmware Settings' $menuentry_id_option 'uefi-firmware' {
					fwsetup
				}
			fi
		fi
		### END /etc/grub.d/30_uefi-firmware ###

		### BEGIN /etc/grub.d/40_custom ###
		# This file provides an easy way to add custom menu entries.  Simply type the
		# menu entries you want to add after this comment.  Be careful not to change
		# the 'exec tail' line above.
		### END /etc/grub.d/40_custom ###

		### BEGIN /etc/grub.d/41_custom ###
		if [ -f  ${config_directory}/custom.cfg ]; then
		  source ${config_directory}/custom.cfg
		elif [ -z "${config_directory}" -a -f  $prefix/custom.cfg ]; then
		  source $prefix/custom.cfg
		fi
		### END /etc/grub.d/41_custom ###
	EOF
}

# An EFI system partition like the official image's: FAT, labelled UEFI,
# with the directory grub's EFI build would be in (empty: husk boots
# without firmware).
#   _ci_esp OUT MIB
_ci_esp() {
	local out=$1 mib=$2
	rm -f "$out"
	mkfs.vfat -F 32 -n UEFI -C "$out" $((mib * 1024)) >/dev/null
	mmd -i "$out" ::/EFI ::/EFI/debian
}

# Write a GPT disk: partitions given as "NUMBER:TYPE:MIB:IMAGE" in disk
# order from 1 MiB on (IMAGE may be "-": left empty); the last may have
# MIB 0, for the rest of the disk.
#   _ci_disk OUT TOTAL_MIB SPEC...
_ci_disk() {
	local out=$1 total=$2
	shift 2
	local spec n type mib img start=1 script="label: gpt"$'\n'
	rm -f "$out"
	truncate -s "${total}M" "$out"
	local -a place=()
	for spec in "$@"; do
		IFS=: read -r n type mib img <<<"$spec"
		# The last one runs to the backup GPT (33 sectors, within 1 MiB).
		((mib > 0)) || mib=$((total - start - 1))
		script+="$out$n : start=$((start * 2048)), size=$((mib * 2048)), type=$type"$'\n'
		[[ $img == - ]] || place+=("$start:$img")
		start=$((start + mib))
	done
	sfdisk --quiet --no-reread --no-tell-kernel "$out" <<<"$script" >/dev/null ||
		die "sfdisk failed for $out"
	for spec in "${place[@]}"; do
		dd if="${spec#*:}" of="$out" bs=1M seek="${spec%%:*}" conv=notrunc,sparse status=none
	done
}

# mkfs.ext4 of a directory, at a size in MiB.
#   _ci_ext4 OUT DIR UUID LABEL MIB
_ci_ext4() {
	rm -f "$1"
	truncate -s "${5}M" "$1"
	mkfs.ext4 -q -F -d "$2" -U "$3" -L "$4" "$1" "${5}M" || die "mkfs.ext4 failed for $1"
}

# The image with the whole system on partition 1, and the one with a
# separate /boot (16), from the root DIR (which this changes).
#   _ci_images DIR OUT KVER
_ci_images() {
	local root=$1 out=$2 kver=$3 work=$2/work
	local root_uuid boot_uuid root2_uuid rootfs_mib=$((CLOUD_DISK_MIB - 1 - 4 - 124 - 1))
	root_uuid=$(cat /proc/sys/kernel/random/uuid)
	root2_uuid=$(cat /proc/sys/kernel/random/uuid)
	boot_uuid=$(cat /proc/sys/kernel/random/uuid)
	mkdir -p "$work"
	_ci_esp "$work/esp.img" 124

	log "building the cloud test image: disk with one root file system"
	_ci_configure "$root" "UUID=$root_uuid / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1"
	mkdir -p "$root/boot/grub"
	_ci_grub_cfg "$kver" "root=UUID=$root_uuid" "$root_uuid" "$root_uuid" /boot \
		>"$root/boot/grub/grub.cfg"
	_ci_ext4 "$work/root.img" "$root" "$root_uuid" "$CLOUD_ROOT_LABEL" "$rootfs_mib"
	_ci_disk "$work/disk.raw" "$CLOUD_DISK_MIB" \
		"14:$_CI_BIOS_BOOT:4:-" "15:$_CI_ESP:124:$work/esp.img" "1:$_CI_LINUX:0:$work/root.img"
	qemu-img convert -c -O qcow2 "$work/disk.raw" "$out/debian-12-cloud.qcow2"
	rm -f "$work/disk.raw" "$work/root.img"

	log "building the cloud test image: disk with a separate /boot"
	local bootdir=$work/boot
	rm -rf "$bootdir"
	mv "$root/boot" "$bootdir"
	mkdir "$root/boot"
	_ci_configure "$root" "LABEL=$CLOUD_ROOT_LABEL / ext4 rw,discard,errors=remount-ro 0 1
LABEL=$CLOUD_BOOT_LABEL /boot ext4 defaults 0 2"
	_ci_grub_cfg "$kver" "root=LABEL=$CLOUD_ROOT_LABEL" "$root2_uuid" "$boot_uuid" "" \
		>"$bootdir/grub/grub.cfg"
	_ci_ext4 "$work/boot.img" "$bootdir" "$boot_uuid" "$CLOUD_BOOT_LABEL" 256
	_ci_ext4 "$work/root.img" "$root" "$root2_uuid" "$CLOUD_ROOT_LABEL" $((rootfs_mib - 256))
	_ci_disk "$work/disk.raw" "$CLOUD_DISK_MIB" \
		"14:$_CI_BIOS_BOOT:4:-" "15:$_CI_ESP:124:$work/esp.img" "16:$_CI_XBOOTLDR:256:$work/boot.img" \
		"1:$_CI_LINUX:0:$work/root.img"
	qemu-img convert -c -O qcow2 "$work/disk.raw" "$out/debian-12-cloud-boot.qcow2"

	# The kernel and initramfs handed over explicitly by image-boot-kernel,
	# read back from the built file system (not from the directory) to
	# check that they are there.
	debugfs -R "dump /vmlinuz-$kver $out/vmlinuz" "$work/boot.img" >/dev/null 2>&1
	debugfs -R "dump /initrd.img-$kver $out/initrd.img" "$work/boot.img" >/dev/null 2>&1
	[[ -s $out/vmlinuz && -s $out/initrd.img ]] || die "cannot read the kernel back out of the image"
	cat >"$out/image.env" <<-EOF
		CLOUD_KVER=$kver
		CLOUD_ROOT_UUID=$root_uuid
		CLOUD_BOOT_ROOT_UUID=$root2_uuid
		CLOUD_BOOT_UUID=$boot_uuid
		CLOUD_ROOT_LABEL=$CLOUD_ROOT_LABEL
		CLOUD_ROOT_PART_OFFSET=$(((1 + 4 + 124) * 1048576))
		CLOUD_CMDLINE_EXTRA='$CLOUD_CMDLINE_EXTRA'
	EOF
	rm -rf "$work"
}

# The initramfs must be able to find the root disk on virtio: ask the
# image's own lsinitramfs (its decompressors are there).
#   _ci_check_initrd ROOT KVER
_ci_check_initrd() {
	local m listing
	listing=$(chroot "$1" lsinitramfs "/boot/initrd.img-$2") ||
		die "lsinitramfs cannot read the image's initrd.img-$2"
	for m in virtio_pci virtio_blk; do
		grep -q "/$m\.ko" <<<"$listing" || die "the image's initramfs has no $m module"
	done
}

# Build the image unless the cache has it; sets CLOUD_DIR.
cloud_image() {
	local cache key kpkg dir tmp kver
	cache=$(husk_cache_dir)/images
	mkdir -p "$cache"
	kpkg=$(_ci_kernel_package)
	key=$({ sha256sum <"$_CI_SELF"; echo "$kpkg $_CI_PACKAGES"; } | sha256sum | cut -c1-12)
	dir=$cache/debian-12-$key
	CLOUD_DIR=$dir
	[[ -e $dir/.complete ]] && return 0
	_ci_check_tools
	local t0=$SECONDS
	log "building the cloud test image ($kpkg; a few minutes, once) in $dir"
	tmp=$cache/.build-$key
	rm -rf "$tmp"
	mkdir -p "$tmp/out"
	log "building the cloud test image: mmdebstrap $CLOUD_SUITE"
	_ci_debootstrap "$tmp/root" "$cache/debs"
	kver=$(find "$tmp/root/lib/modules" -mindepth 1 -maxdepth 1 -name '*-cloud-amd64' -printf '%f\n' | head -n 1)
	[[ -e $tmp/root/boot/initrd.img-$kver ]] || die "mmdebstrap made no initramfs for $kver"
	_ci_check_initrd "$tmp/root" "$kver"
	_ci_images "$tmp/root" "$tmp/out" "$kver"
	rm -rf "$tmp/root"
	log "building the cloud test image: the volume for the nested test host"
	_ci_ext4 "$tmp/volume.ext4" "$tmp/out" "$(cat /proc/sys/kernel/random/uuid)" husk-images \
		$(($(du -sm "$tmp/out" | cut -f1) * 11 / 10 + 32))
	mv "$tmp/volume.ext4" "$tmp/out/"
	touch "$tmp/out/.complete"
	# Older images go: each is about a gigabyte with its volume.
	local old
	for old in "$cache"/debian-12-* "$cache"/.build-*; do
		[[ $old == "$dir" || $old == "$tmp" ]] || rm -rf "$old"
	done
	mv "$tmp/out" "$dir"
	rm -rf "$tmp"
	log "built the cloud test image in $((SECONDS - t0))s: $(du -sh "$dir"/*.qcow2 | tr '\t\n' ' ')"
}

# A NoCloud seed: a small vfat volume labelled CIDATA with user-data and
# meta-data at its root.
#   cloud_seed OUT USER_DATA META_DATA
cloud_seed() {
	local out=$1 dir
	rm -f "$out"
	mkfs.vfat -n CIDATA -C "$out" 2048 >/dev/null || die "mkfs.vfat failed for $out"
	dir=$(mktemp -d)
	cp "$2" "$dir/user-data"
	cp "$3" "$dir/meta-data"
	mcopy -i "$out" "$dir/user-data" "$dir/meta-data" :: || { rm -rf "$dir"; die "mcopy failed for $out"; }
	rm -rf "$dir"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	case ${1:-} in
	--seed)
		[[ $# -eq 4 ]] || die "usage: mkcloudimage.sh --seed OUT USER_DATA META_DATA"
		cloud_seed "$2" "$3" "$4"
		;;
	"")
		cloud_image
		printf 'CLOUD_DIR=%q\n' "$CLOUD_DIR"
		cat "$CLOUD_DIR/image.env"
		;;
	*) die "usage: mkcloudimage.sh [--seed OUT USER_DATA META_DATA]" ;;
	esac
fi
