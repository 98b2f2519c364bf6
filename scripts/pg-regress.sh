#!/usr/bin/env bash
# Transparency check: runs PostgreSQL's own regression suite (pg_regress, the installed
# server's version) against a throwaway cluster, once directly and once through a proxy,
# and compares the pass counts. A test whose output differs from the expected one only by
# pgwarden's trash NOTICE and HINT lines (a trash rule carried out a DROP: by design, the
# client is told where the table went) is counted apart as "differs only by the NOTICE".
#
# Usage: scripts/pg-regress.sh
#
# Environment:
#   PROXY=pgwarden|pgbouncer|none  what to put in front of the cluster for the second leg
#                                  (default pgwarden; pgbouncer = session-mode stand-in;
#                                  none = direct leg only)
#   PGWARDEN_BIN=PATH              pgwarden binary (default target/release/pgwarden,
#                                  brought up to date with 'nice -n 19 cargo build --release'
#                                  first)
#   SCHEDULE=parallel|serial       parallel_schedule as is (default), or one test at a time
#                                  (--max-connections=1, like 'make installcheck')
#   RESULTS_DIR=DIR                where outputs and diffs go (default target/pg-regress)
#   PG_MAJOR=15 / PG_BINDIR=DIR    which installed PostgreSQL to use (default: detected)
#   REGRESS_TIMEOUT=SECS           time limit per pg_regress leg (default 900)
#   PGWARDEN_CACHE_DIR=DIR         source / build cache
#                                  (default ${XDG_CACHE_HOME:-~/.cache}/pgwarden)
#   KEEP_WORK=1                    keep the temporary cluster directory
#   PGWARDEN_ENV="VAR=VALUE ..."   extra environment for pgwarden, e.g.
#                                  PGWARDEN_ENV="PGWARDEN__POLICY__PATH=$PWD/scripts/regress-impact-policy.toml"
#                                  (every DML measured by the impact probe), or
#                                  PGWARDEN_ENV="PGWARDEN__POLICY__PATH=$PWD/scripts/regress-trash-policy.toml"
#                                  (every DROP TABLE to the trash)
#
# First run (as root, or with the prerequisites already installed): adds a deb-src entry
# derived from the machine's apt sources, fetches the Debian source package of the
# installed server version with 'apt-get source', installs postgresql-server-dev-N and
# builds regress.so. Later runs reuse the cache and need neither root nor the network.
#
# Output: per leg, tests passed, tests that differ only by the trash's NOTICE, and others;
# under RESULTS_DIR/STAMP/LEG: summary.txt (pg_regress's verdicts), notice-only.txt,
# other.txt, and other.diffs (each other test's diff with the NOTICE lines taken out).
#
# Exit status: 0 when the proxy passes (or differs only by the NOTICE in) as many tests as
# the direct run and fails no other test that passed directly; 1 otherwise or on any
# setup error.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"
    exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--help]  (settings are environment variables)" >&2; exit 2; }

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROXY=${PROXY:-pgwarden}
SCHEDULE=${SCHEDULE:-parallel}
RESULTS_DIR=${RESULTS_DIR:-$REPO_ROOT/target/pg-regress}
REGRESS_TIMEOUT=${REGRESS_TIMEOUT:-900}
CACHE_DIR=${PGWARDEN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pgwarden}

case $PROXY in pgwarden | pgbouncer | none) ;; *) die "PROXY must be pgwarden, pgbouncer or none (got '$PROXY')" ;; esac
# PostgreSQL 15 ships only parallel_schedule; "make installcheck" runs it serially with
# --max-connections=1, and so does SCHEDULE=serial.
case $SCHEDULE in
parallel) SERIAL_OPT=() ;;
serial) SERIAL_OPT=(--max-connections=1) ;;
*) die "SCHEDULE must be parallel or serial (got '$SCHEDULE')" ;;
esac

HINT="apt-get install postgresql-client" need_cmd psql
need_cmd timeout awk sed find
find_postgres
[[ $EUID -ne 0 ]] || command -v runuser >/dev/null || die "running as root needs 'runuser' to start PostgreSQL as 'postgres'"

PG_VERSION=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR" 2>/dev/null || true)
[[ -n $PG_VERSION ]] || die "package postgresql-$PG_MAJOR is not installed (this script uses Debian's source and dev packages)"
SRC_CACHE=$CACHE_DIR/postgresql-$PG_MAJOR-$PG_VERSION
REGRESS_SRC=$SRC_CACHE/src/test/regress
BUILD_DIR=$SRC_CACHE/build

# ---------------------------------------------------------------------------
# 1. Sources of the regression suite for the installed server version
# ---------------------------------------------------------------------------

need_root() {
    [[ $EUID -eq 0 ]] || die "$1 needs root (run once as root, or do it by hand: $2)"
}

# Writes deb-src entries mirroring the distribution's own 'deb' entries (same URIs,
# suites, components, keyring) so 'apt-get source' can find the source package.
# Only entries for this release's codename are mirrored (third-party repositories often
# publish no sources).
add_deb_src() {
    local codename out_list=/etc/apt/sources.list.d/pgwarden-deb-src.list
    local out_sources=/etc/apt/sources.list.d/pgwarden-deb-src.sources
    codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null | tr -d '"' || true)
    [[ -n $codename ]] || die "cannot tell the release codename from /etc/os-release"
    local lists=() deb822=() f
    [[ -f /etc/apt/sources.list ]] && lists+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list; do
        [[ -f $f && $f != "$out_list" ]] && lists+=("$f")
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f && $f != "$out_sources" ]] && deb822+=("$f")
    done
    local tmp
    tmp=$(mktemp)
    if ((${#lists[@]})); then
        # one-line format: "deb [opts] URI SUITE COMPONENTS..." -> "deb-src ..."
        awk -v cn="$codename" '
            /^[[:space:]]*deb[[:space:]]/ {
                line = $0; sub(/^[[:space:]]*deb[[:space:]]+/, "", line)
                opts = ""
                if (line ~ /^\[/) { opts = substr(line, 1, index(line, "]")); line = substr(line, index(line, "]") + 1); sub(/^[[:space:]]+/, "", line) }
                split(line, w, /[[:space:]]+/)
                if (w[2] ~ "^" cn "([-/]|$)") print "deb-src " (opts == "" ? "" : opts " ") line
            }' "${lists[@]}" >"$tmp"
    fi
    if [[ -s $tmp ]]; then
        sort -u "$tmp" >"$out_list"
        log "wrote $out_list:"
        sed 's/^/    /' "$out_list" >&2
    fi
    : >"$tmp"
    if ((${#deb822[@]})); then
        # deb822 format: copy each enabled stanza that has "deb" in Types and a suite of this
        # release, with Types: deb-src.
        awk -v cn="$codename" '
            function flush() {
                if (n > 0 && hasdeb && !disabled && suiteok) {
                    for (i = 1; i <= n; i++) print (lines[i] ~ /^Types:/ ? "Types: deb-src" : lines[i])
                    print ""
                }
                n = 0; hasdeb = 0; disabled = 0; suiteok = 0
            }
            /^[[:space:]]*$/ { flush(); next }
            /^[[:space:]]*#/ { next }
            {
                lines[++n] = $0
                if ($0 ~ /^Types:/ && $0 ~ /[[:space:]]deb([[:space:]]|$)/) hasdeb = 1
                if ($0 ~ /^Enabled:[[:space:]]*(no|false)/) disabled = 1
                if ($0 ~ /^Suites:/ && $0 ~ "[[:space:]]" cn "([-/[:space:]]|$)") suiteok = 1
            }
            END { flush() }' "${deb822[@]}" >"$tmp"
    fi
    if [[ -s $tmp ]]; then
        cp "$tmp" "$out_sources"
        chmod 644 "$out_sources"
        log "wrote $out_sources:"
        sed 's/^/    /' "$out_sources" >&2
    fi
    rm -f "$tmp"
    [[ -s $out_list || -s $out_sources ]] || die "found no '$codename' apt source to derive a deb-src entry from"
}

fetch_regress_sources() {
    if [[ -f $REGRESS_SRC/parallel_schedule && -d $REGRESS_SRC/expected ]]; then
        log "regression suite $PG_VERSION: cached in $SRC_CACHE"
        return
    fi
    HINT="apt-get install dpkg-dev" need_cmd apt-get dpkg-source
    local pkg=postgresql-$PG_MAJOR
    if ! apt-get source --print-uris "$pkg=$PG_VERSION" >/dev/null 2>&1; then
        need_root "adding a deb-src apt source" "add a deb-src line and run apt-get update"
        add_deb_src
        log "apt-get update"
        timeout 600 apt-get update -qq || warn "apt-get update reported errors (continuing)"
    fi
    local want=$pkg=$PG_VERSION
    if ! apt-get source --print-uris "$want" >/dev/null 2>&1; then
        warn "source of $pkg $PG_VERSION not available; falling back to the newest source (expected outputs may differ slightly from the installed server)"
        want=$pkg
    fi
    mkdir -p "$CACHE_DIR"
    local dl
    dl=$(mktemp -d "$CACHE_DIR/download.XXXXXX")
    log "apt-get source $want (into $dl)"
    (cd "$dl" && timeout 900 apt-get source -q "$want" >"$dl/apt-get-source.log" 2>&1) || {
        tail -n 20 "$dl/apt-get-source.log" >&2
        rm -rf "$dl"
        die "apt-get source $want failed"
    }
    local tree
    tree=$(find "$dl" -mindepth 1 -maxdepth 1 -type d -name "postgresql-$PG_MAJOR-*" | head -n 1)
    [[ -n $tree && -f $tree/src/test/regress/parallel_schedule ]] || die "unexpected layout of the source package in $dl"
    # keep only what pg_regress needs (the suite) and the provenance
    rm -rf "$SRC_CACHE"
    mkdir -p "$SRC_CACHE/src/test"
    mv "$tree/src/test/regress" "$SRC_CACHE/src/test/regress"
    cp "$dl"/*.dsc "$SRC_CACHE/" 2>/dev/null || true
    head -n 1 "$tree/debian/changelog" >"$SRC_CACHE/SOURCE-VERSION" 2>/dev/null || true
    rm -rf "$dl"
    log "regression suite cached in $SRC_CACHE ($(cat "$SRC_CACHE/SOURCE-VERSION" 2>/dev/null || echo '?'))"
}

# ---------------------------------------------------------------------------
# 2. pg_regress and regress.so
# ---------------------------------------------------------------------------

PG_CONFIG=$PG_BINDIR/pg_config
PG_REGRESS=

find_pg_regress() {
    # pgxs.mk lives in <pgxs>/src/makefiles/; pg_regress in <pgxs>/src/test/regress/
    if [[ -x $PG_CONFIG ]]; then
        PG_REGRESS=$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")/test/regress/pg_regress
    fi
    # The server package may ship pg_regress without the headers regress.so needs.
    local headers=
    [[ -x $PG_CONFIG ]] && headers=$("$PG_CONFIG" --includedir-server)/postgres.h
    if [[ -z $PG_REGRESS || ! -x $PG_REGRESS || -z $headers || ! -f $headers ]]; then
        local dev=postgresql-server-dev-$PG_MAJOR
        need_root "installing $dev" "apt-get install $dev"
        log "apt-get install $dev=$PG_VERSION"
        DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "$dev=$PG_VERSION" >/dev/null ||
            DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "$dev" >/dev/null ||
            die "apt-get install $dev failed"
        PG_REGRESS=$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")/test/regress/pg_regress
    fi
    [[ -x $PG_REGRESS ]] || die "pg_regress not found at $PG_REGRESS (package postgresql-server-dev-$PG_MAJOR)"
}

build_regress_so() {
    if [[ -f $BUILD_DIR/regress.so && $BUILD_DIR/regress.so -nt $REGRESS_SRC/regress.c ]]; then
        return
    fi
    HINT="apt-get install build-essential" need_cmd make gcc
    log "building regress.so with PGXS"
    mkdir -p "$BUILD_DIR"
    cp "$REGRESS_SRC/regress.c" "$BUILD_DIR/"
    cat >"$BUILD_DIR/Makefile" <<'EOF'
# regress.so for pg_regress's test_setup, built against the installed server headers.
MODULES = regress
PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
EOF
    make -C "$BUILD_DIR" PG_CONFIG="$PG_CONFIG" >"$BUILD_DIR/build.log" 2>&1 || {
        tail -n 30 "$BUILD_DIR/build.log" >&2
        die "building regress.so failed (log: $BUILD_DIR/build.log)"
    }
}

# ---------------------------------------------------------------------------
# 3. Run
# ---------------------------------------------------------------------------

WORK=
trap cleanup_all EXIT
trap 'exit 130' INT TERM

fetch_regress_sources
find_pg_regress
build_regress_so

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgwarden-regress.XXXXXX")
chmod 755 "$WORK"
# The server reads data files and writes results under the suite's directories, and loads
# the test libraries, so everything lives in a directory the postgres user owns.
SUITE=$WORK/suite
LIBDIR=$WORK/lib
mkdir -p "$SUITE" "$LIBDIR"
cp -r "$REGRESS_SRC"/. "$SUITE/"
cp "$BUILD_DIR/regress.so" "$LIBDIR/"
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
for lib in autoinc refint; do
    [[ -f $PKGLIBDIR/$lib.so ]] || die "$PKGLIBDIR/$lib.so missing (contrib spi modules of postgresql-$PG_MAJOR)"
    cp "$PKGLIBDIR/$lib.so" "$LIBDIR/"
done
pg_own "$WORK"

start_cluster max_connections=200 max_prepared_transactions=10

PROXY_LABEL=$PROXY
PROXY_PORT=
case $PROXY in
pgwarden)
    # The release build, at the lowest priority: the leg measures the proxy as deployed,
    # and the build shares the machine with whatever else runs on it.
    if [[ -z ${PGWARDEN_PROFILE:-} && ${PGWARDEN_BIN:-$REPO_ROOT/target/release/pgwarden} == "$REPO_ROOT/target/release/pgwarden" ]] &&
        command -v cargo >/dev/null 2>&1; then
        log "building pgwarden (nice -n 19 cargo build --release; log in $WORK/cargo-build.log)"
        (cd "$REPO_ROOT" && timeout "${BUILD_TIMEOUT:-1800}" nice -n 19 cargo build --release) \
            >"$WORK/cargo-build.log" 2>&1 || {
            tail -n 15 "$WORK/cargo-build.log" >&2
            die "cargo build --release failed"
        }
        PGWARDEN_BUILT=1
    fi
    # shellcheck disable=SC2086 # PGWARDEN_ENV is a list of VAR=VALUE words
    start_pgwarden pgwarden ${PGWARDEN_ENV:-} || die "pgwarden is not usable (see above); use PROXY=pgbouncer or PROXY=none to check the script itself"
    PROXY_PORT=$PGWARDEN_PORT
    ;;
pgbouncer)
    # pg_regress sends PGOPTIONS="-c intervalstyle=postgres_verbose" as the startup
    # parameter 'options', which PgBouncer 1.18 refuses ("unsupported startup parameter")
    # and every test fails. For the stand-in, PgBouncer ignores it and the database gets
    # the setting instead (create_db). pgwarden gets no such help: it must forward
    # 'options' verbatim.
    start_pgbouncer 60 "extra_float_digits,options"
    PROXY_PORT=$BOUNCER_PORT
    ;;
esac

# create_db NAME: what pg_regress does itself without --use-existing. The expected outputs
# name the database ("regression" in psql, updatable_views, ...), so each leg drops and
# recreates it rather than using a new name.
create_db() {
    PGOPTIONS="-c client_min_messages=warning" \
        psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres >/dev/null <<EOF
DROP DATABASE IF EXISTS "$1" WITH (FORCE);
CREATE DATABASE "$1" TEMPLATE=template0;
ALTER DATABASE "$1" SET lc_messages TO 'C';
ALTER DATABASE "$1" SET lc_monetary TO 'C';
ALTER DATABASE "$1" SET lc_numeric TO 'C';
ALTER DATABASE "$1" SET lc_time TO 'C';
ALTER DATABASE "$1" SET bytea_output TO 'hex';
ALTER DATABASE "$1" SET timezone_abbreviations TO 'Default';
EOF
    if [[ $2 == pgbouncer ]]; then
        psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
            -c "ALTER DATABASE \"$1\" SET intervalstyle TO 'postgres_verbose'" >/dev/null
    fi
}

# run_leg NAME PORT -> $WORK/out-NAME/{regression.out,regression.diffs,results/}
run_leg() {
    local name=$1 port=$2 db out status=0 t0 t1
    db=regression
    out=$WORK/out-$name
    mkdir -p "$out"
    pg_own "$out"
    create_db "$db" "$name"
    log "pg_regress ($SCHEDULE schedule) $name: 127.0.0.1:$port database $db"
    t0=$(date +%s)
    as_pg env PGUSER=postgres timeout "$REGRESS_TIMEOUT" \
        "$PG_REGRESS" --use-existing --host=127.0.0.1 --port="$port" --dbname="$db" \
        --bindir="$(dirname "$(command -v psql)")" \
        --inputdir="$SUITE" --outputdir="$out" --dlpath="$LIBDIR" \
        --schedule="$SUITE/parallel_schedule" "${SERIAL_OPT[@]}" >"$out/pg_regress.stdout" 2>&1 || status=$?
    t1=$(date +%s)
    echo $((t1 - t0)) >"$out/seconds"
    if [[ $status -eq 124 ]]; then
        warn "$name: pg_regress hit the ${REGRESS_TIMEOUT}s limit"
    fi
    log "$name: pg_regress exit $status after $((t1 - t0)) s; $(grep -E 'tests (passed|failed)|All [0-9]+ tests' "$out/pg_regress.stdout" | tr -s ' ' | head -n 2 | tr '\n' ' ')"
}

# results NAME -> lines "test status" (status ok|FAILED|ignored) from pg_regress's output
results() {
    sed -nE 's/^[[:space:]]*(test[[:space:]]+)?([A-Za-z0-9_.]+)[[:space:]]+\.\.\.[[:space:]]+(ok|FAILED|failed \(ignored\)).*/\2 \3/p' \
        "$WORK/out-$1/pg_regress.stdout" | sed 's/failed (ignored)/ignored/'
}

# pgwarden's NOTICE and HINT for a DROP that a trash rule carried out (src/trash/plan.rs
# TrashPlan::notice, src/session/relay/trash.rs), as psql prints them.
TRASH_NOTICE_RE='^(NOTICE:  pgwarden: .* moved to the trash as item [0-9]+ \(schema pgwarden_trash_[0-9]+\) instead of being destroyed; restore it with `pgwarden trash restore [0-9]+`|HINT:  To restore it: pgwarden trash restore [0-9]+ \(or --as NAME for another name\))$'

# expected_files TEST: the expected outputs pg_regress accepts for TEST (NAME.out and the
# alternatives NAME_N.out).
expected_files() {
    local f
    for f in "$SUITE/expected/$1.out" "$SUITE/expected/$1"_[0-9].out; do
        [[ ! -f $f ]] || echo "$f"
    done
}

# without_notice LEG TEST FILE: writes TEST's output in LEG without the trash's NOTICE
# lines to FILE; returns 1 when the output is missing.
without_notice() {
    local out=$WORK/out-$1/results/$2.out
    [[ -f $out ]] || return 1
    grep -Ev "$TRASH_NOTICE_RE" "$out" >"$3" || true
}

# notice_only LEG TEST: whether TEST's output in LEG has the trash's NOTICE and matches
# an expected output once those lines are taken out (compared as pg_regress does: diff -w).
notice_only() {
    local out=$WORK/out-$1/results/$2.out tmp exp found=1
    [[ -f $out ]] && grep -Eq "$TRASH_NOTICE_RE" "$out" || return 1
    tmp=$(mktemp)
    without_notice "$1" "$2" "$tmp"
    while read -r exp; do
        if diff -w -q "$exp" "$tmp" >/dev/null 2>&1; then
            found=0
            break
        fi
    done < <(expected_files "$2")
    rm -f "$tmp"
    return "$found"
}

# other_diff LEG TEST: TEST's diff in LEG against its closest expected output (fewest
# diff lines, as pg_regress picks), with the trash's NOTICE lines taken out.
other_diff() {
    local tmp exp best="" lines best_lines=-1
    tmp=$(mktemp)
    if ! without_notice "$1" "$2" "$tmp"; then
        echo "=== $2: no output (not run, or cut off)"
        rm -f "$tmp"
        return
    fi
    while read -r exp; do
        # diff exits 1 when the files differ: not an error here (pipefail, set -e)
        lines=$(diff -w "$exp" "$tmp" | wc -l || true)
        if ((best_lines < 0 || lines < best_lines)); then
            best=$exp
            best_lines=$lines
        fi
    done < <(expected_files "$2")
    echo "=== $2 (against ${best##*/}, without the trash's NOTICE lines)"
    [[ -z $best ]] || diff -w -U3 --label "expected/${best##*/}" --label "results/$2.out" "$best" "$tmp" || true
    rm -f "$tmp"
}

T_START=$(date +%s)
run_leg direct "$PG_PORT"
if [[ $PROXY != none ]]; then
    run_leg "$PROXY" "$PROXY_PORT"
fi
T_END=$(date +%s)

TOTAL=$(awk '/^test:/ { n += NF - 1 } END { print n + 0 }' "$SUITE/parallel_schedule")
count_ok() { results "$1" | awk '$2 == "ok" { n++ } END { print n + 0 }'; }
DIRECT_OK=$(count_ok direct)

# save results
STAMP=$(date +%Y%m%d-%H%M%S)
DEST=$RESULTS_DIR/$STAMP
mkdir -p "$DEST"
declare -A NOTICE_ONLY_N OTHER_N
for d in "$WORK"/out-*; do
    leg=${d##*/out-}
    mkdir -p "$DEST/$leg"
    cp -r "$d"/. "$DEST/$leg/"
    results "$leg" >"$DEST/$leg/summary.txt"
    # every scheduled test that did not pass: differs only by the NOTICE, or other
    : >"$DEST/$leg/notice-only.txt"
    : >"$DEST/$leg/other.txt"
    : >"$DEST/$leg/other.diffs"
    while read -r t; do
        if notice_only "$leg" "$t"; then
            echo "$t" >>"$DEST/$leg/notice-only.txt"
        else
            echo "$t" >>"$DEST/$leg/other.txt"
            other_diff "$leg" "$t" >>"$DEST/$leg/other.diffs"
        fi
    done < <(comm -23 <(awk '/^test:/ { for (i = 2; i <= NF; i++) print $i }' "$SUITE/parallel_schedule" | sort -u) \
        <(results "$leg" | awk '$2 == "ok" { print $1 }' | sort -u))
    NOTICE_ONLY_N[$leg]=$(wc -l <"$DEST/$leg/notice-only.txt")
    OTHER_N[$leg]=$(wc -l <"$DEST/$leg/other.txt")
done
[[ $EUID -ne 0 ]] || chown -R "$(stat -c %u:%g "$RESULTS_DIR/..")" "$RESULTS_DIR" 2>/dev/null || true

echo
echo "PostgreSQL $("$PG_CONFIG" --version | awk '{print $2}') regression suite, $SCHEDULE schedule, $TOTAL tests (Debian source $(awk '{print $2}' "$SRC_CACHE/SOURCE-VERSION" 2>/dev/null | tr -d '()'))"
# leg_line LEG OK: "OK/TOTAL passed, N differ only by the trash's NOTICE, M other (S s)"
leg_line() {
    local line="$2/$TOTAL passed"
    ((${NOTICE_ONLY_N[$1]:-0} == 0)) || line+=", ${NOTICE_ONLY_N[$1]} differ only by the trash's NOTICE"
    echo "$line, ${OTHER_N[$1]:-0} other ($(cat "$WORK/out-$1/seconds") s)"
}
SUMMARY="direct: $(leg_line direct "$DIRECT_OK")"
rc=0
if [[ $PROXY != none ]]; then
    PROXY_OK=$(count_ok "$PROXY")
    SUMMARY+="; $PROXY_LABEL: $(leg_line "$PROXY" "$PROXY_OK")"
    # tests that passed directly and, through the proxy, neither passed nor differ only by
    # the NOTICE (a test missing from the proxy's output, e.g. after a timeout, counts)
    ONLY_PROXY=$(comm -12 <(results direct | awk '$2 == "ok" { print $1 }' | sort) \
        <(sort "$DEST/$PROXY/other.txt") || true)
    echo "$SUMMARY"
    if [[ -n $ONLY_PROXY ]]; then
        echo "failing only through $PROXY_LABEL (other than the trash's NOTICE): $(echo "$ONLY_PROXY" | tr '\n' ' ')"
        echo "$ONLY_PROXY" >"$DEST/only-through-$PROXY.txt"
    fi
    if ((PROXY_OK + ${NOTICE_ONLY_N[$PROXY]:-0} < DIRECT_OK)) || [[ -n $ONLY_PROXY ]]; then rc=1; fi
else
    echo "$SUMMARY"
fi
DIRECT_FAILED=$(results direct | awk '$2 != "ok" { print $1 }' | tr '\n' ' ')
[[ -z $DIRECT_FAILED ]] || echo "failing directly: $DIRECT_FAILED"
echo "wall time: $((T_END - T_START)) s; outputs and diffs in $DEST"
exit "$rc"
