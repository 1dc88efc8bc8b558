# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# A pruned copy of a kernel's module tree: modules.dep, modules.builtin and
# just the named modules with everything they depend on, at their usual
# paths. `husk exec --modules DIR` resolves and loads from such a tree as
# from the whole /lib/modules/VERSION, and it is small enough to pack into
# the nested test host. Sourced, never run.
#   stage_module_tree SRC DST NAME...
stage_module_tree() {
	local src=$1 dst=$2 name path
	shift 2
	mkdir -p "$dst"
	cp "$src/modules.dep" "$dst/"
	[[ ! -e $src/modules.builtin ]] || cp "$src/modules.builtin" "$dst/"
	for name in "$@"; do
		# modprobe treats - and _ alike; modules.dep lines carry every dependency.
		local pattern=${name//[-_]/[-_]}
		while read -r path; do
			mkdir -p "$dst/$(dirname "$path")"
			cp "$src/$path" "$dst/$path"
		done < <(grep -E "(^|/)${pattern}\.ko[^:]*:" "$src/modules.dep" | tr -d ':' | tr ' ' '\n' | grep . | sort -u)
	done
}
