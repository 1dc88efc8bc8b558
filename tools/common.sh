# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# What tools/demo, tools/test and tools/bench-boot share: where things are,
# and "install what is missing, then build". Sourced, never run.

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$TOOLS_DIR")
BUILD=${HUSK_BUILD_DIR:-$ROOT/build}

# shellcheck source=guest-tests/lib/common.sh
source "$ROOT/guest-tests/lib/common.sh"

# Packages first (quick when all are there), then meson: set up the build
# directory once, compile every time (ninja skips what is up to date).
build_husk() {
	"$TOOLS_DIR/setup-deps"
	if [[ ! -e $BUILD/build.ninja ]]; then
		local setup_log
		setup_log=$(mktemp)
		meson setup "$BUILD" "$ROOT" >"$setup_log" 2>&1 ||
			{ cat "$setup_log" >&2; rm -f "$setup_log"; die "meson setup failed"; }
		rm -f "$setup_log"
	fi
	meson compile -C "$BUILD" >"$BUILD/compile.log" 2>&1 ||
		{ tail -n 40 "$BUILD/compile.log" >&2; die "build failed (full log: $BUILD/compile.log)"; }
}

# The husk a bench measures: the --husk PATH held in the variable named $1,
# checked, or, when it is empty, husk built from this tree.
resolve_husk() {
	local -n _husk=$1
	if [[ -z $_husk ]]; then
		build_husk
		_husk=$BUILD/husk
	fi
	[[ -x $_husk ]] || die "--husk: $_husk is not an executable"
}
