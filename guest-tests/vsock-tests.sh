# shellcheck shell=bash
# shellcheck disable=SC2016 # single quotes: the guest's shell expands these
# SPDX-License-Identifier: MIT
#
# Whole-VM tests of virtio-vsock (--vsock), sourced by vm-tests.sh (whose
# vm_start, vm_wait, pass, fail and skip they use). One boot of the vsock
# guest (guest-init.sh's action vsock, the cloud kernel's
# vmw_vsock_virtio_transport) checks both directions through husk's
# socket, 1 MiB each way, with vsock-echo at both ends:
#   vsock-to-guest  the host connects to guest port 1234 ("CONNECT 1234")
#   vsock-to-host   the guest connects to host port 5678, PATH_5678
# vsock-cid that the guest has the cid given with --vsock, and
# vsock-agent-exec that husk-agent in the guest runs a command for the
# host: its stdout and stderr apart, its exit status. In the same boot,
# husk's own client (husk exec SOCKET, husk shell SOCKET) against the
# agent, as an instance's are but without a cloud image's boot:
#   vsock-exec-status     statuses 0, 1, 42 and a signal (128+N)
#   vsock-exec-streams    stdout and stderr apart, byte for byte; --workdir, --env
#   vsock-exec-stdin      VSOCK_STDIN_BYTES through cat and back (checksums)
#   vsock-exec-interrupt  Ctrl-C reaches the command (130); a killed husk
#                         exec takes its command with it
#   vsock-exec-parallel   ten at once, each its own answer
#   vsock-shell           a login shell on a pty (pty-drive): its size, a
#                         new size after SIGWINCH, its exit status
#   vsock-transfer        husk transfer both ways, 1 MiB, checksums
#   vsock-agent-killed    a session killed in the guest, then the agent:
#                         husk exec says so in one line, 125
# A boot of its own (guest-init.sh's action agent, with husk run --control)
# for husk mount and husk umount on a running VM, through the same control
# ops and agent requests as an instance's:
#   vsock-mount         a folder hot-plugged and mounted; written from
#                       both sides, each seen on the other; unmounted (the
#                       device leaves the guest's bus) and mounted again
#   vsock-mount-ro      --ro: read, writes refused, nothing reaches the host
#   vsock-mount-errors  a missing folder, a relative guest path, a path
#                       already mounted, umount of nothing: one line, 2

VSOCK_CLIENT_TESTS=(vsock-exec-status vsock-exec-streams vsock-exec-stdin
	vsock-exec-interrupt vsock-exec-parallel vsock-shell vsock-transfer vsock-agent-killed)
VSOCK_TESTS=(vsock-to-guest vsock-to-host vsock-cid vsock-agent-exec "${VSOCK_CLIENT_TESTS[@]}")
VSOCK_MOUNT_TESTS=(vsock-mount vsock-mount-ro vsock-mount-errors)
VSOCK_ALL_TESTS=("${VSOCK_TESTS[@]}" "${VSOCK_MOUNT_TESTS[@]}")
VSOCK_STDIN_BYTES=$((4 * 1024 * 1024))

VSOCK_BYTES=1048576
VSOCK_CID=42

test_vsock() {
	local sock=$LOGDIR/vsock.sock echo_bin=$ASSETS/vsock/vsock-echo
	local host_pid host_echo="" to_guest="" agent=""
	rm -f "$sock" "${sock}_5678"
	"$echo_bin" unix-echo "${sock}_5678" 2>"$LOGDIR/vsock-host-echo.err" &
	host_pid=$!
	VM_CMDLINE_EXTRA="husk_vsock_port=1234 husk_vsock_host_port=5678 husk_vsock_bytes=$VSOCK_BYTES" \
		vm_start vsock vsock vsock --vsock "$sock,cid=$VSOCK_CID"
	if ! vm_wait_for '^HUSK-VSOCK-READY'; then
		to_guest="the guest's echo never listened"
		agent="the guest never got as far as its echo"
		local t
		for t in "${VSOCK_CLIENT_TESTS[@]}"; do fail "$t" "$agent" "$VM_LOG"; done
	else
		agent=$(vsock_agent_problems "$sock")
		vsock_husk_client_tests "$sock"
		timeout 120 "$echo_bin" connect "$sock" 1234 "$VSOCK_BYTES" 2>"$LOGDIR/vsock-connect.err" ||
			to_guest="$(tr '\n' ' ' <"$LOGDIR/vsock-connect.err")"
	fi
	vm_wait
	if kill "$host_pid" 2>/dev/null; then
		host_echo="the host's echo was never reached; "
	elif ! wait "$host_pid"; then
		host_echo="the host's echo failed: $(tr '\n' ' ' <"$LOGDIR/vsock-host-echo.err"); "
	fi
	wait "$host_pid" 2>/dev/null || true
	info "vsock: status $VM_RC after ${VM_WALL}s wall"
	if [[ -n $to_guest ]]; then
		fail vsock-to-guest "$to_guest" "$VM_LOG"
	elif [[ $(fact vsock_echoed) != "$VSOCK_BYTES" ]]; then
		fail vsock-to-guest "the guest echoed $(fact vsock_echoed) bytes, not $VSOCK_BYTES" "$VM_LOG"
	else
		pass vsock-to-guest
	fi
	if [[ $(fact vsock_reverse) != ok ]]; then
		fail vsock-to-host "$host_echo$(fact vsock_reverse)" "$VM_LOG"
	else
		pass vsock-to-host
	fi
	if [[ -e $sock ]]; then
		fail vsock-cid "husk left its socket $sock behind"
	else
		expect_fact vsock-cid vsock_cid "$VSOCK_CID"
	fi
	if [[ -n $agent ]]; then
		fail vsock-agent-exec "$agent" "$VM_LOG"
	else
		pass vsock-agent-exec
	fi
}

# What is wrong with a command run through the guest's husk-agent; empty
# when nothing is.
vsock_agent_problems() {
	local sock=$1 rc=125 tries=0 out=$LOGDIR/vsock-agent.out err=$LOGDIR/vsock-agent.err
	# The agent starts beside the echo: give it a few seconds to listen (125: no agent yet).
	while ((rc == 125 && tries++ < 5)); do
		((tries == 1)) || sleep 1
		rc=0
		timeout 60 "$ASSETS/vsock/vsock-echo" agent "$sock" sh -c 'echo out; echo err >&2; exit 7' \
			>"$out" 2>"$err" || rc=$?
	done
	[[ $rc == 7 ]] || echo -n "status $rc (want 7); "
	[[ $(cat "$out") == out ]] || echo -n "stdout \"$(tr '\n' ' ' <"$out")\" (want out); "
	[[ $(cat "$err") == err ]] || echo -n "stderr \"$(tr '\n' ' ' <"$err")\" (want err)"
}

# husk exec SOCKET ARG...: its status on stdout, its output in the log folder.
agent_exec() {
	local rc=0
	timeout 120 "${HUSK_CMD[@]}" exec "$@" >"$LOGDIR/agent-exec.out" 2>"$LOGDIR/agent-exec.err" </dev/null ||
		rc=$?
	echo "$rc"
}

# pass or fail TEST by whether PROBLEMS is empty.
verdict() {
	if [[ -z $2 ]]; then pass "$1"; else fail "$1" "$2"; fi
}

# The median of 21 round trips of husk exec -- true, for the log (a figure, not a test).
vsock_exec_round_trip() {
	local i t0 times=()
	for i in $(seq 21); do
		t0=$(now)
		"${HUSK_CMD[@]}" exec "$1" -- true </dev/null >/dev/null 2>&1 || return 0
		times+=("$(elapsed "$t0" "$(now)")")
	done
	info "vsock: husk exec -- true, median of 21: $(printf '%s\n' "${times[@]}" | sort -n | sed -n 11p)s"
}

vsock_test_exec_status() {
	local sock=$1 got="" want
	for want in 0 1 42; do
		got+="$(agent_exec "$sock" -- sh -c "exit $want") "
	done
	got+=$(agent_exec "$sock" -- sh -c 'kill -TERM $$')
	vsock_exec_round_trip "$sock"
	verdict vsock-exec-status "$([[ $got == "0 1 42 143" ]] || echo "statuses '$got', want '0 1 42 143'")"
}

vsock_test_exec_streams() {
	local sock=$1 why="" i rc
	local loop='i=0; while [ $i -lt 3000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done'
	rc=$(agent_exec "$sock" -- sh -c "$loop")
	for ((i = 0; i < 3000; i++)); do echo "out$i"; done >"$LOGDIR/want.out"
	for ((i = 0; i < 3000; i++)); do echo "err$i"; done >"$LOGDIR/want.err"
	[[ $rc == 0 ]] || why+="status $rc; "
	cmp -s "$LOGDIR/agent-exec.out" "$LOGDIR/want.out" || why+="stdout differs; "
	cmp -s "$LOGDIR/agent-exec.err" "$LOGDIR/want.err" || why+="stderr differs; "
	rc=$(agent_exec "$sock" --workdir /tmp --env A=1 --env B=two -- sh -c 'echo "$PWD $A $B"')
	[[ $rc == 0 && $(cat "$LOGDIR/agent-exec.out") == "/tmp 1 two" ]] ||
		why+="--workdir/--env gave '$(cat "$LOGDIR/agent-exec.out")' (status $rc)"
	verdict vsock-exec-streams "$why"
}

vsock_test_exec_stdin() {
	local sock=$1 rc=0 want got t0
	head -c "$VSOCK_STDIN_BYTES" /dev/urandom >"$LOGDIR/stdin.bin"
	want=$(sha256sum <"$LOGDIR/stdin.bin")
	t0=$(now)
	timeout 300 "${HUSK_CMD[@]}" exec "$sock" -- cat <"$LOGDIR/stdin.bin" >"$LOGDIR/stdout.bin" \
		2>"$LOGDIR/agent-exec.err" || rc=$?
	info "vsock: $VSOCK_STDIN_BYTES bytes through husk exec -- cat and back in $(elapsed "$t0" "$(now)")s"
	got=$(sha256sum <"$LOGDIR/stdout.bin")
	verdict vsock-exec-stdin "$([[ $rc == 0 && $got == "$want" ]] ||
		echo "status $rc; sha256sum '$got', want '$want': $(head -c 300 "$LOGDIR/agent-exec.err")")"
}

# How many of the guest's processes run 'sleep SECONDS'.
guest_sleepers() {
	agent_exec "$1" -- sh -c "ps | grep -c '[s]leep $2'" >/dev/null
	cat "$LOGDIR/agent-exec.out"
}

vsock_test_exec_interrupt() {
	local sock=$1 why="" pid rc=0
	# Not under timeout(1): the signal is for husk itself.
	"${HUSK_CMD[@]}" exec "$sock" -- sleep 600 </dev/null >/dev/null 2>&1 &
	pid=$!
	sleep 3
	kill -INT "$pid"
	# Bounded: a Ctrl-C that goes nowhere must fail the test, not hang it.
	local deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
	if kill -KILL "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || true
		rc="still running 30 s later"
	else
		wait "$pid" || rc=$?
	fi
	[[ $rc == 130 ]] || why+="Ctrl-C: status $rc, want 130; "
	[[ $(guest_sleepers "$sock" 600) == 0 ]] || why+="sleep 600 outlived Ctrl-C; "
	"${HUSK_CMD[@]}" exec "$sock" -- sleep 601 </dev/null >/dev/null 2>&1 &
	pid=$!
	sleep 3
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	sleep 1
	[[ $(guest_sleepers "$sock" 601) == 0 ]] || why+="sleep 601 outlived a killed husk exec"
	verdict vsock-exec-interrupt "$why"
}

vsock_test_exec_parallel() {
	local sock=$1 why="" n pids=()
	for n in 1 2 3 4 5 6 7 8 9 10; do
		timeout 120 "${HUSK_CMD[@]}" exec "$sock" -- sh -c "sleep 1; echo \$(($n * $n)); exit $n" \
			</dev/null >"$LOGDIR/parallel.$n" 2>&1 &
		pids[n]=$!
	done
	for n in 1 2 3 4 5 6 7 8 9 10; do
		local rc=0
		wait "${pids[n]}" || rc=$?
		[[ $rc == "$n" && $(cat "$LOGDIR/parallel.$n") == "$((n * n))" ]] ||
			why+="#$n: status $rc, '$(head -c 100 "$LOGDIR/parallel.$n")'; "
	done
	verdict vsock-exec-parallel "$why"
}

# pty-drive needs the host's devpts, which the nested test host's /init does not mount.
ensure_devpts() {
	[[ -e /dev/pts/ptmx ]] && return 0
	mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
}

vsock_test_shell() {
	local sock=$1 rc=0
	ensure_devpts || true
	timeout 180 "$ASSETS/vsock/pty-drive" 33 111 'send:stty size\n' 'wait:33 111' \
		'resize:40,100' 'send:stty size\n' 'wait:40 100' 'send:exit 7\n' \
		-- "${HUSK_CMD[@]}" shell "$sock" >"$LOGDIR/shell.out" 2>"$LOGDIR/shell.err" || rc=$?
	verdict vsock-shell "$([[ $rc == 7 ]] ||
		echo "status $rc, want 7: $(tr -c '[:print:]' ' ' <"$LOGDIR/shell.out" | tail -c 300) $(head -c 200 "$LOGDIR/shell.err")")"
}

vsock_test_transfer() {
	local sock=$1 why="" rc=0
	head -c 1048576 /dev/urandom >"$LOGDIR/notes.bin"
	rm -rf "$LOGDIR/back" && mkdir -p "$LOGDIR/back"
	timeout 120 "${HUSK_CMD[@]}" transfer "$LOGDIR/notes.bin" "$sock:/tmp/" 2>"$LOGDIR/transfer.err" ||
		rc=$?
	[[ $rc == 0 ]] || why+="in: status $rc: $(head -c 200 "$LOGDIR/transfer.err"); "
	rc=0
	timeout 120 "${HUSK_CMD[@]}" transfer "$sock:/tmp/notes.bin" "$LOGDIR/back/" 2>"$LOGDIR/transfer.err" ||
		rc=$?
	[[ $rc == 0 ]] || why+="out: status $rc: $(head -c 200 "$LOGDIR/transfer.err"); "
	cmp -s "$LOGDIR/notes.bin" "$LOGDIR/back/notes.bin" || why+="the file came back changed; "
	rc=$(agent_exec "$sock" -- sh -c "sha256sum </tmp/notes.bin")
	[[ $(cat "$LOGDIR/agent-exec.out") == "$(sha256sum <"$LOGDIR/notes.bin")" ]] ||
		why+="the guest's sha256sum '$(cat "$LOGDIR/agent-exec.out")' is not the host's"
	verdict vsock-transfer "$why"
}

# The agent's session, then the agent itself, killed in the guest: one line each, 125.
vsock_test_agent_killed() {
	local sock=$1 why="" rc
	rc=$(agent_exec "$sock" -- sh -c 'kill -KILL $PPID; sleep 5')
	[[ $rc == 125 && $(wc -l <"$LOGDIR/agent-exec.err") == 1 ]] &&
		grep -q "the agent went away" "$LOGDIR/agent-exec.err" ||
		why+="session killed: status $rc, '$(cat "$LOGDIR/agent-exec.err")'; "
	agent_exec "$sock" -- sh -c 'kill -KILL $(pidof husk-agent)' >/dev/null
	rc=$(agent_exec "$sock" -- true)
	[[ $rc == 125 && $(wc -l <"$LOGDIR/agent-exec.err") == 1 ]] &&
		grep -q "no agent answers" "$LOGDIR/agent-exec.err" ||
		why+="agent killed: status $rc, '$(cat "$LOGDIR/agent-exec.err")'"
	verdict vsock-agent-killed "$why"
}

# husk's own client against the guest's agent, each wanted test in the
# order VSOCK_CLIENT_TESTS lists them (the agent killed last):
# vsock-exec-status runs vsock_test_exec_status, and so on (a prefix of
# their own: exec-tests.sh has a test_exec_status of its own).
vsock_husk_client_tests() {
	local sock=$1 t fn
	for t in "${VSOCK_CLIENT_TESTS[@]}"; do
		want "$t" || continue
		fn=${t#vsock-}
		"vsock_test_${fn//-/_}" "$sock"
	done
}

# husk run's status, stdout and stderr for ARG...: the status on stdout.
husk_cmd() {
	local rc=0
	timeout 120 "${HUSK_CMD[@]}" "$@" >"$LOGDIR/husk-cmd.out" 2>"$LOGDIR/husk-cmd.err" </dev/null ||
		rc=$?
	echo "$rc"
}

# What the guest says to COMMAND (sh -c) through the agent; its status in the log.
guest_sh() {
	agent_exec "$MOUNT_SOCK" -- sh -c "$1" >/dev/null
	cat "$LOGDIR/agent-exec.out"
}

# A usage error: status 2 and one line "husk: CMD: ..." on stderr.
mount_usage_error() {
	local what=$1 cmd=$2 rc
	shift 2
	rc=$(husk_cmd "$@")
	if [[ $rc != 2 ]]; then
		echo -n "$what: status $rc, want 2 ($(head -c 200 "$LOGDIR/husk-cmd.err")); "
	elif [[ $(wc -l <"$LOGDIR/husk-cmd.err") != 1 || $(cat "$LOGDIR/husk-cmd.err") != "husk: $cmd: "* ]]; then
		echo -n "$what: stderr '$(head -c 200 "$LOGDIR/husk-cmd.err")', want one 'husk: $cmd:' line; "
	fi
}

vsock_mount_rw() {
	local ctl=$1 rw=$2 why="" rc got
	rc=$(husk_cmd mount "$rw" "$ctl:/mnt/rw")
	[[ $rc == 0 ]] || why+="husk mount: status $rc: $(head -c 300 "$LOGDIR/husk-cmd.err"); "
	got=$(guest_sh 'cat /mnt/rw/host.txt && echo from-guest >/mnt/rw/guest.txt && ls -ln /mnt/rw/guest.txt | awk "{ print \$3 }"')
	[[ $got == "from-host"* ]] || why+="the guest read '$got' from the host's file; "
	[[ $(cat "$rw/guest.txt" 2>/dev/null) == from-guest ]] || why+="the guest's file did not reach the host; "
	echo later-from-host >"$rw/later.txt"
	got=$(guest_sh 'cat /mnt/rw/later.txt')
	[[ $got == later-from-host ]] || why+="a file the host wrote later: '$got'; "
	rc=$(husk_cmd umount "$ctl:/mnt/rw")
	[[ $rc == 0 ]] || why+="husk umount: status $rc: $(head -c 300 "$LOGDIR/husk-cmd.err"); "
	got=$(guest_sh 'grep -c " /mnt/rw " /proc/mounts; ls /sys/bus/virtio/drivers/virtiofs | grep -c virtio')
	[[ $got == $'0\n0' ]] || why+="after umount, mounts and virtiofs devices in the guest: '${got//$'\n'/ }', want 0 0; "
	# Plugged again after an unplug: the slot and the guest's rescan once more.
	rc=$(husk_cmd mount "$rw" "$ctl:/mnt/rw")
	got=$(guest_sh 'cat /mnt/rw/guest.txt')
	[[ $rc == 0 && $got == from-guest ]] || why+="mounted again: status $rc, read '$got'; "
	rc=$(husk_cmd umount "$ctl:/mnt/rw")
	[[ $rc == 0 ]] || why+="second umount: status $rc; "
	echo "$why"
}

vsock_mount_ro() {
	local ctl=$1 ro=$2 why="" rc got
	rc=$(husk_cmd mount --ro "$ro" "$ctl:/mnt/ro")
	[[ $rc == 0 ]] || why+="husk mount --ro: status $rc: $(head -c 300 "$LOGDIR/husk-cmd.err"); "
	got=$(guest_sh 'cat /mnt/ro/ro.txt; echo x >/mnt/ro/new.txt 2>/dev/null && echo wrote; rm -f /mnt/ro/ro.txt 2>/dev/null && echo removed; true')
	[[ $got == read-only-data ]] || why+="the guest saw '${got//$'\n'/ }' (want the file read, the write and rm refused); "
	[[ ! -e $ro/new.txt && -e $ro/ro.txt ]] || why+="a write reached the host; "
	rc=$(husk_cmd umount "$ctl:/mnt/ro")
	[[ $rc == 0 ]] || why+="husk umount: status $rc; "
	echo "$why"
}

vsock_mount_errors() {
	local ctl=$1 rw=$2 why=""
	why+=$(mount_usage_error "a missing folder" mount mount "$LOGDIR/no-such-folder" "$ctl:/mnt/x")
	why+=$(mount_usage_error "a relative guest path" mount mount "$rw" "$ctl:mnt/x")
	why+=$(mount_usage_error "a .. in the guest path" mount mount "$rw" "$ctl:/mnt/../x")
	why+=$(mount_usage_error "umount of nothing" umount umount "$ctl:/mnt/none")
	local rc
	rc=$(husk_cmd mount "$rw" "$ctl:/mnt/twice")
	why+=$(mount_usage_error "a path already mounted" mount mount "$rw" "$ctl:/mnt/twice")
	[[ $rc == 0 && $(husk_cmd umount "$ctl:/mnt/twice") == 0 ]] || why+="mount/umount /mnt/twice failed; "
	# A stopped instance: no such socket.
	rc=$(husk_cmd mount "$rw" "$LOGDIR/no-such.sock:/mnt/x")
	[[ $rc == 1 && $(wc -l <"$LOGDIR/husk-cmd.err") == 1 ]] ||
		why+="an unreachable VM: status $rc, '$(head -c 200 "$LOGDIR/husk-cmd.err")'; "
	echo "$why"
}

# A failure carries the guest's kernel messages about PCI, virtio and FUSE, and husk's stderr.
mount_verdict() {
	if [[ -z $2 ]]; then
		pass "$1"
		return
	fi
	local dmesg
	dmesg=$(guest_sh 'dmesg | grep -iE "pci|virtio|fuse|BAR" | tail -n 12')
	fail "$1" "$2 (guest: ${dmesg//$'\n'/ | })" "$VM_LOG"
}

test_vsock_mount() {
	local ctl=$LOGDIR/mount-control.sock rw=$LOGDIR/mount-rw ro=$LOGDIR/mount-ro rc=1 tries=0 t
	MOUNT_SOCK=$LOGDIR/mount-vsock.sock
	rm -rf "$rw" "$ro" "$ctl" "$MOUNT_SOCK"
	mkdir -p "$rw" "$ro"
	echo from-host >"$rw/host.txt"
	echo read-only-data >"$ro/ro.txt"
	vm_start vsock-mount vsock agent --vsock "$MOUNT_SOCK" --control "$ctl"
	while [[ $rc != 0 ]] && ((tries++ < 60)); do
		sleep 1
		rc=$(agent_exec "$MOUNT_SOCK" -- true)
	done
	if [[ $rc != 0 ]]; then
		for t in "${VSOCK_MOUNT_TESTS[@]}"; do fail "$t" "the guest's agent never answered" "$VM_LOG"; done
	else
		want vsock-mount && mount_verdict vsock-mount "$(vsock_mount_rw "$ctl" "$rw")"
		want vsock-mount-ro && mount_verdict vsock-mount-ro "$(vsock_mount_ro "$ctl" "$ro")"
		want vsock-mount-errors && mount_verdict vsock-mount-errors "$(vsock_mount_errors "$ctl" "$rw")"
		agent_exec "$MOUNT_SOCK" -- poweroff -f >/dev/null
	fi
	vm_wait 60
	info "vsock-mount: status $VM_RC after ${VM_WALL}s wall"
}

run_vsock_tests() {
	if [[ ! -r $ASSETS/vsock/initrd.cpio.gz ]]; then
		local t
		for t in "${VSOCK_ALL_TESTS[@]}"; do skip "$t" "no vsock guest image in the assets"; done
		return 0
	fi
	want "${VSOCK_TESTS[@]}" && test_vsock
	want "${VSOCK_MOUNT_TESTS[@]}" && test_vsock_mount
	# Not wanted is no failure: vm-tests.sh runs under set -e.
	return 0
}
