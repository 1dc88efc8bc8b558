#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Whole-VM tests for arm64 hosts, run inside the aarch64 test host
# (lib/runner --arch arm64) or directly on an arm64 machine with KVM.
# Plain sh: the aarch64 test host has busybox and no bash. One line per
# check, as vm-tests.sh prints them:
#   RESULT <name> PASS|FAIL <reason>|SKIP <reason>
#
#   arm64-tests.sh --assets DIR [--only NAME[,NAME]...]
#   arm64-tests.sh --list
#   arm64-tests.sh --skip-all REASON
#
# DIR holds kvm-arm64-probe (a static aarch64 program). husk's own arm64
# tests join TESTS once husk runs on arm64.
set -eu

TESTS="arm64-kvm"
# The probe runs a few guest instructions: seconds even under TCG.
PROBE_TIMEOUT=${HUSK_TEST_TIMEOUT:-120}

ONLY=""
ASSETS=""

want() {
	[ -z "$ONLY" ] && return 0
	case ",$ONLY," in *",$1,"*) return 0 ;; esac
	return 1
}

result() {
	want "$1" || return 0
	echo "RESULT $*"
}

# arm64-kvm: the test host's /dev/kvm runs a guest to an MMIO exit and a
# PSCI SYSTEM_OFF (kvm-arm64-probe.c says how). The probe prints what it
# saw; its status alone decides, and its lines follow a failure.
test_arm64_kvm() {
	want arm64-kvm || return 0
	probe=$ASSETS/kvm-arm64-probe
	if [ ! -x "$probe" ]; then
		result arm64-kvm FAIL "no $probe"
		return 0
	fi
	if [ ! -c /dev/kvm ]; then
		result arm64-kvm FAIL "no /dev/kvm: $(dmesg | grep -m1 -i 'kvm' || echo 'KVM said nothing')"
		return 0
	fi
	# How KVM came up (VHE or nVHE), for the log.
	echo "arm64-tests: $(dmesg | grep -m1 -i 'kvm.*mode initialized' || echo 'kvm: no mode line in dmesg')"
	rc=0
	out=$(timeout "$PROBE_TIMEOUT" "$probe" 2>&1) || rc=$?
	echo "$out" | sed 's/^/arm64-tests: /'
	if [ "$rc" -eq 0 ] && echo "$out" | grep -q '^kvm-arm64-probe: PASS$'; then
		result arm64-kvm PASS
	else
		result arm64-kvm FAIL "kvm-arm64-probe exited $rc: $(echo "$out" | tail -n 1)"
	fi
}

main() {
	while [ $# -gt 0 ]; do
		case $1 in
		--list)
			for t in $TESTS; do echo "$t"; done
			return 0
			;;
		--skip-all)
			for t in $TESTS; do echo "RESULT $t SKIP ${2:?--skip-all needs a reason}"; done
			return 0
			;;
		--assets) ASSETS=${2:?} && shift ;;
		--only) ONLY=${2:?} && shift ;;
		*)
			echo "arm64-tests: unknown argument '$1'" >&2
			return 2
			;;
		esac
		shift
	done
	[ -n "$ASSETS" ] || {
		echo "arm64-tests: --assets DIR is required" >&2
		return 2
	}
	test_arm64_kvm
}

main "$@"
