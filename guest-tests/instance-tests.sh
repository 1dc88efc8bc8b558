# shellcheck shell=bash
# shellcheck disable=SC2016 # single quotes: the guest's shell expands these
# SPDX-License-Identifier: MIT
#
# Whole-VM tests of instances (husk launch, list, info, stop, start,
# restart, delete), sourced by vm-tests.sh (whose pass, fail, skip, want,
# info, now, elapsed, http_get and HUSK_CMD they use). They boot the cloud
# image lib/mkcloudimage.sh builds (HUSK_CLOUD_IMAGES, as disk-tests.sh),
# served by busybox httpd as if it were Debian's, so that the alias and the
# URL go through husk's download. Four boots in all: two instances launched
# at once, then one stopped and started, killed and restarted. Between
# launch and stop, husk exec and husk shell through the instance's agent
# (husk-agent, which husk's vendor-data installs from the seed). web is
# launched with --mount; husk mount and umount on it while it runs, and
# its mounts again after stop and start (instance-mount). other is
# launched with --user nobody when the tests run as root (instance-user):
# its serving process gives root up, and is stopped and started again.

INSTANCE_TESTS=(instance-launch instance-list instance-port instance-two instance-exec
	instance-exec-stdin instance-shell instance-transfer instance-mount instance-mount-kept instance-agent-killed instance-reboot
	instance-stop-start instance-user
	instance-killed instance-busy instance-errors instance-delete)

INSTANCE_HTTP=127.0.0.1:18080
INSTANCE_USER=65534:65534 # nobody and nogroup: who other's husk becomes

# user-data for instance NAME: a file of its own, served over HTTP on port
# 80 by a systemd unit (so the server comes back at every boot). SSH host
# keys are not made: slow under TCG, and not used here.
instance_user_data() {
	cat <<-EOF
		#cloud-config
		ssh_deletekeys: false
		ssh_genkeytypes: []
		write_files:
		  - path: /etc/systemd/system/husk-web.service
		    content: |
		      [Unit]
		      Description=husk test web server
		      After=network.target
		      [Service]
		      ExecStart=/usr/bin/python3 -m http.server 80 --directory /srv/www
		      [Install]
		      WantedBy=multi-user.target
		runcmd:
		  - [sh, -c, 'mkdir -p /srv/www && echo "first-boot $1" >/srv/www/$1.txt && sync']
		  - [systemctl, enable, --now, husk-web.service]
	EOF
}

# The image server: Debian's layout for the alias, a broken image beside a
# SHA256SUMS that does not match it.
instance_serve_images() {
	local srv=$LOGDIR/image-server
	mkdir -p "$srv/bookworm/latest" "$srv/bad"
	ln -sf "$CLOUD_DIR/debian-12-cloud.qcow2" "$srv/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
	(cd "$srv/bookworm/latest" && sha512sum debian-12-genericcloud-amd64.qcow2 >SHA512SUMS)
	head -c 1048576 /dev/urandom >"$srv/bad/broken.qcow2"
	echo "$(printf '0%.0s' $(seq 64))  broken.qcow2" >"$srv/bad/SHA256SUMS"
	# The test host's loopback is down until someone brings it up.
	[[ -z ${HUSK_TEST_NESTED:-} ]] || ip link set lo up
	busybox httpd -f -p "$INSTANCE_HTTP" -h "$srv" &
	INSTANCE_HTTPD=$!
	for _ in $(seq 20); do
		http_get "http://$INSTANCE_HTTP/bookworm/latest/SHA512SUMS" /dev/null && break
		sleep 0.5
	done
}

# husk with its output in $LOGDIR/instance-NAME.{out,err}; sets IRC.
#   ihusk NAME ARG...
ihusk() {
	local name=$1
	shift
	IRC=0
	"${HUSK_CMD[@]}" "$@" >"$LOGDIR/instance-$name.out" 2>"$LOGDIR/instance-$name.err" || IRC=$?
}

# Waits for background husk commands, with a note every minute (the
# nested test host stops one whose tests print nothing for 5 minutes).
#   instance_wait PID...
instance_wait() {
	local next=$((SECONDS + 60)) pid
	for pid in "$@"; do
		while kill -0 "$pid" 2>/dev/null; do
			if ((SECONDS >= next)); then
				info "instances: still waiting ($(husk_list_line))"
				next=$((SECONDS + 60))
			fi
			sleep 1
		done
	done
}

husk_list_line() {
	"${HUSK_CMD[@]}" list 2>&1 | tail -n +2 | awk '{printf "%s %s; ", $1, $2}'
}

# The state `husk list` shows for NAME.
instance_state() {
	"${HUSK_CMD[@]}" list | awk -v n="$1" '$1 == n { print $2 }'
}

# GET http://127.0.0.1:PORT/FILE: the body, or nothing.
instance_get() {
	local out=$LOGDIR/instance-get.out
	rm -f "$out"
	if http_get "http://127.0.0.1:$1/$2" "$out"; then cat "$out"; fi
}

# Launches web (from the alias) and, for instance-two, other (from the
# URL) at once. Two first boots at once take twice as long under TCG.
instance_test_launch() {
	local t0 p1 p2="" rc1 rc2=0 problems=""
	instance_user_data web >"$LOGDIR/web.yaml"
	instance_user_data other >"$LOGDIR/other.yaml"
	rm -rf "$LOGDIR/imount-launch" "$LOGDIR/imount" && mkdir -p "$LOGDIR/imount-launch" "$LOGDIR/imount"
	echo launched-with-it >"$LOGDIR/imount-launch/launch.txt"
	echo from-host >"$LOGDIR/imount/host.txt"
	t0=$(now)
	"${HUSK_CMD[@]}" launch debian-12 --name web --memory 768M --cloud-init "$LOGDIR/web.yaml" \
		--mount "$LOGDIR/imount-launch:/srv/launched:ro" \
		-p 8080:80 --timeout 2400 >"$LOGDIR/instance-launch-web.out" 2>"$LOGDIR/instance-launch-web.err" &
	p1=$!
	if want instance-two instance-user; then
		local as_user=()
		[[ $(id -u) != 0 ]] || as_user=(--user "$INSTANCE_USER")
		"${HUSK_CMD[@]}" launch "http://$INSTANCE_HTTP/bookworm/latest/debian-12-genericcloud-amd64.qcow2" \
			--name other --memory 768M --cloud-init "$LOGDIR/other.yaml" -p 8081:80 --timeout 2400 \
			"${as_user[@]}" >"$LOGDIR/instance-launch-other.out" 2>"$LOGDIR/instance-launch-other.err" &
		p2=$!
	fi
	instance_wait "$p1" $p2
	rc1=0
	wait "$p1" || rc1=$?
	[[ -z $p2 ]] || wait "$p2" || rc2=$?
	info "instances: launched in $(elapsed "$t0" "$(now)")s (status $rc1${p2:+, $rc2})"
	[[ $rc1 == 0 ]] || problems+="launch web: status $rc1: $(tail -n1 "$LOGDIR/instance-launch-web.err"); "
	[[ $rc2 == 0 ]] || problems+="launch other: status $rc2: $(tail -n1 "$LOGDIR/instance-launch-other.err"); "
	grep -q '^Launched: web$' "$LOGDIR/instance-launch-web.out" || problems+="launch did not print the name; "
	grep -q '^IPv4: 10.0.2.15$' "$LOGDIR/instance-launch-web.out" || problems+="launch did not print the IPv4; "
	if [[ -z $problems ]]; then
		pass instance-launch
	else
		fail instance-launch "${problems%; }" "$HUSK_HOME/instances/web/console.log"
	fi
	[[ $rc1 == 0 ]]
}

instance_test_list() {
	local problems="" json
	[[ $(instance_state web) == running ]] || problems+="list shows web $(instance_state web); "
	"${HUSK_CMD[@]}" list | grep -q '^web .* 10\.0\.2\.15 ' || problems+="list shows no IPv4; "
	json=$("${HUSK_CMD[@]}" list --format json)
	grep -q '"state" : "running"' <<<"$json" || problems+="list --format json: no running state; "
	"${HUSK_CMD[@]}" info web | grep -q '^State: *running' || problems+="info: not running; "
	"${HUSK_CMD[@]}" info web | grep -q '^Ports: *127.0.0.1:8080->80/tcp' || problems+="info: no port; "
	json=$("${HUSK_CMD[@]}" info web --format json)
	grep -q '"ipv4" : "10.0.2.15"' <<<"$json" || problems+="info --format json: no ipv4; "
	grep -q '"uptime_s"' <<<"$json" || problems+="info --format json: no uptime; "
	# The console's reply line comes before the log it replays: output, no error.
	local out=$LOGDIR/iconsole.out errs=$LOGDIR/iconsole.err
	timeout 3 "${HUSK_CMD[@]}" console web </dev/null >"$out" 2>"$errs" || true
	[[ -s $out ]] || problems+="console: no output; "
	[[ ! -s $errs ]] || problems+="console: $(head -c 200 "$errs"); "
	if [[ -z $problems ]]; then pass instance-list; else fail instance-list "${problems%; }"; fi
}

instance_test_ports() {
	local got
	got=$(instance_get 8080 web.txt)
	if [[ $got == "first-boot web" ]]; then
		pass instance-port
	else
		fail instance-port "GET :8080/web.txt gave '$got'" "$HUSK_HOME/instances/web/console.log"
	fi
	want instance-two || return 0
	local problems=""
	[[ $(instance_get 8081 other.txt) == "first-boot other" ]] || problems+="other's port does not serve its file; "
	[[ -z $(instance_get 8081 web.txt) ]] || problems+="other serves web's file; "
	[[ -z $(instance_get 8080 other.txt) ]] || problems+="web serves other's file; "
	if [[ -z $problems ]]; then pass instance-two; else fail instance-two "${problems%; }"; fi
}

# husk exec web ARG...: its status on stdout, its output in $LOGDIR/iexec.{out,err}.
iexec() {
	local rc=0
	timeout 300 "${HUSK_CMD[@]}" exec web "$@" </dev/null >"$LOGDIR/iexec.out" 2>"$LOGDIR/iexec.err" || rc=$?
	echo "$rc"
}

# Statuses, streams, options, Ctrl-C, ten at once.
instance_test_exec() {
	local problems="" got="" want rc pid n pids=()
	"${HUSK_CMD[@]}" info web | grep -q '^Agent: *ready' || problems+="info does not show the agent ready; "
	for want in 0 1 42; do got+="$(iexec -- sh -c "exit $want") "; done
	got+=$(iexec -- sh -c 'kill -TERM $$')
	[[ $got == "0 1 42 143" ]] || problems+="statuses '$got', want '0 1 42 143': $(head -c 200 "$LOGDIR/iexec.err"); "
	rc=$(iexec -- sh -c 'printf out; printf err >&2')
	[[ $rc == 0 && $(cat "$LOGDIR/iexec.out") == out && $(cat "$LOGDIR/iexec.err") == err ]] ||
		problems+="streams: status $rc, '$(cat "$LOGDIR/iexec.out")' '$(cat "$LOGDIR/iexec.err")'; "
	rc=$(iexec --workdir /srv/www --env A=1 -- sh -c 'echo "$PWD $A $(id -un)"')
	[[ $(cat "$LOGDIR/iexec.out") == "/srv/www 1 root" ]] ||
		problems+="--workdir/--env gave '$(cat "$LOGDIR/iexec.out")' (status $rc); "
	# Not under timeout(1): the signal is for husk itself.
	"${HUSK_CMD[@]}" exec web -- sleep 600 </dev/null >/dev/null 2>&1 &
	pid=$!
	sleep 5
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	[[ $rc == 130 ]] || problems+="Ctrl-C: status $rc; "
	rc=$(iexec -- sh -c 'pgrep -c -f "^sleep 600" || true')
	[[ $(cat "$LOGDIR/iexec.out") == 0 ]] || problems+="sleep 600 outlived Ctrl-C; "
	for n in 1 2 3 4 5 6 7 8 9 10; do
		timeout 300 "${HUSK_CMD[@]}" exec web -- sh -c "echo \$(($n * $n)); exit $n" \
			</dev/null >"$LOGDIR/iparallel.$n" 2>&1 &
		pids[n]=$!
	done
	for n in 1 2 3 4 5 6 7 8 9 10; do
		rc=0
		wait "${pids[n]}" || rc=$?
		[[ $rc == "$n" && $(cat "$LOGDIR/iparallel.$n") == "$((n * n))" ]] ||
			problems+="parallel #$n: status $rc; "
	done
	if [[ -z $problems ]]; then pass instance-exec; else fail instance-exec "${problems%; }"; fi
}

# 20 MiB through cat in the guest and back.
instance_test_exec_stdin() {
	local rc=0 want got
	head -c $((20 * 1024 * 1024)) /dev/urandom >"$LOGDIR/istdin.bin"
	want=$(sha256sum <"$LOGDIR/istdin.bin")
	timeout 900 "${HUSK_CMD[@]}" exec web -- cat <"$LOGDIR/istdin.bin" >"$LOGDIR/istdout.bin" \
		2>"$LOGDIR/iexec.err" || rc=$?
	got=$(sha256sum <"$LOGDIR/istdout.bin")
	if [[ $rc == 0 && $got == "$want" ]]; then
		pass instance-exec-stdin
	else
		fail instance-exec-stdin "status $rc; sha256sum '$got', want '$want': $(head -c 200 "$LOGDIR/iexec.err")"
	fi
}

# A login shell as the default user on a pty: its size, a new size, its status.
instance_test_shell() {
	local rc=0
	ensure_devpts || true # vsock-tests.sh
	timeout 300 "$ASSETS/vsock/pty-drive" 33 111 'send:stty size\n' 'wait:33 111' \
		'resize:40,100' 'send:stty size\n' 'wait:40 100' 'send:echo user=$(id -un)\n' \
		'wait:user=husk' 'send:exit 7\n' -- "${HUSK_CMD[@]}" shell web \
		>"$LOGDIR/ishell.out" 2>"$LOGDIR/ishell.err" || rc=$?
	if [[ $rc == 7 ]]; then
		pass instance-shell
	else
		fail instance-shell "status $rc, want 7: $(tr -c '[:print:]' ' ' <"$LOGDIR/ishell.out" | tail -c 300) $(head -c 200 "$LOGDIR/ishell.err")"
	fi
}

# A file into the instance and back, with chesha256sums on both sides.
instance_test_transfer() {
	local problems="" rc=0
	head -c $((5 * 1024 * 1024)) /dev/urandom >"$LOGDIR/inotes.bin"
	rm -rf "$LOGDIR/iback" && mkdir -p "$LOGDIR/iback"
	"${HUSK_CMD[@]}" transfer "$LOGDIR/inotes.bin" web:/tmp/ 2>"$LOGDIR/itransfer.err" || rc=$?
	[[ $rc == 0 ]] || problems+="in: status $rc: $(head -c 200 "$LOGDIR/itransfer.err"); "
	rc=0
	"${HUSK_CMD[@]}" transfer web:/tmp/inotes.bin "$LOGDIR/iback/" 2>"$LOGDIR/itransfer.err" || rc=$?
	[[ $rc == 0 ]] || problems+="out: status $rc: $(head -c 200 "$LOGDIR/itransfer.err"); "
	cmp -s "$LOGDIR/inotes.bin" "$LOGDIR/iback/inotes.bin" || problems+="the file came back changed; "
	iexec -- sh -c 'sha256sum </tmp/inotes.bin' >/dev/null
	[[ $(cat "$LOGDIR/iexec.out") == "$(sha256sum <"$LOGDIR/inotes.bin")" ]] || problems+="the guest's sha256sum differs"
	if [[ -z $problems ]]; then pass instance-transfer; else fail instance-transfer "${problems%; }"; fi
}

# husk mount on the running web: both ways, --ro, info; launch --mount's there too.
instance_test_mount() {
	local problems="" rc dir=$LOGDIR/imount
	rc=$(iexec -- cat /srv/launched/launch.txt)
	[[ $rc == 0 && $(cat "$LOGDIR/iexec.out") == launched-with-it ]] ||
		problems+="launch --mount: status $rc, '$(head -c 200 "$LOGDIR/iexec.err")'; "
	ihusk mount mount "$dir" web:/home/debian/project
	[[ $IRC == 0 ]] || problems+="mount: status $IRC: $(cat "$LOGDIR/instance-mount.err"); "
	rc=$(iexec -- sh -c 'cat /home/debian/project/host.txt && echo from-guest >/home/debian/project/guest.txt')
	[[ $rc == 0 && $(cat "$LOGDIR/iexec.out") == from-host ]] ||
		problems+="the guest read '$(cat "$LOGDIR/iexec.out")' (status $rc: $(head -c 200 "$LOGDIR/iexec.err")); "
	[[ $(cat "$dir/guest.txt" 2>/dev/null) == from-guest ]] || problems+="the guest's write did not reach the host; "
	ihusk mount-ro mount --ro "$dir" web:/mnt/ro
	rc=$(iexec -- sh -c 'echo x >/mnt/ro/new.txt')
	[[ $IRC == 0 && $rc != 0 && ! -e $dir/new.txt ]] || problems+="--ro: mount status $IRC, write status $rc; "
	"${HUSK_CMD[@]}" info web | grep -q "$dir on /home/debian/project$" || problems+="info does not list the mount; "
	"${HUSK_CMD[@]}" info web --format json | grep -q '"guest" : "/mnt/ro"' || problems+="info --format json does not list /mnt/ro; "
	ihusk umount umount web:/mnt/ro
	[[ $IRC == 0 ]] || problems+="umount: status $IRC: $(cat "$LOGDIR/instance-umount.err"); "
	ihusk umount-again umount web:/mnt/ro
	[[ $IRC == 2 && $(wc -l <"$LOGDIR/instance-umount-again.err") == 1 ]] || problems+="umount of nothing: status $IRC; "
	ihusk mount-missing mount "$LOGDIR/no-such" web:/mnt/x
	[[ $IRC == 2 ]] || problems+="a missing folder: status $IRC; "
	ihusk mount-relative mount "$dir" web:mnt/x
	[[ $IRC == 2 ]] || problems+="a relative guest path: status $IRC; "
	if [[ -z $problems ]]; then pass instance-mount; else fail instance-mount "${problems%; }"; fi
}

# After stop and start: the mounts are back; one to a stopped instance is refused.
instance_test_mount_kept() {
	local problems="" rc tries=0
	# The agent mounts them once it has said HELLO: give it a moment.
	while ((tries++ < 30)); do
		rc=$(iexec -- cat /home/debian/project/guest.txt)
		[[ $rc == 0 ]] && break
		sleep 2
	done
	[[ $rc == 0 && $(cat "$LOGDIR/iexec.out") == from-guest ]] ||
		problems+="after start, the mount: status $rc, '$(head -c 200 "$LOGDIR/iexec.err")'; "
	rc=$(iexec -- cat /srv/launched/launch.txt)
	[[ $rc == 0 ]] || problems+="after start, launch --mount's: status $rc; "
	[[ ${INSTANCE_STOPPED_MOUNT:-} == 1 ]] || problems+="mount on a stopped instance: status ${INSTANCE_STOPPED_MOUNT:-}; "
	ihusk umount-kept umount web:/home/debian/project
	[[ $IRC == 0 ]] || problems+="umount: status $IRC; "
	if [[ -z $problems ]]; then pass instance-mount-kept; else fail instance-mount-kept "${problems%; }"; fi
}

# A session, then the agent, killed in the guest: one line, 125; systemd brings the agent back.
instance_test_agent_killed() {
	local problems="" rc tries=0
	rc=$(iexec -- sh -c 'kill -KILL $PPID; sleep 5')
	[[ $rc == 125 && $(wc -l <"$LOGDIR/iexec.err") == 1 ]] && grep -q "the agent went away" "$LOGDIR/iexec.err" ||
		problems+="session killed: status $rc, '$(cat "$LOGDIR/iexec.err")'; "
	iexec -- systemctl kill -s KILL husk-agent.service >/dev/null
	rc=125
	while ((rc != 0 && tries++ < 30)); do
		sleep 2
		rc=$(iexec -- true)
	done
	((rc == 0)) || problems+="the agent did not come back: $(cat "$LOGDIR/iexec.err"); "
	if [[ -z $problems ]]; then pass instance-agent-killed; else fail instance-agent-killed "${problems%; }"; fi
}

# A reboot from inside the guest: the same husk process boots it again,
# the launch's mount is made again, and the instance is ready once more.
instance_test_reboot() {
	local problems="" pid boot_id state="" t0 tries=0 rc
	pid=$("${HUSK_CMD[@]}" info web --format json | sed -n 's/.*"pid" : \([0-9]*\).*/\1/p')
	iexec -- cat /proc/sys/kernel/random/boot_id >/dev/null
	boot_id=$(cat "$LOGDIR/iexec.out")
	t0=$(now)
	iexec -- systemctl reboot >/dev/null
	# Booting again under TCG takes a minute or more.
	while ((tries++ < 600)); do
		state=$(instance_state web)
		[[ $state == running && $(grep -c 'booting the guest again' "$HUSK_HOME/instances/web/husk.log") -ge 1 ]] && break
		[[ $state == stopped ]] && break
		sleep 1
	done
	info "instances: reboot to running took $(elapsed "$t0" "$(now)")s ($state)"
	[[ $state == running ]] || problems+="list shows web $state after the reboot; "
	grep -q 'the guest rebooted' "$HUSK_HOME/instances/web/husk.log" || problems+="husk.log does not say the guest rebooted; "
	[[ $("${HUSK_CMD[@]}" info web --format json | sed -n 's/.*"pid" : \([0-9]*\).*/\1/p') == "$pid" ]] ||
		problems+="another husk process serves web after the reboot; "
	rc=$(iexec -- cat /proc/sys/kernel/random/boot_id)
	[[ $rc == 0 && $(cat "$LOGDIR/iexec.out") != "$boot_id" ]] || problems+="boot id after the reboot: status $rc, same id; "
	tries=0
	while ((tries++ < 30)); do
		rc=$(iexec -- cat /srv/launched/launch.txt)
		[[ $rc == 0 ]] && break
		sleep 2
	done
	[[ $rc == 0 && $(cat "$LOGDIR/iexec.out") == launched-with-it ]] || problems+="launch --mount's after the reboot: status $rc; "
	if [[ -z $problems ]]; then
		pass instance-reboot
	else
		fail instance-reboot "${problems%; }" "$HUSK_HOME/instances/web/husk.log"
	fi
}

instance_test_stop_start() {
	local t0 problems="" got
	t0=$(now)
	# The guest's shutdown takes more than husk stop's 60 s under TCG.
	ihusk stop stop web --timeout 600
	info "instances: husk stop took $(elapsed "$t0" "$(now)")s (status $IRC)"
	[[ $IRC == 0 ]] || problems+="stop: status $IRC; "
	ihusk mount-stopped mount "$LOGDIR/imount" web:/mnt/x
	INSTANCE_STOPPED_MOUNT=$IRC
	grep -q 'web is not running' "$LOGDIR/instance-mount-stopped.err" || INSTANCE_STOPPED_MOUNT="$IRC, no 'not running'"
	[[ $(instance_state web) == stopped ]] || problems+="list shows web $(instance_state web) after stop; "
	if ! grep -q 'reboot: Power down' "$HUSK_HOME/instances/web/console.log"; then
		problems+="the guest did not power off by itself (the power button; the console "
		problems+="says: $(grep -a -m3 -e 'Power Button' -e 'Power key' "$HUSK_HOME/instances/web/console.log" | tr -d '\r' | tr '\n' '/' || true)); "
	fi
	instance_start web start
	[[ $IRC == 0 ]] || problems+="start: status $IRC: $(tail -n1 "$LOGDIR/instance-start.err"); "
	got=$(instance_get 8080 web.txt)
	[[ $got == "first-boot web" ]] || problems+="after start, GET web.txt gave '$got'; "
	[[ $(iexec -- cat /srv/www/web.txt) == 0 && $(cat "$LOGDIR/iexec.out") == "first-boot web" ]] ||
		problems+="after start, husk exec: $(cat "$LOGDIR/iexec.err"); "
	if [[ -z $problems ]]; then
		pass instance-stop-start
	else
		fail instance-stop-start "${problems%; }" "$HUSK_HOME/instances/web/console.log"
	fi
}

# husk start NAME in the background, waited for with a note a minute; its
# output in $LOGDIR/instance-LOG.{out,err}, its status in IRC.
#   instance_start NAME LOG
instance_start() {
	local t0 pid
	t0=$(now)
	"${HUSK_CMD[@]}" start "$1" --timeout 2400 >"$LOGDIR/instance-$2.out" 2>"$LOGDIR/instance-$2.err" &
	pid=$!
	instance_wait "$pid"
	IRC=0
	wait "$pid" || IRC=$?
	info "instances: husk start $1 took $(elapsed "$t0" "$(now)")s (status $IRC)"
}

# The uid of the process serving instance NAME, from /proc.
instance_uid() {
	local pid
	pid=$("${HUSK_CMD[@]}" info "$1" --format json | sed -n 's/.*"pid" : \([0-9]*\).*/\1/p')
	[[ -n $pid ]] && awk '/^Uid:/ { print $2 "," $3 "," $4 "," $5 }' "/proc/$pid/status"
}

# other, launched by root with --user nobody: its husk is nobody's after the
# set-up, writes only in state/ (which nobody owns), is reached by exec, and
# is stopped and started again by root from a configuration nobody cannot
# change; a link nobody leaves in state/ is not followed by that start.
instance_test_user() {
	local dir=$HUSK_HOME/instances/other problems="" uid victim=$LOGDIR/instance-user-victim
	if [[ $(id -u) != 0 ]]; then
		skip instance-user "needs root: launch --user is root giving root up"
		return 0
	fi
	uid=${INSTANCE_USER%%:*}
	[[ $(instance_uid other) == "$uid,$uid,$uid,$uid" ]] ||
		problems+="other's husk runs as uids '$(instance_uid other)', want $uid; "
	[[ $(stat -c %u "$dir/state") == "$uid" ]] || problems+="state/ is not nobody's; "
	[[ $(stat -c %u "$dir/config.json") == 0 && $(stat -c %u "$dir") == 0 ]] ||
		problems+="config.json or the folder is not root's; "
	[[ -s $dir/state/console.log && $(stat -c %u "$dir/state/console.log") == "$uid" ]] ||
		problems+="no console.log of nobody's in state/; "
	[[ ! -e $dir/console.log ]] || problems+="a console.log outside state/; "
	IRC=0
	timeout 300 "${HUSK_CMD[@]}" exec other -- cat /etc/hostname >"$LOGDIR/iuser.out" 2>"$LOGDIR/iuser.err" ||
		IRC=$?
	[[ $IRC == 0 && $(cat "$LOGDIR/iuser.out") == other ]] ||
		problems+="exec: status $IRC, '$(head -c 200 "$LOGDIR/iuser.out" "$LOGDIR/iuser.err")'; "
	ihusk user-stop stop other --timeout 600
	[[ $IRC == 0 ]] || problems+="stop: status $IRC: $(cat "$LOGDIR/instance-user-stop.err"); "
	[[ $(cat "$dir/state/exit-status" 2>&1) == 0 ]] || problems+="exit-status in state/ is not 0; "
	# What nobody could do while it served other: a link where root's start would write.
	echo untouched >"$victim"
	mv "$dir/state/console.log" "$dir/state/console.log.first"
	ln -s "$victim" "$dir/state/console.log"
	chown -h "$INSTANCE_USER" "$dir/state/console.log"
	instance_start other user-start
	[[ $IRC == 0 ]] || problems+="start: status $IRC: $(tail -n1 "$LOGDIR/instance-user-start.err"); "
	[[ $(instance_uid other) == "$uid,$uid,$uid,$uid" ]] || problems+="after start, uids '$(instance_uid other)'; "
	[[ $(cat "$victim") == untouched ]] || problems+="the start wrote through nobody's link; "
	[[ $(instance_get 8081 other.txt) == "first-boot other" ]] || problems+="after start, other's port does not serve; "
	if [[ -z $problems ]]; then
		pass instance-user
	else
		fail instance-user "${problems%; }" "$dir/state/console.log.first"
	fi
}

# SIGKILL to the instance's husk: list shows it stopped; restart boots it
# with what it had written; a second command meanwhile is told to wait.
instance_test_killed() {
	local pid problems="" got busy=""
	pid=$("${HUSK_CMD[@]}" info web --format json | sed -n 's/.*"pid" : \([0-9]*\).*/\1/p')
	if [[ -n $pid ]]; then kill -9 "$pid"; fi
	sleep 1
	[[ $(instance_state web) == stopped ]] || problems+="list shows web $(instance_state web) after SIGKILL; "
	"${HUSK_CMD[@]}" restart web >"$LOGDIR/instance-restart.out" 2>"$LOGDIR/instance-restart.err" &
	local restart=$!
	sleep 5
	ihusk busy stop web
	[[ $IRC == 6 ]] && grep -q 'another husk command is working on web' "$LOGDIR/instance-busy.err" ||
		busy="stop during restart: status $IRC ($(cat "$LOGDIR/instance-busy.err"))"
	instance_wait "$restart"
	IRC=0
	wait "$restart" || IRC=$?
	[[ $IRC == 0 ]] || problems+="restart: status $IRC: $(tail -n1 "$LOGDIR/instance-restart.err"); "
	got=$(instance_get 8080 web.txt)
	[[ $got == "first-boot web" ]] || problems+="after restart, GET web.txt gave '$got'; "
	if [[ -z $problems ]]; then
		pass instance-killed
	else
		fail instance-killed "${problems%; }" "$HUSK_HOME/instances/web/console.log"
	fi
	if [[ -z $busy ]]; then pass instance-busy; else fail instance-busy "$busy"; fi
}

instance_test_errors() {
	local problems=""
	ihusk dup launch debian-12 --name web
	[[ $IRC == 2 && $(wc -l <"$LOGDIR/instance-dup.err") == 1 ]] ||
		problems+="duplicate name: status $IRC, $(cat "$LOGDIR/instance-dup.err"); "
	ihusk badname launch debian-12 --name Web
	[[ $IRC == 2 ]] || problems+="bad name: status $IRC; "
	ihusk broken launch "http://$INSTANCE_HTTP/bad/broken.qcow2" --name broken
	[[ $IRC == 2 ]] && grep -q 'does not match its checksum' "$LOGDIR/instance-broken.err" ||
		problems+="broken download: status $IRC, $(cat "$LOGDIR/instance-broken.err"); "
	if compgen -G "$HUSK_HOME/images/*broken*" >/dev/null; then
		problems+="the broken download stayed in the cache; "
	fi
	if [[ -e $HUSK_HOME/instances/broken ]]; then problems+="the broken launch left its folder; "; fi
	ihusk missing launch /nonexistent.qcow2 --name missing
	[[ $IRC == 2 ]] || problems+="missing image: status $IRC; "
	if [[ -z $problems ]]; then pass instance-errors; else fail instance-errors "${problems%; }"; fi
}

instance_test_delete() {
	local problems="" left
	if want instance-two instance-user; then
		ihusk delete-other delete other
		[[ $IRC == 0 ]] || problems+="delete other: status $IRC; "
	fi
	ihusk delete-web delete web
	[[ $IRC == 0 ]] || problems+="delete web: status $IRC; "
	left=$(cd "$HUSK_HOME" && find . -mindepth 1 -not -path './images*' -not -path ./instances | tr '\n' ' ')
	[[ -z $left ]] || problems+="left behind: $left; "
	compgen -G "$HUSK_HOME/images/*-debian-12-genericcloud-amd64.qcow2" >/dev/null ||
		problems+="the image cache lost the image; "
	if [[ -z $problems ]]; then pass instance-delete; else fail instance-delete "${problems%; }"; fi
}

run_instance_tests() {
	local t t0
	CLOUD_DIR=${HUSK_CLOUD_IMAGES:-}
	if [[ -z $CLOUD_DIR || ! -r $CLOUD_DIR/debian-12-cloud.qcow2 ]]; then
		for t in "${INSTANCE_TESTS[@]}"; do skip "$t" "no cloud image in ${CLOUD_DIR:-(HUSK_CLOUD_IMAGES unset)}"; done
		return 0
	fi
	t0=$(now)
	export HUSK_HOME=$LOGDIR/husk-home HUSK_IMAGE_BASE=http://$INSTANCE_HTTP
	rm -rf "$HUSK_HOME"
	instance_serve_images
	if instance_test_launch; then
		instance_test_list
		instance_test_ports
		want instance-exec && instance_test_exec
		want instance-exec-stdin && instance_test_exec_stdin
		want instance-shell && instance_test_shell
		want instance-transfer && instance_test_transfer
		want instance-mount && instance_test_mount
		want instance-agent-killed && instance_test_agent_killed
		want instance-reboot && instance_test_reboot
		want instance-user && instance_test_user
		want instance-stop-start instance-mount-kept && instance_test_stop_start
		want instance-mount-kept && instance_test_mount_kept
		want instance-killed instance-busy && instance_test_killed
	else
		for t in instance-list instance-port instance-two instance-exec instance-exec-stdin instance-shell \
			instance-transfer instance-mount instance-mount-kept instance-agent-killed instance-reboot instance-user \
			instance-stop-start instance-killed instance-busy; do
			skip "$t" "the launch failed"
		done
	fi
	instance_test_errors
	instance_test_delete
	kill "$INSTANCE_HTTPD" 2>/dev/null || true
	info "instance tests: $(elapsed "$t0" "$(now)")s"
}
