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

# run_rounds RESULTS MEASURE: RUNS runs, each booting every VMM once in
# run_order's order. MEASURE VMM RUN prints that boot's result lines: they
# are appended to RESULTS and shown as "bench: run RUN: LINE".
run_rounds() {
	local results=$1 measure=$2 i vmm
	for ((i = 1; i <= RUNS; i++)); do
		run_order "$i"
		for vmm in "${ORDER[@]}"; do
			"$measure" "$vmm" "$i" | tee -a "$results" | sed "s/^/bench: run $i: /"
		done
	done
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
			sed -n "1,8s|^|bench: $2: ${t##*/} $comm in |p" "$t/stack" >&2 2>/dev/null || true
		done
		sleep 1
	done
}

# The host KVM's counts for one VM, which a VMM's own figures cannot show:
# how often the guest left the CPU, halted, was woken, got an interrupt.
KVM_STATS=(exits halt_exits halt_wakeup halt_successful_poll irq_injections io_exits mmio_exits)

# kvm_stats_sample PID: when KVM_STATS_OUT names a file, writes the VM's
# counts from debugfs there ("NAME VALUE" lines), replacing the last
# sample; KVM drops them when the VM ends, so wait_vm samples each second
# and the last sample stands for the boot (all but its last second).
# Builtins only: a fork a second would cost the VM under test.
kvm_stats_sample() {
	[[ -n ${KVM_STATS_OUT:-} ]] || return 0
	local dirs=(/sys/kernel/debug/kvm/"$1"-*) name v out=""
	[[ -d ${dirs[0]} ]] || return 0
	for name in "${KVM_STATS[@]}"; do
		[[ -r ${dirs[0]}/$name ]] && read -r v <"${dirs[0]}/$name" && out+="$name $v"$'\n'
	done
	printf '%s' "$out" >"$KVM_STATS_OUT"
}

# kvm_stats_start: where this host lets it (debugfs, mounted here if it is
# not), sets KVM_STATS_OUT to a fresh file for the next boot's counts.
kvm_stats_start() {
	KVM_STATS_OUT=""
	[[ -d /sys/kernel/debug/kvm ]] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
	[[ -d /sys/kernel/debug/kvm ]] || return 0
	KVM_STATS_OUT=$WORK/kvm-stats
	: >"$KVM_STATS_OUT"
}

# BENCH_EXIT_REASONS=1: the host kernel counts the VM's exits by reason
# and its MSR accesses by register (histogram triggers on the kvm_exit and
# kvm_msr trace events, kept in the kernel), printed after each boot by
# exit_reasons_report. Every VM's exits pay for the count, so compare only
# boots that all had it.
EXIT_HISTS=("kvm_exit hist:keys=exit_reason:sort=hitcount.descending"
	"kvm_msr hist:keys=ecx,write:sort=hitcount.descending")
TRACEFS=/sys/kernel/tracing

# hist_on EVENT SPEC: the host kernel starts counting the kvm trace event
# EVENT's hits as the hist trigger SPEC says. False where it cannot.
hist_on() {
	[[ -d $TRACEFS/events ]] || mount -t tracefs tracefs "$TRACEFS" 2>/dev/null || return 1
	echo "$2" >"$TRACEFS/events/kvm/$1/trigger" 2>/dev/null
}

# hist_off EVENT SPEC LABEL LINES: the first LINES lines of the counts,
# then the trigger goes (which zeroes them for the next boot).
hist_off() {
	local event=$TRACEFS/events/kvm/$1
	# awk reads to the end: a head that left early would kill grep
	# with SIGPIPE, and pipefail the bench with it.
	awk -v p="  $1 $3| " -v lines="$4" '!/^#/ && NF && n++ < lines { print p $0 }' "$event/hist" >&2 2>/dev/null || true
	echo "!$2" >"$event/trigger" 2>/dev/null || true
}

exit_reasons_start() {
	[[ -n ${BENCH_EXIT_REASONS:-} ]] || return 0
	local spec
	for spec in "${EXIT_HISTS[@]}"; do
		hist_on "${spec%% *}" "${spec#* }" || true
	done
}

# exit_reasons_report LABEL: the counts, then the triggers go.
exit_reasons_report() {
	[[ -n ${BENCH_EXIT_REASONS:-} && -d $TRACEFS/events ]] || return 0
	local spec
	for spec in "${EXIT_HISTS[@]}"; do
		hist_off "${spec%% *}" "${spec#* }" "$1" 25
	done
}

# guest_rips_report LABEL: where a stuck guest runs. For 3 s the host
# kernel counts the VM's exits by guest RIP and reason, and the commonest
# are printed. A guest that spins exits only for the host's interrupts,
# at the addresses it spins on. (Debian ships no System.map: a guest
# booted with nokaslr names them in /proc/kallsyms.) With
# BENCH_EXIT_REASONS=1 the event's table by reason comes too, hence 40.
guest_rips_report() {
	local spec="hist:keys=guest_rip.hex,exit_reason:sort=hitcount.descending"
	hist_on kvm_exit "$spec" || return 0
	sleep 3
	echo "bench: $1: the guest's commonest exits over 3 s, by address:" >&2
	hist_off kvm_exit "$spec" "$1" 40
}

# wait_vm PID LIMIT LABEL: waits for the VMM PID; past LIMIT seconds it is
# killed ("no end after LIMIT s"). A VM that runs long says so once a
# minute: progress for whoever watches, and a sign of life for the nested
# host's silence watchdog, which can then give up on a wedged test host in
# minutes rather than after the longest boot. Status 1 if it was killed.
# Each second it samples the VM's KVM counts (kvm_stats_sample).
wait_vm() {
	local pid=$1 limit=$2 label=$3 start=$SECONDS next=60
	while kill -0 "$pid" 2>/dev/null; do
		kvm_stats_sample "$pid"
		if ((SECONDS - start >= limit)); then
			echo "bench: $label: no end after $limit s, stopped" >&2
			guest_rips_report "$label"
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
