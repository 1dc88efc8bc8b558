#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A container image for the husk run --image tests, made from Debian's
# busybox-static with nothing but tar, gzip and sha256sum: an OCI image
# layout folder, and the same as an OCI archive (what `docker save` writes
# since Docker 25).
#
#   mkociimage.sh OUTDIR        makes OUTDIR/layout/ and OUTDIR/image.tar
#
# Layer 1 (plain tar): busybox and its applets, /etc/passwd and /etc/group
# with a user "app" (1000:1000, also in group "extra" 2000), /etc/motd "one",
# /etc/doomed, /www/index.html and /www/old.html, /bin/entry (prints its
# arguments, then runs them). Layer 2 (gzip): deletes /etc/doomed (a
# whiteout), changes /etc/motd to "two", and makes /www opaque with a new
# index.html (old.html is gone). Config: Entrypoint [/bin/entry], Cmd
# [sh -c "echo default cmd"], Env PATH and GREETING, WorkingDir /srv/work
# (not in the image: it is made), User app. Tagged "1.0".
set -euo pipefail

LIB=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# shellcheck source=guest-tests/lib/mkinitramfs.sh
source "$LIB/mkinitramfs.sh"

out=${1:?usage: mkociimage.sh OUTDIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# A reproducible tar of DIR's contents (owners root, fixed times).
pack() {
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 \
		-C "$1" -cf "$2" .
}

one=$work/one two=$work/two
mkdir -p "$one"/{bin,etc,www,proc,sys,dev,tmp,run,root,home/app}
bb=$(_mi_static_busybox)
cp "$bb" "$one/bin/busybox"
for applet in $("$bb" --list); do
	[[ $applet == busybox ]] || ln -s busybox "$one/bin/$applet"
done
cat >"$one/bin/entry" <<'EOF'
#!/bin/sh
echo "entry: $*"
exec "$@"
EOF
chmod 755 "$one/bin/entry"
chmod 1777 "$one/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$one/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n' >"$one/etc/group"
echo one >"$one/etc/motd"
echo doomed >"$one/etc/doomed"
echo "old page" >"$one/www/old.html"
echo "layer one page" >"$one/www/index.html"

mkdir -p "$two/etc" "$two/www"
: >"$two/etc/.wh.doomed"
echo two >"$two/etc/motd"
: >"$two/www/.wh..wh..opq"
echo "husk oci page" >"$two/www/index.html"

pack "$one" "$work/layer1.tar"
pack "$two" "$work/layer2.tar"
gzip -n -9 -c "$work/layer2.tar" >"$work/layer2.tar.gz"

layout=$out/layout
rm -rf "$layout" "$out/image.tar"
mkdir -p "$layout/blobs/sha256"
blob() { # FILE: copied into the layout; prints its digest
	local d
	d=$(sha "$1")
	cp "$1" "$layout/blobs/sha256/$d"
	echo "sha256:$d"
}
l1=$(blob "$work/layer1.tar")
l2=$(blob "$work/layer2.tar.gz")
diff1=sha256:$(sha "$work/layer1.tar")
diff2=sha256:$(sha "$work/layer2.tar")

cat >"$work/config.json" <<EOF
{"architecture":"amd64","os":"linux",
 "config":{"Env":["PATH=/bin","GREETING=hello from the image"],
  "Entrypoint":["/bin/entry"],"Cmd":["sh","-c","echo default cmd"],
  "WorkingDir":"/srv/work","User":"app"},
 "rootfs":{"type":"layers","diff_ids":["$diff1","$diff2"]}}
EOF
cfg=$(blob "$work/config.json")

cat >"$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$cfg","size":$(size "$work/config.json")},
 "layers":[
  {"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$l1","size":$(size "$work/layer1.tar")},
  {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$l2","size":$(size "$work/layer2.tar.gz")}]}
EOF
man=$(blob "$work/manifest.json")

cat >"$layout/index.json" <<EOF
{"schemaVersion":2,"manifests":[
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$man","size":$(size "$work/manifest.json"),
  "platform":{"os":"linux","architecture":"amd64"},
  "annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}
EOF
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
tar --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$out/image.tar" .
