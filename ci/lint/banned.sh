#!/bin/sh
# banned.sh - fail when C code calls a banned function (as curl's checksrc
# does). Run by `make lint`; usage: ci/lint/banned.sh [ROOT]
#
# Everywhere (library, CLI, guest, tests, fuzz, bench):
#   gets                       unbounded: no way to use it safely
#   strcpy strcat sprintf vsprintf
#                              unbounded writes: snprintf / memcpy with a length
#   strncpy strncat            silently truncate or leave no NUL: snprintf
#   strtok                     hidden state, not thread-safe: strtok_r / memchr
#   atoi atol atoll atof       no error reporting: strtol / strtoull with checks
#   tmpnam tempnam mktemp      race between name and use: mkstemp / mkdtemp
#   asctime ctime gmtime localtime
#                              static buffers, not thread-safe: the _r forms
#   alloca                     unbounded stack use
#   readdir_r                  deprecated (glibc 2.24): readdir on a private DIR
#   inet_ntoa inet_addr        static buffer / ambiguous error: inet_ntop / inet_pton
#   signal                     unspecified semantics: sigaction
# In the library and CLI sources only (tests may use a reproducible rand()):
#   rand srand random          not a source of unpredictable bytes: RAND_bytes
#
# A line may opt out with a comment naming why: /* banned-ok: REASON */
set -eu
root=${1:-.}
cd "$root"

everywhere='gets|strcpy|strcat|sprintf|vsprintf|strncpy|strncat|strtok|atoi|atol|atoll|atof|tmpnam|tempnam|mktemp|asctime|ctime|gmtime|localtime|alloca|readdir_r|inet_ntoa|inet_addr|signal'
library='rand|srand|random'

# Comments, string and character literals are blanked (line numbers kept,
# perl is part of every Debian system), then NAME( is looked for as a word.
strip() {
	perl -0777 -pe '
		s{/\*.*?\*/}{ (my $c = $&) =~ s/[^\n]//g; $c }gse;
		s{//[^\n]*}{}g;
		s{"(?:[^"\\\n]|\\.)*"}{""}g;
		s{'"'"'(?:[^'"'"'\\\n]|\\.)+'"'"'}{'"'"' '"'"'}g;
	' "$1"
}
scan() { # scan PATTERN FILES...
	pattern=$1
	shift
	for f in "$@"; do
		strip "$f" | grep -nE "(^|[^A-Za-z0-9_.>])($pattern)[[:space:]]*\(" |
			sed "s|^|$f:|" || true
	done
}

lib_files=$(find artifacts pipeline codegen runtime -name '*.c' -o -name '*.h' | sort)
all_files=$(find artifacts pipeline codegen runtime tests fuzz bench \
	\( -name '*.c' -o -name '*.h' \) -not -path '*/node_modules/*' 2>/dev/null | sort)
# banned-ok lines are skipped before stripping comments, so look at the raw line.
hits=$( { scan "$everywhere" $all_files; scan "$library" $lib_files; } | while IFS= read -r hit; do
	file=${hit%%:*}
	rest=${hit#*:}
	line=${rest%%:*}
	sed -n "${line}p" "$file" | grep -q 'banned-ok:' || echo "$hit"
done)
if [ -n "$hits" ]; then
	echo "banned functions (see ci/lint/banned.sh for why and what to use):" >&2
	echo "$hits" >&2
	exit 1
fi
echo "banned.sh: no banned function in $(echo "$all_files" | wc -l) files"
