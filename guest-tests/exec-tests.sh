# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Whole-VM tests of `husk exec`, sourced by vm-tests.sh (whose pass, fail,
# skip and HUSK_CMD they use). Each runs husk exec on the (test) host with
# the cloud kernel and the pruned module tree in $ASSETS/exec-modules; the
# host's root is what the guest sees as /, read-only under a tmpfs layer.

EXEC_TESTS=(
	exec-status exec-signal exec-streams exec-10mib exec-timeout exec-shared-write
	exec-snapshot exec-parallel exec-hostile-ctl exec-escape-root exec-escape-share
)

# husk_exec NAME [OPTION...] -- COMMAND...: runs husk exec; its status in
# EXEC_RC and $LOGDIR/NAME.rc ("timeout" when it was killed after the boot
# timeout), its wall time in EXEC_WALL, the command's stdout and stderr in
# $LOGDIR/NAME.out and NAME.err.
husk_exec() {
	local name=$1
	shift
	EXEC_OUT=$LOGDIR/$name.out EXEC_ERR=$LOGDIR/$name.err
	# Where vm_wait puts the thread dump of a run that did not end in time.
	# shellcheck disable=SC2034 # read by vm_wait
	local VM_LOG=$LOGDIR/$name.log
	# vm_wait bounds it, not timeout(1): busybox's leaves a watcher process
	# with husk's arguments behind for a second, which exec-timeout would find.
	VM_T0=$(now)
	"${HUSK_CMD[@]}" exec --kernel "$ASSETS/cloud/vmlinuz" --modules "$ASSETS/exec-modules" \
		--console="$LOGDIR/$name.console" "$@" </dev/null >"$EXEC_OUT" 2>"$EXEC_ERR" &
	VM_PID=$!
	vm_wait
	EXEC_RC=$VM_RC EXEC_WALL=$VM_WALL
	echo "$EXEC_RC" >"$LOGDIR/$name.rc"
}

# A failure shows husk's stderr, then the end of the guest's console.
exec_fail() {
	fail "$1" "$2" "$EXEC_ERR"
	exec_show_run "${EXEC_ERR%.err}"
}

# The end of run BASE's console and, if it timed out, where husk's threads were.
exec_show_run() {
	local console=$1.console threads=$1.log.threads
	if [[ -s $console ]]; then
		echo "  --- the guest's console ($console):"
		tail -n 25 "$console" | tr -d '\r' | sed 's/^/  | /'
	fi
	if [[ -s $threads ]]; then
		echo "  --- husk's threads when it timed out ($threads):"
		sed 's/^/  | /' "$threads"
	fi
}

test_exec_status() {
	local want got=""
	for want in 0 1 42; do
		husk_exec exec-status-$want --mount /tmp -- sh -c "exit $want"
		got+="$EXEC_RC "
	done
	if [[ $got == "0 1 42 " ]]; then
		pass exec-status
	else
		exec_fail exec-status "statuses were '$got', expected '0 1 42 '"
	fi
}

test_exec_signal() {
	husk_exec exec-signal --mount /tmp -- sh -c 'kill -KILL $$'
	if [[ $EXEC_RC == 137 ]]; then
		pass exec-signal
	else
		exec_fail exec-signal "a command killed by SIGKILL gave $EXEC_RC, expected 137"
	fi
}

test_exec_streams() {
	husk_exec exec-streams --mount /tmp -- sh -c 'echo to-out; echo to-err >&2; echo more-out'
	local out err
	out=$(cat "$EXEC_OUT")
	err=$(cat "$EXEC_ERR")
	if [[ $EXEC_RC == 0 && $out == $'to-out\nmore-out' && $err == to-err ]]; then
		pass exec-streams
	else
		exec_fail exec-streams "status $EXEC_RC, stdout '$out', stderr '$err'"
	fi
}

# 10 MiB of random bytes on stdout; the guest's own checksum of them on stderr.
test_exec_10mib() {
	husk_exec exec-10mib --mount /tmp -- sh -c \
		'dd if=/dev/urandom of=/tmp/r bs=1M count=10 2>/dev/null; sha256sum </tmp/r >&2; cat /tmp/r'
	local size want got
	size=$(wc -c <"$EXEC_OUT")
	want=$(cut -d' ' -f1 "$EXEC_ERR")
	got=$(sha256sum <"$EXEC_OUT" | cut -d' ' -f1)
	if [[ $EXEC_RC == 0 && $size == 10485760 && $want == "$got" ]]; then
		pass exec-10mib
	else
		exec_fail exec-10mib "status $EXEC_RC, $size bytes, guest sha '$want', host sha '$got'"
	fi
}

# The timeout stops the VM: status 124 and no husk left with this token.
test_exec_timeout() {
	local token=timeout.$$
	husk_exec exec-timeout --mount /tmp --timeout 3 --env "HUSK_TOKEN=$token" -- sleep 600
	local left
	left=$(processes_matching "HUSK_TOKE[N]=$token")
	if [[ $EXEC_RC == 124 && -z $left ]]; then
		pass exec-timeout
	else
		exec_fail exec-timeout "status $EXEC_RC (expected 124) after ${EXEC_WALL}s, processes left: ${left:-none}"
	fi
}

test_exec_shared_write() {
	local dir=$LOGDIR/exec-share
	mkdir -p "$dir"
	echo from-host >"$dir/in"
	husk_exec exec-shared-write --mount "$dir:/work" --workdir /work -- \
		sh -c 'cat in > out; echo appended >> out; pwd'
	if [[ $EXEC_RC == 0 && $(cat "$dir/out" 2>/dev/null) == $'from-host\nappended' &&
		$(cat "$EXEC_OUT") == /work ]]; then
		pass exec-shared-write
	else
		exec_fail exec-shared-write "status $EXEC_RC, out '$(cat "$dir/out" 2>/dev/null)', pwd '$(cat "$EXEC_OUT")'"
	fi
}

test_exec_snapshot() {
	local img=$LOGDIR/exec-snap.img before after
	dd if=/dev/zero of="$img" bs=1M count=8 2>/dev/null
	before=$(sha256sum <"$img")
	husk_exec exec-snapshot --mount /tmp --disk "$img,snapshot" -- sh -c \
		'echo written | dd of=/dev/vda conv=notrunc 2>/dev/null; sync; dd if=/dev/vda bs=7 count=1 2>/dev/null'
	after=$(sha256sum <"$img")
	if [[ $EXEC_RC == 0 && $(cat "$EXEC_OUT") == written && $before == "$after" ]]; then
		pass exec-snapshot
	else
		exec_fail exec-snapshot "status $EXEC_RC, guest read '$(cat "$EXEC_OUT")', image $([[ $before == "$after" ]] && echo unchanged || echo CHANGED)"
	fi
}

# Two at once: each gets its own output and status.
test_exec_parallel() {
	husk_exec exec-par-a --mount /tmp -- sh -c 'sleep 1; echo aaa; exit 3' &
	local a=$!
	husk_exec exec-par-b --mount /tmp -- sh -c 'echo bbb; exit 4' &
	wait "$a" "$!" || true
	local out_a out_b rc_a rc_b
	out_a=$(cat "$LOGDIR/exec-par-a.out")
	out_b=$(cat "$LOGDIR/exec-par-b.out")
	rc_a=$(cat "$LOGDIR/exec-par-a.rc")
	rc_b=$(cat "$LOGDIR/exec-par-b.rc")
	EXEC_ERR=$LOGDIR/exec-par-a.err
	if [[ $out_a == aaa && $out_b == bbb && $rc_a == 3 && $rc_b == 4 ]]; then
		pass exec-parallel
	else
		exec_fail exec-parallel "outputs '$out_a'/'$out_b' (want aaa/bbb), statuses $rc_a/$rc_b (want 3/4)"
		echo "  --- the second run's stderr ($LOGDIR/exec-par-b.err):"
		sed 's/^/  | /' "$LOGDIR/exec-par-b.err"
		exec_show_run "$LOGDIR/exec-par-b"
	fi
}

# A command that mounts husk's control share itself and plants a symlink
# where init writes the status, a FIFO and a directory tree: husk reads
# nothing through them, does not hang, says the command never ended, and
# leaves no control directory behind.
test_exec_hostile_ctl() {
	local before after
	before=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'husk-exec-*' | wc -l)
	husk_exec exec-hostile-ctl --mount /tmp -- sh -c \
		'mkdir -p /m && mount -t virtiofs husk-ctl /m && ln -s /etc/hostname /m/status &&
		mkfifo /m/fifo && mkdir -p /m/d/e && echo x >/m/d/e/f'
	after=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'husk-exec-*' | wc -l)
	if [[ $EXEC_RC == 125 ]] && grep -q "stopped before the command ended" "$EXEC_ERR" &&
		((after == before)); then
		pass exec-hostile-ctl
	else
		exec_fail exec-hostile-ctl "status $EXEC_RC (want 125), control directories $before before, $after after"
	fi
}

# The escape suite: a root in the guest mounts the shares itself and tries
# what an attacker would. Each try that works prints "LEAK <what>"; the
# script ends with "TRIED" so a run cut short is not taken for a pass.
ESCAPE_LIB='leak() { echo "LEAK $1"; }
has() { [ -n "$(ls -A "$1" 2>/dev/null)" ]; }
reads() { timeout 5 cat "$1" >/dev/null 2>&1; }'

# Secrets where the default root hides them (the nested test host is
# throwaway; elsewhere only what is there already is tried).
plant_secrets() {
	[[ -n ${HUSK_TEST_NESTED:-} ]] || return 0
	mkdir -p /etc /root/.ssh /home/user
	[[ -e /etc/shadow ]] || echo 'root:$6$husk-escape-test:19000:0:99999:7:::' >/etc/shadow
	echo "escape-test private key" >/root/.ssh/id_ed25519
	echo "escape-test token" >/home/user/token
}

# The default root: the host's /proc, /sys and /dev, and its secrets, are
# not there, not even on the root share mounted again by the command.
test_exec_escape_root() {
	plant_secrets
	husk_exec exec-escape-root --mount /tmp -- sh -c "$ESCAPE_LIB"'
		mkdir -p /x && mount -t virtiofs -o ro husk-root /x || leak no-mount
		has /x/bin || leak "nothing at all (the share is broken)"
		for r in / /x/; do
			reads ${r}etc/shadow && leak "${r}etc/shadow"
			reads ${r}etc/gshadow && leak "${r}etc/gshadow"
			has ${r}root/.ssh && leak "${r}root/.ssh"
			has ${r}home/user && leak "${r}home"
		done
		has /x/proc && leak "the host procfs"
		has /x/sys && leak "the host sysfs"
		has /x/dev && leak "the host /dev"
		has /x/run && leak "the host /run"
		reads /x/proc/self/environ && leak "husk environ"
		reads /x/proc/1/mem && leak "/proc/1/mem"
		echo TRIED'
	local leaks
	leaks=$(grep LEAK "$EXEC_OUT" | tr '\n' ';') || true
	if [[ $EXEC_RC == 0 && -z $leaks ]] && grep -q TRIED "$EXEC_OUT"; then
		pass exec-escape-root
	else
		exec_fail exec-escape-root "status $EXEC_RC, leaks: ${leaks:-none}, finished: $(grep -c TRIED "$EXEC_OUT")"
	fi
}

# A --mount share that holds a procfs and a bind mount of a folder beside
# it (root only), symlinks out of it, a FIFO, a device node and a
# setuid-root program.
make_escape_share() {
	local top=$1
	unmount_escape_share "$top"
	rm -rf "$top"
	mkdir -p "$top/share/proc" "$top/share/bind" "$top/share/sub" "$top/beside"
	echo "secret" >"$top/outside"
	echo "secret" >"$top/beside/secret"
	ln -s "$top/outside" "$top/share/abs"
	ln -s ../outside "$top/share/rel"
	mkfifo "$top/share/fifo"
	printf '#!/bin/sh\necho setuid\n' >"$top/share/suid"
	chmod 4755 "$top/share/suid"
	echo inner >"$top/share/sub/file"
	if [[ $(id -u) == 0 ]]; then
		mknod "$top/share/null" c 1 3
		mount -t proc proc "$top/share/proc"
		mount -o bind "$top/beside" "$top/share/bind"
	fi
}

unmount_escape_share() {
	umount "$1/share/bind" 2>/dev/null || true
	umount "$1/share/proc" 2>/dev/null || true
}

test_exec_escape_share() {
	local top=$LOGDIR/escape
	make_escape_share "$top"
	local outside_before parent_before
	outside_before=$(sha256sum <"$top/outside")
	parent_before=$(ls -a "$top" | tr '\n' ' ')
	husk_exec exec-escape-share --mount "$top/share:/work" -- sh -c "$ESCAPE_LIB"'
		w=/work
		has $w/sub || leak "nothing at all (the share is broken)"
		has $w/proc && leak "a procfs inside the share"
		reads $w/proc/self/environ && leak "husk environ through it"
		(echo 1 >$w/proc/sys/kernel/sysrq) 2>/dev/null && leak "a procfs write"
		has $w/bind && leak "a bind mount"
		reads $w/bind/secret && leak "a file through the bind mount"
		grep -qs secret $w/abs $w/rel && leak "a symlink out of the share"
		grep -qs secret $w/../outside $w/sub/../../outside && leak "dot-dot"
		ln $w/../outside $w/hard 2>/dev/null && grep -qs secret $w/hard && leak "a hard link"
		mv $w/sub/file $w/../moved 2>/dev/null; mv $w/sub $w/bind/sub 2>/dev/null
		echo again >>$w/suid
		touch $w/made && chmod 4755 $w/made
		mknod $w/dev c 1 3 2>/dev/null && leak "a device node made"
		timeout 5 sh -c "echo x >$w/null" 2>/dev/null
		echo TRIED'
	local leaks host=""
	leaks=$(grep LEAK "$EXEC_OUT" | tr '\n' ';') || true
	[[ $(sha256sum <"$top/outside") == "$outside_before" ]] || host+="outside changed; "
	[[ $(ls -a "$top" | tr '\n' ' ') == "$parent_before" ]] || host+="beside the share: $(ls -a "$top" | tr '\n' ' '); "
	[[ $(stat -c %a "$top/share/suid") != 4* ]] || host+="the setuid bit survived a write; "
	[[ ! -e $top/share/made || $(stat -c %a "$top/share/made") != 4* ]] || host+="a setuid file was made; "
	[[ ! -e $top/share/dev ]] || host+="a device node was made; "
	[[ ! -e $top/beside/sub ]] || host+="a rename through the bind mount; "
	unmount_escape_share "$top"
	if [[ $EXEC_RC == 0 && -z $leaks && -z $host ]] && grep -q TRIED "$EXEC_OUT"; then
		pass exec-escape-share
	else
		exec_fail exec-escape-share "status $EXEC_RC, leaks: ${leaks:-none}, host: ${host:-unchanged}, finished: $(grep -c TRIED "$EXEC_OUT")"
	fi
}

run_exec_tests() {
	if [[ ! -d $ASSETS/exec-modules ]]; then
		local t
		for t in "${EXEC_TESTS[@]}"; do skip "$t" "no module tree for husk exec in the assets"; done
		return 0
	fi
	test_exec_status
	test_exec_signal
	test_exec_streams
	test_exec_10mib
	test_exec_timeout
	test_exec_shared_write
	test_exec_snapshot
	test_exec_parallel
	test_exec_hostile_ctl
	test_exec_escape_root
	test_exec_escape_share
}
