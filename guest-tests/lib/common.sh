# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Small helpers shared by the guest-test harness. Sourced, never run.

# Tools that use this library (tools/demo) set their own tag.
HUSK_LOG_TAG=${HUSK_LOG_TAG:-husk-test}

# One clear line on stderr, then stop: every harness error looks alike.
die() {
	echo "$HUSK_LOG_TAG: $*" >&2
	exit 1
}

# A problem worth a line even in quiet mode, but not fatal here.
warn() {
	echo "$HUSK_LOG_TAG: $*" >&2
}

# Progress notes; HUSK_QUIET=1 (the demo) keeps only errors.
log() {
	[[ -n ${HUSK_QUIET:-} ]] || echo "$HUSK_LOG_TAG: $*" >&2
}

# Downloads and unpacked kernels live outside the source tree so that a
# clean clone stays clean and a second run is fast.
husk_cache_dir() {
	local dir=${HUSK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/husk}
	mkdir -p "$dir"
	echo "$dir"
}

# Seconds since boot with centisecond resolution. Busybox `date` has no
# sub-second format, and /proc/uptime works the same in the test host.
uptime_now() {
	local up _
	read -r up _ </proc/uptime
	echo "$up"
}
