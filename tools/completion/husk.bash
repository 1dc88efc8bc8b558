# SPDX-License-Identifier: MIT
# bash completion for husk (installed as share/bash-completion/completions/husk).
#
# Everything is read from husk's own --help texts at the moment of the TAB, so
# completion knows exactly the commands and options of the husk being run:
#   husk --help          its "Commands:" block: the subcommands
#   husk CMD --help      its option lines ("  -k, --kernel=PATH  ...") and its
#                        usage line's operands (NAME: instances, IMAGE: files
#                        and image aliases, COMMAND: programs)
#   husk list            the instance names (the table's first column)

# The words of the husk being completed (COMP_WORDS[0]: husk, or build/husk).
_husk_help() {
	"${COMP_WORDS[0]}" "$@" --help 2>/dev/null
}

_husk_commands() {
	_husk_help | sed -n '/^Commands:$/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p'
}

# "--kernel=PATH" and "-k" lines of husk CMD --help, one option a line:
# "--kernel=PATH", "--cpus=N", "--help".
_husk_option_specs() {
	_husk_help "$@" | sed -n 's/^  \(-[a-zA-Z], \)\{0,1\}\(--[a-z][a-z0-9-]*\(=[^ ]*\)\{0,1\}\) .*/\2/p'
}

# husk image's sub-subcommands and their options, from its usage lines.
_husk_image_words() {
	local sub=$1
	if [[ -z $sub ]]; then
		_husk_help image | sed -n 's/^\(usage: \|       \)husk image \([a-z]*\) .*/\2/p'
	else
		_husk_help image | sed -n "s/^\(usage: \|       \)husk image $sub //p" |
			grep -o -- '--[a-z][a-z0-9-]*'
	fi
}

_husk_instances() {
	"${COMP_WORDS[0]}" list 2>/dev/null | awk 'NR > 1 { print $1 }'
}

# What an option's argument is, from its metavar: files, dirs or nothing.
_husk_complete_value() {
	local metavar=$1 cur=$2
	case $metavar in
	PATH* | FILE* | \[FILE\]) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
	DIR* | HOSTDIR*) mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
	*) COMPREPLY=() ;;
	esac
	[[ $metavar == PATH* || $metavar == FILE* || $metavar == *DIR* ]] && compopt -o filenames 2>/dev/null
	return 0
}

# The usage line's operands for CMD: NAME, IMAGE, COMMAND, ...
_husk_operands() {
	_husk_help "$1" | sed -n '2s/^  [a-z-]* \[OPTION?\] *//p; 1s/^usage: husk [a-z-]* *//p' | head -1
}

_husk() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	if ((COMP_CWORD == 1)); then
		mapfile -t COMPREPLY < <(compgen -W "$(_husk_commands) --help --version" -- "$cur")
		return 0
	fi
	local cmd=${COMP_WORDS[1]} i
	if [[ $cmd == image ]]; then
		if ((COMP_CWORD == 2)); then
			mapfile -t COMPREPLY < <(compgen -W "$(_husk_image_words "")" -- "$cur")
		elif [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$(_husk_image_words "${COMP_WORDS[2]}")" -- "$cur")
		else
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		fi
		return 0
	fi
	# Past "--" of husk exec: the command, then its files.
	for ((i = 2; i < COMP_CWORD; i++)); do
		if [[ ${COMP_WORDS[i]} == -- ]]; then
			if ((i == COMP_CWORD - 1)); then
				mapfile -t COMPREPLY < <(compgen -c -- "$cur")
			else
				mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			fi
			return 0
		fi
	done
	local specs spec
	specs=$(_husk_option_specs "$cmd")
	# Right after "--opt=" the current word is "=" itself.
	[[ $cur == = && $prev == --* ]] && cur=""
	# --opt=VALUE typed as one word (bash splits it at "=": prev is "=").
	if [[ $prev == = && ${COMP_WORDS[COMP_CWORD - 2]} == --* ]]; then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
		spec=$(grep -m1 -- "^$prev=" <<<"$specs")
		[[ -n $spec ]] && _husk_complete_value "${spec#*=}" "$cur"
		return 0
	fi
	# An option that takes a value, given as the previous word.
	if [[ $prev == -* ]]; then
		local long=$prev
		if [[ $prev != --* ]]; then
			long=$(_husk_help "$cmd" | sed -n "s/^  $prev, \(--[a-z][a-z0-9-]*\).*/\1/p" | head -1)
		fi
		spec=$(grep -m1 -- "^$long=" <<<"$specs")
		if [[ -n $spec ]]; then
			_husk_complete_value "${spec#*=}" "$cur"
			return 0
		fi
	fi
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(sed 's/=.*/=/' <<<"$specs")" -- "$cur")
		[[ ${COMPREPLY[0]-} == *= ]] && compopt -o nospace 2>/dev/null
		return 0
	fi
	local operands
	operands=$(_husk_operands "$cmd")
	case $operands in
	*NAME*) mapfile -t COMPREPLY < <(compgen -W "$(_husk_instances)" -- "$cur") ;;
	*IMAGE*)
		local aliases
		aliases=$(_husk_help "$cmd" | sed -n 's/^Aliases: \([^(]*\).*/\1/p')
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -W "$aliases" -- "$cur"; compgen -f -- "$cur")
		;;
	*COMMAND*) mapfile -t COMPREPLY < <(compgen -c -- "$cur") ;;
	esac
	return 0
}

complete -F _husk husk
