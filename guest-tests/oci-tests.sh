# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Whole-VM tests of `husk run --image`, sourced by vm-tests.sh (whose pass,
# fail, skip, vm_wait, http_get and HUSK_CMD they use). The image is the one
# guest-tests/lib/mkociimage.sh makes from busybox-static, as an OCI layout
# ($ASSETS/oci/layout) and an OCI archive ($ASSETS/oci/image.tar): two
# layers, the second deleting /etc/doomed, changing /etc/motd and making
# /www opaque; Entrypoint /bin/entry (prints "entry: ARGS", runs them), Cmd
# "sh -c 'echo default cmd'", User app (1000, also in group 2000),
# WorkingDir /srv/work, Env GREETING. Four boots:
#   1 the layout with a command: oci-layers, oci-config, oci-exit-status,
#     and the first half of oci-entrypoint-cmd (the command replaces Cmd)
#   2 the archive by tag, no command: oci-archive and the other half
#     (Entrypoint + Cmd)
#   3 --entrypoint, -u, -w, -e and -v: oci-override, oci-volume
#   4 busybox httpd (user app, port 80) behind -p, then SIGTERM to husk, which httpd gets and
#     ends by: oci-publish, oci-stop (status 143, well within the grace)
#   5 a shell that ignores SIGTERM: oci-stop-kill (status 137 after the
#     10 s grace)
#   6 -i: 192 KiB through cat and back, stderr apart, the app's status
#     (oci-stdin); then `-- true` twice with -i and twice without, for the
#     time a session adds (logged)
#   7 -t on no terminal of husk's: the app's 0, 1 and 2 are a terminal
#     (/dev/pts/N, 24x80), its stderr merged into stdout (oci-tty)
#   8 -it under pty-drive on a 33x111 terminal: stty size, a resize to
#     40x100, Ctrl-C to the guest's sleep (130 in the guest's shell, husk
#     goes on), exit 7 (oci-tty-interactive)
# oci-bad-image boots nothing: a corrupt layer and an unknown user are one
# line each, status 125, and nothing is left in the cache.
# oci-detach: husk run --image --detach as instances (three more boots):
#   httpd behind -p, seen by list, logs (stdout and stderr apart, --tail,
#   -f until the app ends), stopped by husk stop (exited (143)); an app
#   that ends with 3 (exited (3)) and runs again by husk start; an
#   entrypoint that does not exist (127 and husk-init's line at once);
#   then delete.

OCI_TESTS=(
	oci-layers oci-config oci-exit-status oci-entrypoint-cmd oci-archive
	oci-override oci-volume oci-publish oci-stop oci-stop-kill oci-bad-image oci-detach
	oci-stdin oci-tty oci-tty-interactive
)

OCI_PORT=18080

# husk_oci NAME [OPTION...] [-- COMMAND...]: husk run --image, as husk_exec
# runs husk exec (status in OCI_RC, output in $LOGDIR/NAME.out and .err;
# its stdin OCI_IN, /dev/null unless set).
husk_oci() {
	local name=$1
	shift
	OCI_OUT=$LOGDIR/$name.out OCI_ERR=$LOGDIR/$name.err
	# shellcheck disable=SC2034 # vm_wait reads it
	VM_T0=$(now)
	HUSK_HOME=$OCI_HOME "${HUSK_CMD[@]}" run --kernel "$ASSETS/cloud/vmlinuz" \
		--modules "$ASSETS/exec-modules" --console="$LOGDIR/$name.console" "$@" \
		<"${OCI_IN:-/dev/null}" >"$OCI_OUT" 2>"$OCI_ERR" &
	VM_PID=$!
}

husk_oci_wait() {
	vm_wait "$@"
	OCI_RC=$VM_RC
	info "${OCI_OUT%.out}: status $OCI_RC after ${VM_WALL}s wall"
}

oci_fail() {
	fail "$1" "$2" "$OCI_ERR"
	local console=${OCI_ERR%.err}.console
	if [[ -s $console ]]; then
		echo "  --- the guest's console ($console):"
		tail -n 15 "$console" | tr -d '\r' | sed 's/^/  | /'
	fi
}

# The value of "KEY=..." in the last run's stdout.
oci_value() {
	sed -n "s/^$1=//p" "$OCI_OUT" | head -n 1
}

test_oci_layout() {
	# shellcheck disable=SC2016 # for the guest's shell
	local script='echo motd=$(cat /etc/motd)
		test -e /etc/doomed && echo doomed=there || echo doomed=gone
		test -e /www/old.html && echo old=there || echo old=gone
		echo page=$(cat /www/index.html)
		echo ids=$(id -u):$(id -g):$(id -G)
		echo pwd=$(pwd)
		echo greeting=$GREETING
		echo home=$HOME
		exit 3'
	husk_oci oci-layout --image "$ASSETS/oci/layout" -- sh -c "$script"
	husk_oci_wait
	local layers config
	layers="motd=$(oci_value motd) doomed=$(oci_value doomed) old=$(oci_value old) page=$(oci_value page)"
	if [[ $layers == "motd=two doomed=gone old=gone page=husk oci page" ]]; then
		pass oci-layers
	else
		oci_fail oci-layers "status $OCI_RC, saw: $layers"
	fi
	config="ids=$(oci_value ids) pwd=$(oci_value pwd) greeting=$(oci_value greeting) home=$(oci_value home)"
	if [[ $config == "ids=1000:1000:1000 2000 pwd=/srv/work greeting=hello from the image home=/home/app" ]]; then
		pass oci-config
	else
		oci_fail oci-config "status $OCI_RC, saw: $config"
	fi
	if [[ $OCI_RC == 3 ]]; then
		pass oci-exit-status
	else
		oci_fail oci-exit-status "status $OCI_RC, expected the app's 3"
	fi
	OCI_FIRST_LINE=$(head -n 1 "$OCI_OUT")
}

test_oci_archive() {
	husk_oci oci-archive --image "$ASSETS/oci/image.tar:1.0"
	husk_oci_wait
	local out
	out=$(cat "$OCI_OUT")
	if [[ $OCI_RC == 0 && $out == $'entry: sh -c echo default cmd\ndefault cmd' ]]; then
		pass oci-archive
	else
		oci_fail oci-archive "status $OCI_RC, stdout '$out'"
	fi
	# The command given replaced Cmd, not the Entrypoint; with none, both ran.
	if [[ $OCI_FIRST_LINE == "entry: sh -c echo motd="* && $out == "entry: sh -c echo default cmd"* ]]; then
		pass oci-entrypoint-cmd
	else
		oci_fail oci-entrypoint-cmd "with a command: '$OCI_FIRST_LINE'; without: '$out'"
	fi
}

test_oci_override() {
	local dir=$LOGDIR/oci-volume
	rm -rf "$dir" && mkdir -p "$dir"
	# shellcheck disable=SC2016 # for the guest's shell
	husk_oci oci-override --image "$ASSETS/oci/layout" --entrypoint /bin/sh -u root -w /tmp \
		-e GREETING=overridden -v "$dir:/data" -- \
		-c 'echo "$GREETING" >/data/greeting; echo "$(id -u) $(pwd)"; echo written >/data/out'
	husk_oci_wait
	local out
	out=$(cat "$OCI_OUT")
	if [[ $OCI_RC == 0 && $out == "0 /tmp" && $(cat "$dir/greeting" 2>/dev/null) == overridden ]]; then
		pass oci-override
	else
		oci_fail oci-override "status $OCI_RC, stdout '$out' (want '0 /tmp'), greeting '$(cat "$dir/greeting" 2>/dev/null)'"
	fi
	if [[ $(cat "$dir/out" 2>/dev/null) == written ]]; then
		pass oci-volume
	else
		oci_fail oci-volume "the guest's write to /data/out did not reach $dir (status $OCI_RC)"
	fi
}

# busybox httpd as user app on the guest's port 80 (no root needed, as in
# Docker), published on the host's OCI_PORT; then SIGTERM to husk.
test_oci_publish() {
	local page=$LOGDIR/oci-page.html got=""
	# The guest's addresses and routes first, on its stdout, for a failure to show.
	husk_oci oci-publish --image "$ASSETS/oci/layout" -p "127.0.0.1:$OCI_PORT:80" \
		--entrypoint /bin/sh -- -c 'ip addr; ip route; exec httpd -f -vv -p 80 -h /www' 
	# Short visits until one gets the page: a SYN sent before the guest
	# listens comes again from slirp only seconds later.
	local deadline=$((SECONDS + TIMEOUT))
	while ((SECONDS < deadline)) && kill -0 "$VM_PID" 2>/dev/null; do
		if timeout 5 busybox wget -q -O "$page" "http://127.0.0.1:$OCI_PORT/index.html" \
			2>>"$LOGDIR/oci-wget.err"; then
			got=$(cat "$page")
			break
		fi
		sleep 0.2
	done
	local t0 took
	t0=$(now)
	kill -TERM "$VM_PID" 2>/dev/null || true
	husk_oci_wait "$STOP_TIMEOUT"
	took=$(elapsed "$t0" "$(now)")
	if [[ $got == "husk oci page" ]]; then
		pass oci-publish
	else
		oci_fail oci-publish "no page through -p 127.0.0.1:$OCI_PORT:80 (got '$got'; wget: $(tail -n 2 "$LOGDIR/oci-wget.err" | tr '\n' ' '); the guest's stdout: $(tr '\n' ' ' <"$OCI_OUT"))"
	fi
	# httpd ends on the SIGTERM husk passes on: its status, long before the grace is over.
	if [[ $OCI_RC == 143 ]] && ! grep -q "did not end" "$OCI_ERR" && ((${took%.*} < 8)); then
		pass oci-stop
	else
		oci_fail oci-stop "after SIGTERM: status $OCI_RC (want 143) in ${took}s (want under 8)"
	fi
}

# An app that ignores SIGTERM is stopped after the grace: status 137.
test_oci_stop_kill() {
	husk_oci oci-stop-kill --image "$ASSETS/oci/layout" --entrypoint /bin/sh -- \
		-c 'trap "" TERM; echo ready; while :; do sleep 1; done'
	local deadline=$((SECONDS + TIMEOUT)) t0 took
	until grep -q '^ready' "$OCI_OUT" 2>/dev/null; do
		if ((SECONDS >= deadline)) || ! kill -0 "$VM_PID" 2>/dev/null; then
			break
		fi
		sleep 0.2
	done
	t0=$(now)
	kill -TERM "$VM_PID" 2>/dev/null || true
	husk_oci_wait "$((STOP_TIMEOUT + 10))"
	took=$(elapsed "$t0" "$(now)")
	if [[ $OCI_RC == 137 ]] && grep -q "did not end within 10 s" "$OCI_ERR" && ((${took%.*} >= 9)); then
		pass oci-stop-kill
	else
		oci_fail oci-stop-kill "after SIGTERM: status $OCI_RC (want 137) in ${took}s (want 10 or a little more)"
	fi
}

# Nothing in the cache's roots or unpacking area.
oci_cache_empty() {
	[[ -z $(ls -A "$1/oci/roots" 2>/dev/null) && -z $(ls -A "$1/oci/tmp" 2>/dev/null) ]]
}

test_oci_bad_image() {
	local bad=$LOGDIR/oci-bad problems="" blob
	rm -rf "$bad" && cp -a "$ASSETS/oci/layout" "$bad"
	# The gzip layer, one byte longer than its digest says.
	blob=$(grep -o 'tar+gzip","digest":"sha256:[0-9a-f]*' "$bad"/blobs/sha256/* | sed 's/.*sha256://' | head -n 1)
	echo >>"$bad/blobs/sha256/$blob"
	local saved=$OCI_HOME
	OCI_HOME=$LOGDIR/oci-bad-home
	husk_oci oci-bad-digest --image "$bad" -- true
	husk_oci_wait
	[[ $OCI_RC == 125 && $(wc -l <"$OCI_ERR") == 1 ]] && grep -q "does not match" "$OCI_ERR" ||
		problems+="corrupt layer: status $OCI_RC, '$(head -c 300 "$OCI_ERR")'; "
	oci_cache_empty "$OCI_HOME" || problems+="left in the cache: $(ls -A "$OCI_HOME/oci/roots" "$OCI_HOME/oci/tmp"); "
	husk_oci oci-bad-user --image "$ASSETS/oci/layout" -u nosuch -- true
	husk_oci_wait
	[[ $OCI_RC == 125 && $(cat "$OCI_ERR") == *'no user "nosuch"'* ]] ||
		problems+="unknown user: status $OCI_RC, '$(head -c 300 "$OCI_ERR")'; "
	OCI_HOME=$saved
	if [[ -z $problems ]]; then
		pass oci-bad-image
	else
		fail oci-bad-image "$problems"
	fi
}

# husk_det ARG...: a husk instance command with the test's home and assets;
# its stdout in DET_OUT, stderr in DET_ERR, status in DET_RC.
husk_det() {
	DET_RC=0
	HUSK_HOME=$OCI_HOME timeout 300 "${HUSK_CMD[@]}" "$@" </dev/null >"$LOGDIR/det.out" \
		2>"$LOGDIR/det.err" || DET_RC=$?
	DET_OUT=$(cat "$LOGDIR/det.out") DET_ERR=$(cat "$LOGDIR/det.err")
	echo "\$ husk $* -> $DET_RC" >>"$LOGDIR/oci-detach.log"
	cat "$LOGDIR/det.out" "$LOGDIR/det.err" >>"$LOGDIR/oci-detach.log"
}

# The STATE column of NAME's line in husk list.
det_state() {
	husk_det list
	awk -v n="$1" '$1 == n { s = $2; if ($3 ~ /^\(/) s = s " " $3; print s }' <<<"$DET_OUT"
}

# Waits (up to TIMEOUT) until NAME's state is WANT.
det_wait_state() {
	local deadline=$((SECONDS + TIMEOUT))
	while ((SECONDS < deadline)); do
		[[ $(det_state "$1") == "$2" ]] && return 0
		sleep 0.5
	done
	return 1
}

test_oci_detach() {
	local run=(run --image "$ASSETS/oci/layout" --kernel "$ASSETS/cloud/vmlinuz"
		--modules "$ASSETS/exec-modules" --detach) problems="" page=$LOGDIR/det-page.html got=""
	local port=$((OCI_PORT + 1)) t0 took follow_pid
	: >"$LOGDIR/oci-detach.log"
	husk_det "${run[@]}" --name web -p "127.0.0.1:$port:80" --entrypoint /bin/sh -- \
		-c 'echo out-one; echo err-one >&2; echo out-two; exec httpd -f -p 80 -h /www'
	[[ $DET_RC == 0 && $DET_OUT == web ]] || problems+="--detach: status $DET_RC, '$DET_OUT' '$DET_ERR'; "
	[[ $(det_state web) == running ]] || problems+="list: web is '$(det_state web)', not running; "
	local deadline=$((SECONDS + TIMEOUT))
	while ((SECONDS < deadline)); do
		timeout 5 busybox wget -q -O "$page" "http://127.0.0.1:$port/index.html" 2>/dev/null &&
			got=$(cat "$page") && break
		sleep 0.2
	done
	[[ $got == "husk oci page" ]] || problems+="no page through -p (got '$got'); "
	husk_det logs web
	[[ $DET_OUT == $'out-one\nout-two' && $DET_ERR == err-one ]] ||
		problems+="logs: stdout '$DET_OUT', stderr '$DET_ERR'; "
	husk_det logs --tail 1 web
	[[ $DET_OUT == out-two && $DET_ERR == err-one ]] || problems+="logs --tail 1: '$DET_OUT'; "
	husk_det info web
	[[ $DET_OUT == *"127.0.0.1:$port:80"* ]] || problems+="info: no port in '$DET_OUT'; "
	# The serving process (info's pid) runs under its own filter, the VM's child under husk's.
	local server
	husk_det info --format json web
	server=$(grep -o '"pid" *: *[0-9]*' <<<"$DET_OUT" | grep -o '[0-9]*$' || true)
	[[ -n $server && $(awk '$1 == "Seccomp:" { print $2 }' "/proc/$server/status") == 2 ]] ||
		problems+="the serving process '$server' has no seccomp filter; "
	husk_det exec web -- true
	[[ $DET_RC == 125 && $DET_ERR == "husk: exec: web: an image run has no agent; use husk logs web" ]] ||
		problems+="exec web: status $DET_RC, '$DET_ERR'; "
	# logs -f goes on until the app ends; husk stop is SIGTERM, which httpd ends by.
	HUSK_HOME=$OCI_HOME timeout 120 "${HUSK_CMD[@]}" logs -f web >"$LOGDIR/det-follow.out" 2>&1 &
	follow_pid=$!
	t0=$(now)
	husk_det stop web
	took=$(elapsed "$t0" "$(now)")
	[[ $DET_RC == 0 && ${took%.*} -lt 8 ]] || problems+="stop: status $DET_RC after ${took}s; "
	wait "$follow_pid" || problems+="logs -f: status $? (124: it did not end with the app); "
	[[ $(cat "$LOGDIR/det-follow.out") == *out-two* ]] || problems+="logs -f: '$(head -c 200 "$LOGDIR/det-follow.out")'; "
	[[ $(det_state web) == "exited (143)" ]] || problems+="after stop: web is '$(det_state web)'; "

	husk_det "${run[@]}" --name three --entrypoint /bin/sh -- -c 'echo bye; exit 3'
	[[ $DET_RC == 0 ]] || problems+="three: status $DET_RC, '$DET_ERR'; "
	det_wait_state three "exited (3)" || problems+="three is '$(det_state three)', not exited (3); "
	husk_det start three
	[[ $DET_RC == 0 ]] || problems+="start three: status $DET_RC, '$DET_ERR'; "
	det_wait_state three "exited (3)" || problems+="three after start: '$(det_state three)'; "
	husk_det logs three
	[[ $DET_OUT == $'bye\nbye' ]] || problems+="logs three after start: '$DET_OUT'; "

	husk_det "${run[@]}" --name bad --entrypoint /no/such/app
	[[ $DET_RC == 127 && $DET_ERR == *"/no/such/app"* && $(wc -l <"$LOGDIR/det.err") == 1 ]] ||
		problems+="bad entrypoint: status $DET_RC, '$DET_ERR'; "
	[[ $(det_state bad) == "exited (127)" ]] || problems+="bad is '$(det_state bad)'; "

	local n
	for n in web three bad; do
		husk_det delete "$n"
		[[ $DET_RC == 0 && ! -e $OCI_HOME/instances/$n ]] || problems+="delete $n: status $DET_RC; "
	done
	if [[ -z $problems ]]; then
		pass oci-detach
	else
		fail oci-detach "$problems" "$LOGDIR/oci-detach.log"
	fi
}

# -i: the bytes through cat in the guest come back the same, stderr apart,
# and the app's status is husk's, even with a process it left behind
# holding its stdout (the run ends with the app, as a container); then
# what the session costs in time.
test_oci_stdin() {
	local in=$LOGDIR/oci-stdin.in why="" t0 took
	{
		seq 1 2000
		head -c 180000 /dev/urandom
	} >"$in"
	OCI_IN=$in husk_oci oci-stdin --image "$ASSETS/oci/layout" -i --entrypoint /bin/sh -- \
		-c 'cat; echo to-stderr >&2; sleep 600 & exit 3'
	husk_oci_wait
	cmp -s "$in" "$OCI_OUT" || why+="stdout is not the input ($(wc -c <"$OCI_OUT") of $(wc -c <"$in") bytes); "
	[[ $(cat "$OCI_ERR") == to-stderr ]] || why+="stderr '$(head -c 200 "$OCI_ERR")'; "
	[[ $OCI_RC == 3 ]] || why+="status $OCI_RC, want 3; "
	verdict oci-stdin "$why"
	local flags times=""
	for flags in "" -i "" -i; do
		t0=$(now)
		# shellcheck disable=SC2086 # no flag, or one
		husk_oci oci-time --image "$ASSETS/oci/layout" $flags --entrypoint /bin/true
		husk_oci_wait
		took=$(elapsed "$t0" "$(now)")
		times+="${flags:-plain} ${took}s (status $OCI_RC); "
	done
	info "oci-stdin: husk run --image -- true: $times"
}

# -t with husk's own streams no terminal, as docker allows: the app still
# has one; and a process it leaves on that terminal does not keep the run.
test_oci_tty() {
	local why="" out
	# shellcheck disable=SC2016 # for the guest's shell
	husk_oci oci-tty --image "$ASSETS/oci/layout" -t --entrypoint /bin/sh -- \
		-c 'test -t 0 && test -t 1 && test -t 2 && echo tty=yes; echo to-stderr >&2
			echo name=$(tty); echo size=$(stty size); echo term=$TERM; sleep 600 & exit 4'
	husk_oci_wait
	out=$(tr -d '\r' <"$OCI_OUT")
	[[ $out == *tty=yes* ]] || why+="the app's 0, 1 and 2 are not all a terminal; "
	[[ $out == *to-stderr* && ! -s $OCI_ERR ]] || why+="stderr not merged into stdout; "
	[[ $out == *name=/dev/pts/* ]] || why+="tty says '$(sed -n 's/^name=//p' <<<"$out")'; "
	[[ $out == *"size=24 80"* ]] || why+="stty size says '$(sed -n 's/^size=//p' <<<"$out")', want 24 80; "
	[[ $out == *term=xterm* ]] || why+="TERM is '$(sed -n 's/^term=//p' <<<"$out")', want xterm; "
	grep -q $'\r$' "$OCI_OUT" || why+="no CR LF: not through a terminal; "
	[[ $OCI_RC == 4 ]] || why+="status $OCI_RC, want 4; "
	verdict oci-tty "${why:+$why stdout: $(tr -c '[:print:]' ' ' <"$OCI_OUT" | head -c 300)}"
}

# -it on a terminal (pty-drive's): its size and a resize reach the app's,
# Ctrl-C is the guest's (its sleep ends by SIGINT; husk, whose terminal is
# raw, goes on, where a SIGINT of its own would end the app with 143), and
# exit 7 is husk's.
test_oci_tty_interactive() {
	local rc=0 out=$LOGDIR/oci-tty-interactive.out
	ensure_devpts || true
	# shellcheck disable=SC2016 # for the guest's shell
	HUSK_HOME=$OCI_HOME timeout 300 "$ASSETS/vsock/pty-drive" 33 111 \
		'send:stty size\n' 'wait:33 111' 'resize:40,100' 'send:stty size\n' 'wait:40 100' \
		'send:echo sl""eeping; sleep 60\n' 'wait:sleeping' "send:"$'\003' \
		'send:echo rc=$?\n' 'wait:rc=130' 'send:exit 7\n' -- \
		"${HUSK_CMD[@]}" run --kernel "$ASSETS/cloud/vmlinuz" --modules "$ASSETS/exec-modules" \
		--console="$LOGDIR/oci-tty-interactive.console" --image "$ASSETS/oci/layout" -it \
		--entrypoint /bin/sh >"$out" 2>"$LOGDIR/oci-tty-interactive.err" || rc=$?
	verdict oci-tty-interactive "$([[ $rc == 7 ]] ||
		echo "status $rc, want 7: $(tr -c '[:print:]' ' ' <"$out" | tail -c 400) $(head -c 200 "$LOGDIR/oci-tty-interactive.err")")"
}

run_oci_tests() {
	local t
	if [[ ! -d $ASSETS/exec-modules || ! -d $ASSETS/oci/layout ]]; then
		for t in "${OCI_TESTS[@]}"; do skip "$t" "no image or module tree for husk run --image in the assets"; done
		return 0
	fi
	OCI_HOME=$LOGDIR/oci-home
	# The test host's loopback is down until someone brings it up (as net_host_setup does).
	[[ -z ${HUSK_TEST_NESTED:-} ]] || ip link set lo up
	want oci-bad-image && test_oci_bad_image
	want oci-layers oci-config oci-exit-status oci-entrypoint-cmd && test_oci_layout
	want oci-archive oci-entrypoint-cmd && test_oci_archive
	want oci-override oci-volume && test_oci_override
	want oci-publish oci-stop && test_oci_publish
	want oci-stop-kill && test_oci_stop_kill
	want oci-detach && test_oci_detach
	want oci-stdin && test_oci_stdin
	want oci-tty && test_oci_tty
	want oci-tty-interactive && test_oci_tty_interactive
	return 0
}
