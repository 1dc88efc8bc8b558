# shellcheck shell=bash
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
# host: its stdout and stderr apart, its exit status.

VSOCK_TESTS=(vsock-to-guest vsock-to-host vsock-cid vsock-agent-exec)

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
	else
		agent=$(vsock_agent_problems "$sock")
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

run_vsock_tests() {
	if [[ ! -r $ASSETS/vsock/initrd.cpio.gz ]]; then
		local t
		for t in "${VSOCK_TESTS[@]}"; do skip "$t" "no vsock guest image in the assets"; done
		return 0
	fi
	test_vsock
}
