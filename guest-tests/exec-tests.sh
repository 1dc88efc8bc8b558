# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Whole-VM tests of `husk exec`, sourced by vm-tests.sh (whose pass, fail,
# skip and HUSK_CMD they use). Each runs husk exec on the (test) host with
# the cloud kernel and the pruned module tree in $ASSETS/exec-modules; the
# host's root is what the guest sees as /, read-only under a tmpfs layer.

EXEC_TESTS=(
	exec-status exec-signal exec-streams exec-10mib exec-timeout exec-shared-write
	exec-snapshot exec-parallel exec-hostile-ctl
)

# husk_exec NAME [OPTION...] -- COMMAND...: runs husk exec; its status in
# EXEC_RC and $LOGDIR/NAME.rc ("timeout" when it was killed after the boot
# timeout), its wall time in EXEC_WALL, the command's stdout and stderr in
# $LOGDIR/NAME.out and NAME.err.
husk_exec() {
	local name=$1
	shift
	EXEC_OUT=$LOGDIR/$name.out EXEC_ERR=$LOGDIR/$name.err
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
	local console=${EXEC_ERR%.err}.console
	if [[ -s $console ]]; then
		echo "  --- the guest's console ($console):"
		tail -n 25 "$console" | tr -d '\r' | sed 's/^/  | /'
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
}
