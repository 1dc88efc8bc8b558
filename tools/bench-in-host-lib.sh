# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Sourced by the benches' measuring halves (tools/bench-*-in-host.sh), and
# staged into the nested test host beside them.

# Every other run boots the VMMs in reverse order. A VMM's place in a run
# moves its figures: in four A/B runs of bench-fs, the husk booted second
# read faster in 10 of 12 pairs, whichever variant it was.
# run_order RUN: sets ORDER to VMMS in the order run RUN boots them.
run_order() {
	local k
	ORDER=("${VMMS[@]}")
	(($1 % 2)) && return
	ORDER=()
	for ((k = ${#VMMS[@]} - 1; k >= 0; k--)); do ORDER+=("${VMMS[k]}"); done
}

# median DECIMALS: the median of the numbers on stdin, one a line ("-",
# a figure a run did not give, is left out), with DECIMALS places; "-"
# when there are none.
median() {
	awk '$1 != "-"' | sort -n | awk -v d="$1" '{ v[NR] = $1 }
		END {
			if (NR == 0) print "-"
			else printf "%." d "f\n", (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2
		}'
}

# threads_report PID LABEL: for a VMM that did not end, where its threads
# are: each one's name, state, CPU time (user and system ticks) and kernel
# stack, sampled twice a second apart, so a spinning thread shows.
threads_report() {
	local round t comm stat
	local -a f
	for round in 1 2; do
		for t in /proc/"$1"/task/*; do
			if ! comm=$(cat "$t/comm" 2>/dev/null) || ! stat=$(cat "$t/stat" 2>/dev/null); then
				continue
			fi
			# After "pid (comm) ": state is field 1, utime 12, stime 13.
			read -ra f <<<"${stat##*) }"
			echo "bench: $2: sample $round: ${t##*/} $comm state ${f[0]} utime ${f[11]} stime ${f[12]}" >&2
			[[ $round == 2 ]] || continue
			sed "s|^|bench: $2: ${t##*/} $comm in |" "$t/stack" 2>/dev/null | head -n 8 >&2
		done
		sleep 1
	done
}

# wait_vm PID LIMIT LABEL: waits for the VMM PID; past LIMIT seconds it is
# killed ("no end after LIMIT s"). A VM that runs long says so once a
# minute: progress for whoever watches, and a sign of life for the nested
# host's silence watchdog, which can then give up on a wedged test host in
# minutes rather than after the longest boot. Status 1 if it was killed.
wait_vm() {
	local pid=$1 limit=$2 label=$3 start=$SECONDS next=60
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS - start >= limit)); then
			echo "bench: $label: no end after $limit s, stopped" >&2
			threads_report "$pid" "$label"
			kill -KILL "$pid" 2>/dev/null || true
			return 1
		fi
		if ((SECONDS - start >= next)); then
			echo "bench: $label: running for $((next / 60)) min" >&2
			next=$((next + 60))
		fi
		sleep 1
	done
}
