#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# husk's command line, checked without booting anything (so no KVM is
# needed): bad input gets exit status 2 and one clear line on stderr, and a
# host that cannot run VMs gets status 3. TAP output, for `meson test`.
#
#   HUSK=build/husk cli-tests.sh        (or: cli-tests.sh PATH-TO-HUSK)
#
# Some checks want a real kernel, so that the bad option is the only thing
# wrong: HUSK_TEST_KERNEL, or the cloud kernel tools/test caches.
set -euo pipefail

HUSK=${1:-${HUSK:-husk}}
HUSK_AS=() # a command husk runs under (setpriv to be another user)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/husk-cli-tests.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

TEST_NO=0
FAILURES=0

ok() {
	TEST_NO=$((TEST_NO + 1))
	echo "ok $TEST_NO - $1"
}

not_ok() {
	TEST_NO=$((TEST_NO + 1))
	FAILURES=$((FAILURES + 1))
	echo "not ok $TEST_NO - $1"
	shift
	local line
	for line in "$@"; do echo "# $line"; done
}

skip() {
	TEST_NO=$((TEST_NO + 1))
	echo "ok $TEST_NO - $1 # SKIP $2"
}

# A Debian kernel, if one is at hand.
find_kernel() {
	if [[ -n ${HUSK_TEST_KERNEL:-} ]]; then
		echo "$HUSK_TEST_KERNEL"
		return 0
	fi
	local cache=${HUSK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/husk}
	local k
	for k in "$cache"/kernels/linux-image-*-cloud-amd64_*/boot/vmlinuz-*; do
		[[ -r $k ]] && { echo "$k"; return 0; }
	done
	return 0
}

# run_husk ARG...: sets RC and ERR. The timeout keeps a husk that
# wrongly starts a VM from hanging the test.
run_husk() {
	RC=0
	timeout -k 5 20 "${HUSK_AS[@]}" "$HUSK" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
	ERR=$(cat "$WORK/err")
}

# expect_error DESC STATUS WORD ARG...: husk exits STATUS with exactly one
# stderr line, "husk: ...", that mentions WORD (case-insensitive).
expect_error() {
	local desc=$1 want=$2 word=$3
	shift 3
	run_husk "$@"
	local lines
	lines=$(grep -c '' "$WORK/err" || true)
	if [[ $RC != "$want" ]]; then
		not_ok "$desc" "exit status $RC, expected $want" "stderr: $ERR"
	elif [[ $lines != 1 ]]; then
		not_ok "$desc" "$lines lines on stderr, expected exactly 1:" "$ERR"
	elif [[ $ERR != husk:* ]]; then
		not_ok "$desc" "stderr line does not start with 'husk:': $ERR"
	elif ! grep -qiF -- "$word" "$WORK/err"; then
		not_ok "$desc" "stderr does not mention '$word': $ERR"
	else
		ok "$desc"
	fi
}

# run_hidden_kvm SETUP WRAPPER ARG...: run husk in a private mount
# namespace where PVM is hidden (an empty /sys/module) and SETUP has run,
# through WRAPPER, to see what husk says on a host without a usable
# /dev/kvm. Sets RC and ERR like run_husk.
run_hidden_kvm() {
	local setup=$1 wrapper=$2
	shift 2
	RC=0
	unshare --mount --propagation private bash -c \
		"mount -t tmpfs none /sys/module && $setup && exec $wrapper timeout -k 5 20 \"\$@\"" \
		husk "$HUSK" "$@" >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
	ERR=$(cat "$WORK/err")
}

# expect_host_error DESC WORD SETUP WRAPPER: in that namespace, check-host
# exits 3 with one line naming WORD.
expect_host_error() {
	local desc=$1 word=$2 setup=$3 wrapper=$4
	if [[ $(id -u) != 0 ]] || ! command -v unshare >/dev/null || ! command -v setpriv >/dev/null; then
		skip "$desc" "needs root, unshare and setpriv to hide /dev/kvm"
		return 0
	fi
	run_hidden_kvm "$setup" "$wrapper" check-host
	local lines
	lines=$(grep -c '' "$WORK/err" || true)
	if [[ $RC == 3 && $lines == 1 && $ERR == husk:* ]] && grep -qiF -- "$word" "$WORK/err"; then
		ok "$desc"
	else
		not_ok "$desc" "exit status $RC (expected 3), stderr:" "$ERR"
	fi
}

main() {
	echo "1..63"
	local kernel text=$WORK/not-a-kernel.txt missing=$WORK/no-such-vmlinuz
	kernel=$(find_kernel)
	echo "This is a text file, not a kernel." >"$text"

	if [[ -n $kernel ]]; then
		expect_error "--memory 12Q is a usage error naming --memory" 2 --memory \
			run --kernel "$kernel" --memory 12Q
		expect_error "--cpus 0 is a usage error naming --cpus" 2 --cpus \
			run --kernel "$kernel" --cpus 0
		expect_error "--on-reboot sometimes is a usage error naming --on-reboot" 2 --on-reboot \
			run --kernel "$kernel" --on-reboot sometimes
	else
		local why="no kernel to isolate the option error (set HUSK_TEST_KERNEL or run tools/test)"
		skip "--memory 12Q is a usage error naming --memory" "$why"
		skip "--cpus 0 is a usage error naming --cpus" "$why"
		skip "--on-reboot sometimes is a usage error naming --on-reboot" "$why"
	fi
	expect_error "a missing kernel file is a usage error naming the file" 2 "$missing" \
		run --kernel "$missing"
	expect_error "a text file as kernel is a usage error naming the file" 2 "$text" \
		run --kernel "$text"
	expect_error "an unknown option is a usage error naming it" 2 --frobnicate \
		run --kernel "$text" --frobnicate
	expect_error "run without --kernel is a usage error naming --kernel" 2 --kernel run
	expect_error "--net with an unknown backend is a usage error naming --net" 2 --net \
		run --kernel "$text" --net bridge
	expect_error "--display vnc= without a port is a usage error naming --display" 2 --display \
		run --kernel "$text" --gpu 2d --display vnc=127.0.0.1
	expect_error "--display vnc without --gpu is a usage error naming --gpu" 2 --gpu \
		run --kernel "$text" --display vnc=127.0.0.1:5900
	expect_error "--display window without --gpu is a usage error naming --gpu" 2 --gpu \
		run --kernel "$text" --display window
	if [[ -n $kernel ]]; then
		expect_error "--net tap= of a missing device is a usage error naming it" 2 husk-no-such0 \
			run --kernel "$kernel" --net tap=husk-no-such0
		expect_error "--net user,hostfwd= of a bad port is a usage error naming hostfwd" 2 hostfwd \
			run --kernel "$kernel" --net user,hostfwd=tcp::99999-:80
	else
		local why="no kernel to isolate the option error (set HUSK_TEST_KERNEL or run tools/test)"
		skip "--net tap= of a missing device is a usage error naming it" "$why"
		skip "--net user,hostfwd= of a bad port is a usage error naming hostfwd" "$why"
	fi

	expect_error "--share without a tag is a usage error naming --share" 2 --share \
		run --kernel "$text" --share "$WORK"
	expect_error "--share with an unknown option names the options there are" 2 noxattr \
		run --kernel "$text" --share "$WORK:tag,announce"
	if [[ -n $kernel ]]; then
		expect_error "--share of a missing directory is a usage error naming it" 2 "$missing" \
			run --kernel "$kernel" --share "$missing:tag"
	else
		skip "--share of a missing directory is a usage error naming it" \
			"no kernel to isolate the option error (set HUSK_TEST_KERNEL or run tools/test)"
	fi
	# husk exec keeps 0-255 for the command: its own failures are 125.
	expect_error "exec without a command exits 125 naming the command" 125 command exec
	expect_error "exec --env without = exits 125 naming --env" 125 --env exec --env FOO -- true
	expect_error "exec --timeout 0 exits 125 naming --timeout" 125 --timeout \
		exec --timeout 0 -- true
	expect_error "exec with a kernel that is a text file exits 125 naming it" 125 "$text" \
		exec --kernel "$text" --modules "$WORK" -- true
	expect_error "exec --console=FILE in a missing directory exits 125 naming it" 125 \
		"$missing" exec --console="$missing/console" -- true
	if [[ -n $kernel ]]; then
		# More arguments than the guest's init takes: refused, not cut short.
		# shellcheck disable=SC2046 # one argument per number
		expect_error "exec with more arguments than the guest takes exits 125" 125 "too long" \
			exec --kernel "$kernel" -- true $(seq 1 5000)
	else
		skip "exec with more arguments than the guest takes exits 125" \
			"no kernel (set HUSK_TEST_KERNEL or run tools/test)"
	fi

	# No subcommand: the usage text, which is more than one line.
	run_husk
	if [[ $RC == 2 ]] && grep -qi usage "$WORK/err"; then
		ok "no subcommand prints usage and exits 2"
	else
		not_ok "no subcommand prints usage and exits 2" "exit status $RC" "stderr: $ERR"
	fi

	expect_error "an unknown subcommand is a usage error naming it" 2 frobnicate frobnicate

	# A PVM-backed /dev/kvm cannot boot an unmodified kernel (TESTING.md).
	if [[ ! -e /sys/module/kvm_pvm ]]; then
		skip "check-host on a PVM host exits 3 naming PVM" "not a PVM host"
		skip "run on a PVM host exits 3 naming PVM" "not a PVM host"
		skip "check-host on a PVM host without /sys exits 3 naming PVM" "not a PVM host"
	elif [[ ! -e /dev/kvm ]]; then
		skip "check-host on a PVM host exits 3 naming PVM" "PVM host without /dev/kvm"
		skip "run on a PVM host exits 3 naming PVM" "PVM host without /dev/kvm"
		skip "check-host on a PVM host without /sys exits 3 naming PVM" "PVM host without /dev/kvm"
	else
		expect_error "check-host on a PVM host exits 3 naming PVM" 3 PVM check-host
		# As in a chroot or container without /sys: CPUID still tells.
		expect_host_error "check-host on a PVM host without /sys exits 3 naming PVM" PVM \
			"mount -t tmpfs none /sys" ""
		if [[ -n $kernel ]]; then
			expect_error "run on a PVM host exits 3 naming PVM" 3 PVM run --kernel "$kernel"
		else
			skip "run on a PVM host exits 3 naming PVM" "no kernel (set HUSK_TEST_KERNEL or run tools/test)"
		fi
	fi
	expect_host_error "no /dev/kvm exits 3 naming /dev/kvm" "/dev/kvm does not exist" \
		"mount -t tmpfs none /dev" ""
	instance_checks "$text"
	oci_checks "$text"
	# As nobody, a /dev/kvm that only root may open is refused. nobody
	# needs a husk it can execute wherever the checkout is.
	if [[ -e /dev/kvm && $(stat -c %a /dev/kvm) == 600 ]]; then
		local public
		public=$(mktemp -d "${TMPDIR:-/tmp}/husk-cli-public.XXXXXX")
		chmod 755 "$public"
		cp "$HUSK" "$public/husk"
		local HUSK=$public/husk
		expect_host_error "a /dev/kvm without permission exits 3 naming it" \
			"permission denied" true "setpriv --reuid=65534 --regid=65534 --clear-groups"
		rm -rf "$public"
	else
		skip "a /dev/kvm without permission exits 3 naming it" "/dev/kvm is missing or not mode 600"
	fi
	((FAILURES == 0))
}

# The instance commands' bad input, in a private HUSK_HOME: nothing boots.
#   instance_checks NOT_AN_IMAGE
instance_checks() {
	export HUSK_HOME=$WORK/husk-home
	expect_error "launch with a bad name is a usage error naming it" 2 '"Web"' \
		launch "$1" --name Web
	expect_error "launch of a missing image is a usage error naming it" 2 /no/such.qcow2 \
		launch /no/such.qcow2 --name web
	expect_error "a bad -p is a usage error naming -p" 2 -p launch "$1" --name web -p 80
	expect_error "launch --display window is a usage error naming vnc" 2 vnc= \
		launch "$1" --name web --gpu 2d --display window
	expect_error "launch --user root is a usage error naming --user" 2 --user \
		launch "$1" --name web --user root
	expect_error "launch --user with no such user is a usage error naming it" 2 no-such-husk-user \
		launch "$1" --name web --user no-such-husk-user
	if [[ $(id -u) == 0 ]]; then
		local secret
		secret=$(mktemp -d /tmp/husk-cli-secret.XXXXXX)
		chmod 700 "$secret"
		expect_error "launch --user refuses a --mount folder that user may not open" 2 \
			"uid 65534 may not open it" launch "$1" --name web --user 65534 --mount "$secret:/mnt/s:ro"
		rm -rf "$secret"
	else
		skip "launch --user refuses a --mount folder that user may not open" "needs root"
	fi
	if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
		# As nobody, from a folder nobody may read (see the /dev/kvm check).
		local public
		public=$(mktemp -d "${TMPDIR:-/tmp}/husk-cli-public.XXXXXX")
		chmod 755 "$public"
		cp "$HUSK" "$public/husk"
		local own=$HUSK
		HUSK=$public/husk HUSK_AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		expect_error "launch --user not started as root is a usage error saying so" 2 "as root" \
			launch "$1" --name web --user 1000
		HUSK=$own HUSK_AS=()
		rm -rf "$public"
	else
		skip "launch --user not started as root is a usage error saying so" "needs root and setpriv"
	fi
	if [[ ! -d $HUSK_HOME/instances || -z $(ls -A "$HUSK_HOME/instances") ]]; then
		ok "a launch that failed leaves no instance folder"
	else
		not_ok "a launch that failed leaves no instance folder" "$(ls -A "$HUSK_HOME/instances")"
	fi
	expect_error "info on an unknown instance is a usage error naming it" 2 '"db"' info db
	# What a start as root acts on: nobody else may have written it.
	mkdir -p "$HUSK_HOME/instances/loose"
	echo '{}' >"$HUSK_HOME/instances/loose/config.json"
	chmod 666 "$HUSK_HOME/instances/loose/config.json"
	expect_error "start refuses a config.json others may write to" 1 "others may write" start loose
	rm -rf "$HUSK_HOME/instances/loose"
	run_husk list
	if [[ $RC == 0 && $(cat "$WORK/out") == NAME* && $(grep -c '' "$WORK/out") == 1 ]]; then
		ok "list with no instances prints its header only"
	else
		not_ok "list with no instances prints its header only" "status $RC" "$(cat "$WORK/out")"
	fi
	# A damaged instance: listed as broken, with one clean line on stderr.
	mkdir -p "$HUSK_HOME/instances/dented" "$HUSK_HOME/instances/torn"
	: >"$HUSK_HOME/instances/dented/config.json"
	echo '{"cpus":' >"$HUSK_HOME/instances/torn/config.json"
	run_husk list
	if [[ $RC == 0 && $(grep -c '^dented  *broken ' "$WORK/out") == 1 &&
		$(grep -c '^torn  *broken ' "$WORK/out") == 1 && $(grep -c '' "$WORK/err") == 2 &&
		$(grep -vc '^husk: instance "[a-z]*": .*config.json: ' "$WORK/err") == 0 ]]; then
		ok "list shows an instance with an empty or corrupt config.json as broken"
	else
		not_ok "list shows an instance with an empty or corrupt config.json as broken" \
			"status $RC" "$(cat "$WORK/out" "$WORK/err")"
	fi
	rm -rf "$HUSK_HOME/instances/dented" "$HUSK_HOME/instances/torn"
	unset HUSK_HOME
}

# husk run --image's bad input, in a private HUSK_HOME: all of it is found
# before a VM is made. The image is lib/mkociimage.sh's (busybox-static).
#   oci_checks TEXT_FILE
oci_checks() {
	local lib img=$WORK/oci
	lib=$(dirname "${BASH_SOURCE[0]}")/lib
	export HUSK_HOME=$WORK/oci-home
	expect_error "run --image of a missing path exits 125 naming it" 125 /no/such-image \
		run --image /no/such-image
	expect_error "run --image --detach without --name exits 125" 125 "--name" \
		run --image /no/such-image --detach
	expect_error "run --image --detach of a missing path exits 125 naming it" 125 \
		/no/such-image run --image /no/such-image --detach --name gone
	expect_error "run --image -it with stdin not a terminal is refused, as docker" 125 \
		"-it: the input is not a terminal" run --image /no/such-image -it
	expect_error "run --image -t on no terminal goes on to the image, as docker" 125 \
		/no/such-image run --image /no/such-image -t
	expect_error "run --image -i goes on to the image" 125 /no/such-image \
		run --image /no/such-image -i
	expect_error "run --image -dit is refused: no attach" 125 "--detach with -t and -i" \
		run --image /no/such-image -dit --name gone
	expect_error "run --image -di is refused: no attach" 125 "--detach with -i" \
		run --image /no/such-image -di --name gone
	expect_error "run --image -dt is refused: no attach" 125 "--detach with -t" \
		run --image /no/such-image -dt --name gone
	run_husk list
	if [[ $RC == 0 && $(cat "$WORK/out") != *gone* ]]; then
		ok "run --image --detach of a missing image leaves no instance"
	else
		not_ok "run --image --detach of a missing image leaves no instance" "$(cat "$WORK/out")"
	fi
	expect_error "logs of an unknown instance exits 2 naming it" 2 nosuch logs nosuch
	# An image run's instance, as husk run --image --detach leaves it: no agent there.
	mkdir -p "$HUSK_HOME/instances/web"
	echo '{"kind":"image-run","image":"/no/such-image"}' >"$HUSK_HOME/instances/web/config.json"
	expect_error "exec on an image run exits 125 saying it has no agent" 125 \
		"web: an image run has no agent; use husk logs web" exec web -- true
	expect_error "shell on an image run exits 125 saying it has no agent" 125 \
		"web: an image run has no agent; use husk logs web" shell web
	rm -rf "$HUSK_HOME/instances/web"
	expect_error "run --image of a file that is no image exits 125 naming it" 125 \
		"not an image archive" run --image "$1"
	if ! command -v busybox >/dev/null || ! "$lib/mkociimage.sh" "$img" >"$WORK/mkoci.log" 2>&1; then
		local i why
		why="cannot make the test image: $(tail -n 1 "$WORK/mkoci.log" 2>/dev/null)"
		for i in tag user -v -p no-command corrupt-layer cache; do
			skip "run --image's check of a real image ($i)" "$why"
		done
		unset HUSK_HOME
		return 0
	fi
	local layout=$img/layout
	expect_error "run --image with an unknown tag exits 125 naming it" 125 '"2.0"' \
		run --image "$img/image.tar:2.0"
	expect_error "run --image -u of an unknown user exits 125 naming it" 125 '"nosuch"' \
		run --image "$layout" -u nosuch
	expect_error "run --image -v without a guest path exits 125 naming -v" 125 -v \
		run --image "$layout" -v "$WORK"
	expect_error "run --image -p 80 exits 125 naming -p" 125 -p run --image "$layout" -p 80
	expect_error "run --image --entrypoint '' and no command exits 125" 125 "no command" \
		run --image "$layout" --entrypoint ""
	local bad=$WORK/oci-bad blob
	cp -a "$layout" "$bad"
	blob=$(grep -o 'tar+gzip","digest":"sha256:[0-9a-f]*' "$bad"/blobs/sha256/* | sed 's/.*sha256://' | head -n 1)
	echo >>"$bad/blobs/sha256/$blob"
	# A cache that has the layers (the checks above unpacked them) never reads them again.
	export HUSK_HOME=$WORK/oci-home-2
	expect_error "run --image with a corrupt layer exits 125 naming the digest" 125 \
		"does not match" run --image "$bad"
	if [[ -z $(ls -A "$HUSK_HOME/oci/roots" 2>/dev/null) && -z $(ls -A "$HUSK_HOME/oci/tmp" 2>/dev/null) ]]; then
		ok "a corrupt layer leaves nothing in the image cache"
	else
		not_ok "a corrupt layer leaves nothing in the image cache" \
			"$(ls -A "$HUSK_HOME/oci/roots" "$HUSK_HOME/oci/tmp" | tr '\n' ' ')"
	fi
	unset HUSK_HOME
}

main "$@"
