#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The bash completion (tools/completion/husk.bash) against a real husk: each
# case sets COMP_WORDS as bash would for a command line, calls _husk and
# checks COMPREPLY. TAP output, for meson test (suite cli).
#   completion-test.sh HUSK COMPLETION-FILE
set -uo pipefail

HUSK=$(realpath "$1")
# shellcheck source=tools/completion/husk.bash
source "$2"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/husk-completion-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TEST_NO=0 FAILURES=0

# complete_line "husk run --ker": COMPREPLY for its last word ("" after a space).
complete_line() {
	local line=$1
	# bash breaks words at "=" too (COMP_WORDBREAKS): --initrd = PATH.
	read -r -a COMP_WORDS <<<"${line//=/ = }"
	[[ $line == *" " ]] && COMP_WORDS+=("")
	COMP_WORDS[0]=$HUSK
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE=$line COMP_POINT=${#line}
	COMPREPLY=()
	_husk 2>/dev/null
}

# expect LINE WORD...: each WORD is among the completions of LINE.
expect() {
	local line=$1 want missing=()
	shift
	complete_line "$line"
	for want in "$@"; do
		grep -qxF -- "$want" < <(printf '%s\n' "${COMPREPLY[@]}") || missing+=("$want")
	done
	TEST_NO=$((TEST_NO + 1))
	if ((${#missing[@]} == 0)); then
		echo "ok $TEST_NO - '$line' offers $*"
	else
		FAILURES=$((FAILURES + 1))
		echo "not ok $TEST_NO - '$line' offers $*"
		echo "# missing: ${missing[*]}; got: ${COMPREPLY[*]}"
	fi
}

# expect_none LINE WORD: WORD is not offered.
expect_none() {
	complete_line "$1"
	TEST_NO=$((TEST_NO + 1))
	if grep -qxF -- "$2" < <(printf '%s\n' "${COMPREPLY[@]}"); then
		FAILURES=$((FAILURES + 1))
		echo "not ok $TEST_NO - '$1' does not offer $2"
	else
		echo "ok $TEST_NO - '$1' does not offer $2"
	fi
}

mkdir -p "$WORK/kernels" "$WORK/home/instances/web" "$WORK/home/instances/db"
touch "$WORK/kernels/vmlinuz-6.1" "$WORK/disk.qcow2"
echo '{}' >"$WORK/home/instances/web/config.json"
echo '{}' >"$WORK/home/instances/db/config.json"
export HUSK_HOME=$WORK/home

echo "1..17"
# Every subcommand husk --help lists, and only those.
expect "husk " run exec image launch list info start stop restart delete console check-host --version
expect "husk re" restart
expect_none "husk re" run
# Options, per subcommand.
expect "husk run --ker" --kernel=
expect "husk run --" --disk= --share= --memory= --cpus= --no-seccomp --help
expect "husk exec --" --mount= --timeout= --workdir=
expect "husk stop --" --force --timeout=
expect_none "husk list --" --kernel=
expect "husk image " create info convert
expect "husk image create --" --size --backing --format
# File paths where a path goes: after an option, and --opt=.
expect "husk run --kernel $WORK/kernels/vm" "$WORK/kernels/vmlinuz-6.1"
expect "husk run -k $WORK/kernels/vm" "$WORK/kernels/vmlinuz-6.1"
expect "husk run --initrd=$WORK/kernels/vm" "$WORK/kernels/vmlinuz-6.1"
expect "husk run $WORK/di" "$WORK/disk.qcow2"
# Instance names for instance commands; aliases for launch.
expect "husk stop " web db
expect "husk launch deb" debian-12 debian-13
# After husk exec --, a program.
expect "husk exec -- bas" bash
((FAILURES == 0))
