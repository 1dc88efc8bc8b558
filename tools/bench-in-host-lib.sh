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
