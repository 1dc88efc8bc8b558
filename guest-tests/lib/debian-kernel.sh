#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Fetch and unpack a Debian kernel package without installing it:
#   debian-kernel.sh FLAVOUR        (FLAVOUR: cloud-amd64, amd64 or arm64)
# prints shell assignments:
#   KERNEL_VERSION=6.1.0-56-cloud-amd64
#   KERNEL_VMLINUZ=/root/.cache/husk/kernels/.../boot/vmlinuz-...
#   KERNEL_MODULES=/root/.cache/husk/kernels/.../lib/modules/...
# When sourced, call debian_kernel FLAVOUR and read those variables.
#
# The version is resolved through apt-cache (the linux-image-FLAVOUR
# meta-package depends on the current versioned one), never hard-coded.
# Unpacked trees are cached per package version; a second call is a no-op.
# arm64 is Debian's arm64 package (its architecture added to dpkg with
# `dpkg --add-architecture arm64`), for the aarch64 test host: it is only
# unpacked, so it needs no emulation to fetch.
set -euo pipefail

_DK_LIB=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=guest-tests/lib/common.sh
source "$_DK_LIB/common.sh"

# apt under the machine's apt lock: several checkouts may share dpkg.
_dk_apt() {
	if command -v flock >/dev/null; then
		flock /tmp/apt.lock "$@"
	else
		"$@"
	fi
}

# The versioned package behind the meta-package, e.g.
# linux-image-6.1.0-56-cloud-amd64.
_dk_resolve_package() {
	local flavour=$1 pkg
	pkg=$(apt-cache depends "linux-image-$flavour$(_dk_arch_suffix "$flavour")" 2>/dev/null |
		awk '/Depends: linux-image-/ { print $2; exit }')
	echo "$pkg"
}

# apt's architecture qualifier for a flavour not of this machine's
# architecture: apt-cache names such packages PKG:ARCH.
_dk_arch_suffix() {
	local arch
	arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
	case $1 in
	arm64) [[ $arch == arm64 ]] || echo :arm64 ;;
	*) [[ $arch == amd64 ]] || echo :amd64 ;;
	esac
}

_dk_package_version() {
	apt-cache show --no-all-versions "$1" 2>/dev/null |
		awk '/^Version:/ { print $2; exit }'
}

# Without network or package lists, fall back to the newest tree already in
# the cache so that an offline rerun still works.
_dk_cached_tree() {
	local flavour=$1 cache=$2
	local d
	for d in "$cache"/linux-image-*; do
		[[ $(basename "$d") =~ ^linux-image-[0-9.]+-[0-9]+-${flavour}_ ]] || continue
		[[ -e $d/.complete ]] && echo "$d"
	done | sort -V | tail -n 1
}

_dk_download() {
	local pkg=$1 version=$2 tree=$3 tmp
	tmp=$(mktemp -d "$tree.tmp.XXXXXX")
	log "downloading $pkg $version"
	# apt-get download writes into the current directory; it needs no root.
	# As root, apt would hand the download to its _apt user, who cannot
	# write into our cache; download as ourselves instead.
	(cd "$tmp" && _dk_apt apt-get download -qq -o APT::Sandbox::User="$(id -un)" \
		"$pkg=$version" </dev/null >/dev/null) ||
		{ rm -rf "$tmp"; die "apt-get download $pkg=$version failed"; }
	mkdir -p "$tmp/root"
	dpkg-deb -x "$tmp"/*.deb "$tmp/root"
	# The .deb carries no modules.dep (its postinst runs depmod on install),
	# so make one for the unpacked tree.
	local kver
	kver=$(ls "$tmp/root/lib/modules")
	command -v depmod >/dev/null || PATH=$PATH:/usr/sbin:/sbin
	depmod -b "$tmp/root" "$kver" || { rm -rf "$tmp"; die "depmod failed for $kver"; }
	rm -f "$tmp"/*.deb
	touch "$tmp/root/.complete"
	# Rename last so that an interrupted download never looks complete.
	rm -rf "$tree"
	mv "$tmp/root" "$tree"
	rm -rf "$tmp"
}

debian_kernel() {
	local flavour=$1 cache pkg version tree
	case $flavour in
	cloud-amd64 | amd64 | arm64) ;;
	*) die "unknown kernel flavour '$flavour' (want cloud-amd64, amd64 or arm64)" ;;
	esac
	cache=$(husk_cache_dir)/kernels
	mkdir -p "$cache"
	pkg=$(_dk_resolve_package "$flavour")
	if [[ -z $pkg && $(id -u) -eq 0 && -z ${_DK_UPDATED:-} ]]; then
		# A fresh machine may have no package lists yet.
		_dk_apt apt-get update -qq </dev/null >/dev/null 2>&1 || true
		_DK_UPDATED=1
		pkg=$(_dk_resolve_package "$flavour")
	fi
	if [[ -n $pkg ]]; then
		version=$(_dk_package_version "$pkg")
		tree=$cache/${pkg%:*}_$version
		[[ -e $tree/.complete ]] || _dk_download "$pkg" "$version" "$tree"
	else
		tree=$(_dk_cached_tree "$flavour" "$cache")
		[[ -n $tree ]] || die "cannot resolve linux-image-$flavour (apt-cache knows nothing; run apt-get update)"
		log "apt-cache cannot resolve linux-image-$flavour; using cached $(basename "$tree")"
	fi
	KERNEL_VERSION=$(ls "$tree/lib/modules")
	KERNEL_VMLINUZ=$tree/boot/vmlinuz-$KERNEL_VERSION
	KERNEL_MODULES=$tree/lib/modules/$KERNEL_VERSION
	[[ -r $KERNEL_VMLINUZ ]] || die "no vmlinuz in $tree"
}

# Debian's static busybox for ARCH, for a test host or guest of another
# architecture than this machine's (whose busybox-static is installed):
# busybox-static:ARCH fetched and unpacked, cached per version like the
# kernels; sets BUSYBOX to its path. Offline, the newest cached one.
debian_static_busybox() {
	local arch=$1 cache version tree tmp
	cache=$(husk_cache_dir)/busybox
	mkdir -p "$cache"
	version=$(_dk_package_version "busybox-static:$arch")
	if [[ -n $version ]]; then
		tree=$cache/busybox-static_${version#*:}_$arch
	else
		tree=$(find "$cache" -maxdepth 1 -name "busybox-static_*_$arch" | sort -V | tail -n 1)
		[[ -n $tree ]] || die "cannot resolve busybox-static:$arch (run dpkg --add-architecture $arch and apt-get update)"
	fi
	if [[ ! -e $tree/.complete ]]; then
		tmp=$(mktemp -d "$cache/tmp.XXXXXX")
		log "downloading busybox-static:$arch $version"
		(cd "$tmp" && _dk_apt apt-get download -qq -o APT::Sandbox::User="$(id -un)" \
			"busybox-static:$arch=$version" </dev/null >/dev/null) ||
			{ rm -rf "$tmp"; die "apt-get download busybox-static:$arch=$version failed"; }
		dpkg-deb -x "$tmp"/*.deb "$tmp/root"
		touch "$tmp/root/.complete"
		rm -rf "$tree"
		mv "$tmp/root" "$tree"
		rm -rf "$tmp"
	fi
	BUSYBOX=$tree/bin/busybox
	[[ -x $BUSYBOX ]] || die "no bin/busybox in $tree"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	[[ $# -eq 1 ]] || { echo "usage: $0 cloud-amd64|amd64|arm64" >&2; exit 2; }
	debian_kernel "$1"
	printf 'KERNEL_VERSION=%q\nKERNEL_VMLINUZ=%q\nKERNEL_MODULES=%q\n' \
		"$KERNEL_VERSION" "$KERNEL_VMLINUZ" "$KERNEL_MODULES"
fi
