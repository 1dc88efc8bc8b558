# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Sourced by the benches' measuring halves (bench-fs-in-host.sh,
# bench-net-in-host.sh), and staged into the nested test host beside them.

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
