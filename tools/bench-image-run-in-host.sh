#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The measuring half of tools/bench-image-run, run where the VMMs run:
#   bench-image-run-in-host.sh RUNS VMLINUZ MODULES_DIR IMAGE
# Times, RUNS times each, interleaved:
#   husk-image    husk run --image IMAGE --entrypoint /bin/true
#   husk-rootfs   husk exec --rootfs ROOT -- /bin/true (the same kernel and
#                 root, no image: what the image costs is the difference)
#   crun          crun running /bin/true in the same root (Debian's crun)
# and the time to the first HTTP answer of busybox httpd in the image:
#   husk-http     husk run --image IMAGE -p 127.0.0.1:PORT:8080 ... httpd
#   crun-http     crun, httpd on the host's network
# ROOT is the image's root as husk unpacked it (its cache), so all three
# run the very same files. The first husk run --image (the unpacking) is
# timed apart.
set -euo pipefail

# shellcheck source=tools/bench-in-host-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-in-host-lib.sh"

RUNS=$1 VMLINUZ=$2 MODULES=$3 IMAGE=$4
read -ra HUSK_CMD <<<"${HUSK:-husk}"
export HUSK_HOME=/tmp/bench-husk-home
HUSK_COMMON=(--kernel "$VMLINUZ" --modules "$MODULES" --memory 512M)
CRUN=(crun --root=/tmp/crun-state --cgroup-manager=disabled)
BUNDLE=/tmp/bench-bundle

uptime_now() {
	local t _
	read -r t _ </proc/uptime
	echo "$t"
}

since() {
	awk -v a="$1" -v b="$(uptime_now)" 'BEGIN { printf "%.2f", b - a }'
}

# elapsed COMMAND...: seconds the command took; fails with it, or after two minutes.
elapsed() {
	local t0
	t0=$(uptime_now)
	timeout -k 5 120 "$@" </dev/null >/dev/null 2>>/tmp/bench-image-run.err || return 1
	since "$t0"
}

# A bundle for crun: ROOT read-only, /proc, a tmpfs /dev and /tmp, the
# host's network (no namespace: its port is the host's, as -p gives husk's).
#   write_bundle DIR ROOT ARG...
write_bundle() {
	local dir=$1 root=$2 args="" a
	shift 2
	for a in "$@"; do args+="${args:+,}\"$a\""; done
	mkdir -p "$dir"
	cat >"$dir/config.json" <<-EOF
		{"ociVersion":"1.0.0",
		 "process":{"terminal":false,"user":{"uid":1000,"gid":1000},"args":[$args],
		  "env":["PATH=/bin","HOME=/home/app"],"cwd":"/"},
		 "root":{"path":"$root","readonly":true},
		 "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
		  {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]},
		  {"destination":"/tmp","type":"tmpfs","source":"tmpfs"}],
		 "linux":{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"ipc"},{"type":"uts"}]}}
	EOF
}

# Seconds from START until PORT answers with the page, or "-".
first_answer() {
	local t0=$1 port=$2 pid=$3 i
	for ((i = 0; i < 1200; i++)); do
		if timeout 2 busybox wget -q -O /dev/null "http://127.0.0.1:$port/index.html" 2>/dev/null; then
			since "$t0"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo -
}

husk_http() {
	local t0 pid
	t0=$(uptime_now)
	"${HUSK_CMD[@]}" run --image "$IMAGE" "${HUSK_COMMON[@]}" -p 127.0.0.1:18080:8080 \
		--entrypoint /bin/httpd -- -f -p 8080 -h /www </dev/null >/dev/null 2>>/tmp/bench-image-run.err &
	pid=$!
	first_answer "$t0" 18080 "$pid"
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

crun_http() {
	local t0 pid id=http$1
	t0=$(uptime_now)
	"${CRUN[@]}" run --no-pivot -b "$BUNDLE-http" "$id" </dev/null >/dev/null 2>>/tmp/bench-image-run.err &
	pid=$!
	first_answer "$t0" 18081 "$pid"
	"${CRUN[@]}" kill "$id" KILL 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	"${CRUN[@]}" delete -f "$id" 2>/dev/null || true
}

main() {
	local results i t t0 root
	results=$(mktemp)
	cd /tmp
	# crun wants a cgroup file system, even with its cgroup manager disabled;
	# and --no-pivot, where the host's root is an initramfs (pivot_root fails).
	# The test host's loopback is down until someone brings it up: -p's
	# 127.0.0.1 and crun's httpd (the host's network) need it.
	ip link set lo up
	mkdir -p /sys/fs/cgroup
	grep -q ' /sys/fs/cgroup ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup
	t0=$(uptime_now)
	"${HUSK_CMD[@]}" run --image "$IMAGE" "${HUSK_COMMON[@]}" --entrypoint /bin/true </dev/null ||
		{ echo "bench: husk run --image failed (status $?)"; exit 1; }
	echo "bench: the first husk run --image (unpacking two layers, 2 MB) took $(since "$t0") s"
	root=$(echo "$HUSK_HOME"/oci/roots/*)
	write_bundle "$BUNDLE-true" "$root" /bin/true
	write_bundle "$BUNDLE-http" "$root" /bin/httpd -f -p 18081 -h /www
	"${CRUN[@]}" run --no-pivot -b "$BUNDLE-true" warm </dev/null || { echo "bench: crun failed (status $?)"; exit 1; }
	"${CRUN[@]}" delete -f warm 2>/dev/null || true
	for ((i = 1; i <= RUNS; i++)); do
		t=$(elapsed "${HUSK_CMD[@]}" run --image "$IMAGE" "${HUSK_COMMON[@]}" --entrypoint /bin/true) || t=-
		echo "husk-image $t" >>"$results"
		t=$(elapsed "${HUSK_CMD[@]}" exec "${HUSK_COMMON[@]}" --rootfs "$root" --mount /tmp -- /bin/true) || t=-
		echo "husk-rootfs $t" >>"$results"
		t=$(elapsed "${CRUN[@]}" run --no-pivot -b "$BUNDLE-true" "true$i") || t=-
		"${CRUN[@]}" delete -f "true$i" 2>/dev/null || true
		{
			echo "crun $t"
			echo "husk-http $(husk_http)"
			echo "crun-http $(crun_http "$i")"
		} >>"$results"
		echo "bench: run $i: $(tail -n 5 "$results" | tr '\n' ' ')"
	done
	local -A med=()
	local k
	for k in husk-image husk-rootfs crun husk-http crun-http; do
		med[$k]=$(awk -v k="$k" '$1 == k { print $2 }' "$results" | median 2)
	done
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }
	echo
	echo "husk run --image against crun on the same root, median of $RUNS runs (1 vCPU, 512M)"
	printf '%-44s %10s\n' "" "wall (s)"
	printf '%-44s %10s\n' "husk run --image ... --entrypoint /bin/true" "${med[husk-image]}"
	printf '%-44s %10s\n' "husk exec --rootfs ROOT -- /bin/true" "${med[husk-rootfs]}"
	printf '%-44s %10s\n' "crun run (/bin/true)" "${med[crun]}"
	printf '%-44s %10s\n' "husk run --image -p ... httpd: first answer" "${med[husk-http]}"
	printf '%-44s %10s\n' "crun run httpd: first answer" "${med[crun-http]}"
	echo "image cost: husk-image / husk-rootfs = $(ratio "${med[husk-image]}" "${med[husk-rootfs]}")"
	echo "VM against container: true $(ratio "${med[husk-image]}" "${med[crun]}")x," \
		"first HTTP answer $(ratio "${med[husk-http]}" "${med[crun-http]}")x"
	# Where husk's time goes: one more run with --timings, its report as it is.
	echo
	echo "husk run --image ... --timings --entrypoint /bin/true (one run):"
	t0=$(uptime_now)
	"${HUSK_CMD[@]}" run --image "$IMAGE" "${HUSK_COMMON[@]}" --timings --entrypoint /bin/true \
		</dev/null 2>&1 >/dev/null | sed 's/^/  | /' || true
	echo "  (wall $(since "$t0") s)"
	if grep -q ' -$' "$results"; then
		echo "bench: some runs failed (marked -); $(tail -n 3 /tmp/bench-image-run.err | tr '\n' ' ')"
		return 1
	fi
}

main "$@"
