#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Pack a static init program as the only file of an initramfs:
#   make-initramfs.sh INIT OUTPUT.cpio.gz
# Runs at build time as any user: no device nodes (the init mounts devtmpfs
# itself), owner root:root and time 0 in the archive so the image does not
# depend on who built it or when.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "husk-build: usage: $0 INIT OUTPUT" >&2; exit 2; }
init=$1 out=$2

root=$(mktemp -d "${TMPDIR:-/tmp}/husk-hello.XXXXXX")
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{dev,proc,sys}
cp "$init" "$root/init"
chmod 755 "$root/init"
find "$root" -exec touch -h -d @0 {} +

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc -R 0:0 --quiet) | gzip -9 -n >"$out.tmp"
mv "$out.tmp" "$out"
