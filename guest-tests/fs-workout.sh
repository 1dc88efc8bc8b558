#!/bin/sh
# SPDX-License-Identifier: MIT
# shellcheck shell=dash
#
# The virtio-fs workout, sourced by guest-init.sh (husk_action=fs). The
# host shares a read-write directory as "work" and a read-only one as
# "data"; every check is a HUSK-FACT line the host compares.
mkdir -p /mnt /ro
mount -t virtiofs work /mnt && fact fs_mounted yes
mount -t virtiofs data /ro && fact fs_ro_mounted yes
cd /mnt || exit 1

fact host_file "$(cat hostfile)"
echo one >f && echo two >>f && fact append "$(tr '\n' ' ' <f)"
truncate -s 3 f && fact truncate "$(stat -c %s f):$(cat f)"
echo replaced >g && mv g f && fact rename_over "$(cat f)"
mkdir -p tree/a/b/c && echo leaf >tree/a/b/c/leaf && fact tree "$(find tree | wc -l)"
ln -s f link && fact symlink "$(readlink link):$(cat link)"
ln f hard && fact hardlink "$(stat -c %h f)"
chmod 751 f && fact chmod "$(stat -c %a f)"
rm hard && fact unlink "$(stat -c %h f)"
rmdir tree/a/b/c 2>/dev/null || fact rmdir_nonempty refused
dd if=/dev/urandom of=big bs=1M count=100 2>/dev/null
sync
fact big_sha "$(sha256sum big | cut -d' ' -f1)"

# The host changes the share while it is mounted: the guest sees it.
echo "HUSK-FS-WAIT"
i=0
while [ ! -e late ] && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
fact late "$(cat late 2>/dev/null)"

# Escapes: symlinks the host planted, symlinks and renames of our own.
fact planted_abs "$(cat planted-abs 2>&1 | head -c 40)"
fact planted_rel "$(cat planted-rel 2>&1 | head -c 40)"
ln -s ../outside g-rel && echo pwned >g-rel 2>/dev/null
ln -s /proc/self/root/../outside g-proc && echo pwned >g-proc 2>/dev/null
ln f /outside-link 2>/dev/null && fact hardlink_out made || fact hardlink_out refused
mv victim /victim-moved 2>/dev/null
fact victim_in_guest "$(cat /victim-moved 2>/dev/null)"

# Another host file system mounted inside the share: a submount here,
# with its own device number, so inode numbers cannot collide.
if [ -e sub/inner ]; then
	apart=same
	[ "$(stat -c %d sub/.)" != "$(stat -c %d .)" ] && apart=apart
	fact submount "$apart:$(cat sub/inner)"
	umount sub 2>/dev/null
fi

# The read-only share refuses every change.
fact ro_data "$(cat /ro/data)"
( echo x >/ro/new ) 2>/dev/null && fact ro_create ok || fact ro_create refused
( echo x >>/ro/data ) 2>/dev/null && fact ro_append ok || fact ro_append refused
rm /ro/data 2>/dev/null && fact ro_unlink ok || fact ro_unlink refused
mkdir /ro/d 2>/dev/null && fact ro_mkdir ok || fact ro_mkdir refused

# Extended attributes (a name the host chose: trusted.* needs root there):
# a round trip on the share, refused on the noxattr share "nox".
name=$(cat xattr-name)
fact xattr "$(xattr-probe f "$name" hello 2>&1)"
# security.* (file capabilities, labels) is the host's to set, never the guest's.
fact xattr_security "$(xattr-probe f security.husk hello 2>&1)"
# But a capability the host gave a file goes when the guest writes to it
# (its kernel removes it first, as the host's would): the write must work.
if [ -e capped ]; then
	( echo more >>capped ) 2>/tmp/err && fact capped_write ok || fact capped_write "$(cat /tmp/err)"
fi
mkdir -p /nox
mount -t virtiofs nox /nox && fact xattr_off "$(xattr-probe /nox/f "$name" hello 2>&1)"
umount /nox 2>/dev/null

# "ids" maps the host's owner of its files to 4321:4322 (uid=, gid=).
mkdir -p /ids
if mount -t virtiofs ids /ids; then
	fact ids_host "$(stat -c %u:%g /ids/mine)"
	echo new >/ids/made && fact ids_made "$(stat -c %u:%g /ids/made)"
	chown 0:0 /ids/mine && fact ids_chown "$(stat -c %u:%g /ids/mine)"
	umount /ids
fi
cd /
umount /mnt && umount /ro && fact fs_unmounted yes
