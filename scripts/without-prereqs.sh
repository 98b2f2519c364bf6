#!/usr/bin/env bash
# Runs a command as on a machine without libclang and without the PostgreSQL server
# packages, while they stay installed for everyone else: in a private mount namespace
# (this command and its children only), empty file systems cover /usr/lib/llvm-*,
# /usr/lib/postgresql and the libclang libraries. Needs root (unshare -m).
#
# Usage: scripts/without-prereqs.sh COMMAND [ARGS...]
#   e.g. scripts/without-prereqs.sh cargo run --release -- demo
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help || $# -eq 0 ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"
    [[ $# -gt 0 ]] && exit 0 || exit 2
fi

if [[ ${PGWARDEN_HIDDEN:-} != 1 ]]; then
    command -v unshare >/dev/null || { echo "without-prereqs.sh: needs unshare (apt-get install util-linux)" >&2; exit 1; }
    exec unshare -m --propagation private env PGWARDEN_HIDDEN=1 "$0" "$@"
fi

empty=$(mktemp)
for d in /usr/lib/llvm-* /usr/lib/postgresql; do
    [[ -d $d ]] && mount -t tmpfs -o size=1m,mode=0755 tmpfs "$d"
done
for f in /usr/lib/*/libclang* /usr/lib/libclang*; do
    # symbolic links into the covered llvm directory already lead nowhere
    [[ -f $f && ! -L $f ]] && mount --bind "$empty" "$f"
done
exec "$@"
