# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Whole-VM tests of virtio-fs (--share), sourced by vm-tests.sh: one boot
# runs the workout in fs-workout.sh against two shares, another boots with
# a shared directory as its root filesystem.

FS_TESTS=(fs-workout fs-big-file fs-host-change fs-escape fs-read-only fs-root fs-submount fs-xattrs
	fs-id-maps fs-counts)

# The shares and what lies beside them, fresh for each run.
make_fs_tree() {
	local top=$1
	rm -rf "$top"
	mkdir -p "$top/share" "$top/ro" "$top/nox" "$top/ids"
	echo "ours on the host" >"$top/ids/mine"
	echo "from the host" >"$top/share/hostfile"
	echo "no xattrs here" >"$top/nox/f"
	echo "do not move me out" >"$top/share/victim"
	echo "secret" >"$top/outside"
	echo "read-only data" >"$top/ro/data"
	ln -s "$top/outside" "$top/share/planted-abs"
	ln -s ../outside "$top/share/planted-rel"
}

listing() {
	(cd "$1" && find . | sort | tr '\n' ' ')
}

test_fs() {
	local top=$LOGDIR/fs
	make_fs_tree "$top"
	local outside_before parent_before ro_before
	outside_before=$(sha256sum <"$top/outside")
	parent_before=$(ls "$top" | tr '\n' ' ')
	ro_before=$(listing "$top/ro")
	# Another file system inside the share (root only: a tmpfs mount).
	local sub=""
	mkdir "$top/share/sub"
	if mount -t tmpfs -o size=1m husk-sub "$top/share/sub" 2>/dev/null; then
		echo "on another file system" >"$top/share/sub/inner"
		sub=1
	fi
	# The xattr namespace this host lets husk write: trusted.* as root.
	local xattr_name=user.husk
	[[ $(id -u) != 0 ]] || xattr_name=trusted.husk
	echo "$xattr_name" >"$top/share/xattr-name"
	# A file capability on a share file (where this host lets us set one).
	echo "capped" >"$top/share/capped"
	"$ASSETS/fs/xattr-probe" --set-cap "$top/share/capped" >/dev/null 2>&1 || rm "$top/share/capped"
	vm_start fs fs fs --timings --share "$top/share:work,submounts" --share "$top/ro:data,ro" \
		--share "$top/nox:nox,noxattr" --share "$top/ids:ids,uid=$(id -u):4321,gid=$(id -g):4322"
	if vm_wait_for '^HUSK-FS-WAIT'; then
		echo "changed on the host" >"$top/share/late"
	fi
	vm_wait
	[[ -z $sub ]] || umount "$top/share/sub"
	if ! guest_came_up || [[ $(fact fs_mounted) != yes ]]; then
		local t
		for t in "${FS_TESTS[@]:0:5}" fs-submount fs-xattrs fs-id-maps fs-counts; do
			fail "$t" "the guest did not mount the share (status $VM_RC)" "$VM_LOG"
		done
		return 0
	fi
	local got want
	got="$(fact host_file)|$(fact append)|$(fact truncate)|$(fact rename_over)|$(fact tree)|$(fact symlink)|$(fact hardlink)|$(fact chmod)|$(fact unlink)|$(fact rmdir_nonempty)"
	want="from the host|one two |3:one|replaced|5|f:replaced|2|751|1|refused"
	# And the host sees what the guest did.
	local host_side
	host_side="$(cat "$top/share/f" 2>/dev/null)|$(stat -c %a "$top/share/f" 2>/dev/null)|$(cat "$top/share/tree/a/b/c/leaf" 2>/dev/null)|$(readlink "$top/share/link")"
	if [[ $got == "$want" && $host_side == "replaced|751|leaf|f" && $VM_RC == 0 &&
		$(fact fs_unmounted) == yes ]]; then
		pass fs-workout
	else
		fail fs-workout "guest saw '$got' (want '$want'); host sees '$host_side'; status $VM_RC" "$VM_LOG"
	fi
	local host_sha
	host_sha=$(sha256sum "$top/share/big" 2>/dev/null | cut -d' ' -f1)
	if [[ -n $host_sha && $host_sha == "$(fact big_sha)" && $(stat -c %s "$top/share/big") == 104857600 ]]; then
		pass fs-big-file
	else
		fail fs-big-file "guest sha256 '$(fact big_sha)', host '$host_sha'" "$VM_LOG"
	fi
	if [[ $(fact late) == "changed on the host" ]]; then
		pass fs-host-change
	else
		fail fs-host-change "the guest read '$(fact late)' for a file the host wrote while mounted" "$VM_LOG"
	fi
	# Nothing beside the share changed, and the planted links led nowhere.
	local outside_after parent_after
	outside_after=$(sha256sum <"$top/outside")
	parent_after=$(ls "$top" | tr '\n' ' ')
	if [[ $outside_after == "$outside_before" && $parent_after == "$parent_before" &&
		$(fact planted_abs) != *secret* && $(fact planted_rel) != *secret* &&
		$(fact hardlink_out) == refused && $(fact victim_in_guest) == "do not move me out" &&
		! -e $top/share/victim ]]; then
		pass fs-escape
	else
		fail fs-escape "outside $([[ $outside_after == "$outside_before" ]] && echo unchanged || echo CHANGED), beside the share '$parent_after' (was '$parent_before'), planted links read '$(fact planted_abs)'/'$(fact planted_rel)', hard link out $(fact hardlink_out)" "$VM_LOG"
	fi
	local ro_got
	ro_got="$(fact ro_data)|$(fact ro_create)|$(fact ro_append)|$(fact ro_unlink)|$(fact ro_mkdir)"
	if [[ $ro_got == "read-only data|refused|refused|refused|refused" &&
		$(listing "$top/ro") == "$ro_before" && $(cat "$top/ro/data") == "read-only data" ]]; then
		pass fs-read-only
	else
		fail fs-read-only "guest: '$ro_got'; host listing '$(listing "$top/ro")'" "$VM_LOG"
	fi
	check_xattrs "$top/share" "$xattr_name"
	check_id_maps "$top/ids"
	check_counts "$VM_LOG.err"
	if [[ -z $sub ]]; then
		skip fs-submount "cannot mount a tmpfs inside the share here (needs root)"
	elif [[ $(fact submount) == "apart:on another file system" ]]; then
		pass fs-submount
	else
		fail fs-submount "the guest saw '$(fact submount)' (want 'apart:on another file system')" "$VM_LOG"
	fi
}

# --timings at exit: the workout's requests on share "work" by opcode (it
# makes files, so CREATE and WRITE are among them), and how the request
# queue's thread found them.
check_counts() {
	local mix queue
	mix=$(grep -m1 '^husk: share work: [0-9]* requests (' "$1")
	queue=$(grep -m1 '^husk: virtio-fs queue 1: [0-9]* wake-ups, [0-9]* polls caught work' "$1")
	if grep -qE '[( ]CREATE [1-9]' <<<"$mix" && grep -qE '[( ]WRITE [1-9]' <<<"$mix" && [[ -n $queue ]]; then
		pass fs-counts
	else
		fail fs-counts "--timings printed '${mix:-no share line}' and '${queue:-no queue line}'" "$1"
	fi
}

# The guest's xattr round trip on the share, its refusal on the noxattr
# share, and of a security.* name anywhere, where the host file system
# takes xattrs at all; and, where the host let us give a file a
# capability, the guest's write to it works and takes the capability away.
check_xattrs() {
	local dir=$1 name=$2 want_off="set: Operation not supported"
	local want_security="set: Operation not permitted" capped="ok|no" capped_got="ok|no"
	if [[ -e $dir/capped ]]; then
		capped_got="$(fact capped_write)|$("$ASSETS/fs/xattr-probe" --has-cap "$dir/capped" 2>&1)"
	fi
	# The guest's helper is a static program: it asks this host's file system too.
	if [[ $("$ASSETS/fs/xattr-probe" "$dir/hostfile" "$name" x 2>&1) != ok ]]; then
		skip fs-xattrs "the host file system under the share takes no $name xattrs"
	elif [[ $(fact xattr) == ok && $(fact xattr_off) == "$want_off" &&
		$(fact xattr_security) == "$want_security" && $capped_got == "$capped" ]]; then
		pass fs-xattrs
	else
		fail fs-xattrs "the guest's round trip of $name gave '$(fact xattr)' (want 'ok'); on the noxattr share '$(fact xattr_off)' (want '$want_off'); security.husk '$(fact xattr_security)' (want '$want_security'); write to a file with a capability, and is it left: '$capped_got' (want '$capped')" "$VM_LOG"
	fi
}

# uid=OURS:4321,gid=OURS:4322: the guest sees our files as 4321's, and a
# chown to its root (0:0) gives the file to 4321 on the host: the swap.
check_id_maps() {
	local dir=$1 want_guest="4321:4322|4321:4322|0:0" got host
	got="$(fact ids_host)|$(fact ids_made)|$(fact ids_chown)"
	host=$(stat -c %u:%g "$dir/mine")
	if [[ $(id -u) != 0 ]]; then
		skip fs-id-maps "the guest's chown to root needs husk to run as root"
	elif [[ $got == "$want_guest" && $host == 4321:4322 && $(stat -c %u "$dir/made") == 0 ]]; then
		pass fs-id-maps
	else
		fail fs-id-maps "guest saw '$got' (want '$want_guest'); on the host mine is $host (want 4321:4322), made is $(stat -c %u:%g "$dir/made" 2>&1) (want 0:0)" "$VM_LOG"
	fi
}

# A directory as the root filesystem: the guest switches to it and writes there.
test_fs_root() {
	local root=$LOGDIR/fs-root
	rm -rf "$root"
	cp -a "$ASSETS/fs-root" "$root"
	vm_boot fs-root fs fs-root --share "$root:rootfs"
	local want got
	want=$(fact root_written_sha)
	got=$(sha256sum "$root/written" 2>/dev/null | cut -d' ' -f1)
	if [[ $VM_RC == 0 && -n $want && $want == "$got" ]]; then
		pass fs-root
	else
		fail fs-root "status $VM_RC, guest wrote sha256 '${want:-nothing}', the directory holds '${got:-nothing}'" "$VM_LOG"
	fi
}

run_fs_tests() {
	if [[ ! -r $ASSETS/fs/initrd.cpio.gz ]]; then
		local t
		for t in "${FS_TESTS[@]}"; do skip "$t" "no virtio-fs guest image in the assets"; done
		return 0
	fi
	test_fs
	test_fs_root
}
