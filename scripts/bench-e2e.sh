#!/usr/bin/env bash
# End-to-end baseline: pgbench (select-only by default) against one throwaway cluster,
# directly, through PgBouncer (session mode) and through pgwarden twice (an allow-all
# development target, and a production target under policy.example.toml), in one run.
#
# Usage: scripts/bench-e2e.sh
#
# Environment:
#   DURATION=10          seconds per pgbench run
#   ROUNDS=1             repeats of the whole matrix; the table shows the median per cell
#   CLIENTS="1 8"        client counts (-j = min(clients, 2))
#   MODES="simple prepared"   pgbench query modes (-M)
#   SCALE=10             pgbench -i scale
#   SCRIPT=select-only   what pgbench runs: a built-in script (select-only, tpcb-like,
#                        simple-update) or a script file (e.g.
#                        benches/pgbench/impact-range.sql, given -D scale=SCALE)
#   POOL=16              PgBouncer default_pool_size (>= the largest client count)
#   PGWARDEN_BIN=PATH    pgwarden binary (default target/dist/pgwarden, the optimised build
#                        the container image ships, brought up to date with 'cargo build
#                        --profile dist' first). If it cannot be built or does not relay
#                        'select 1', its rows are skipped with a warning.
#   PGWARDEN_PROFILE=P   cargo profile of the default binary (default dist; release builds
#                        faster)
#   PGWARDEN=0           skip pgwarden on purpose
#   PGWARDEN_VARIANTS="NAME:VAR=VALUE[,VAR=VALUE...] ..."
#                        run several pgwarden instances side by side, each with extra
#                        environment (e.g. "w1:PGWARDEN__SERVER__WORKER_THREADS=1
#                        w2:PGWARDEN__SERVER__WORKER_THREADS=2"); PGWARDEN_BIN=PATH in a
#                        variant runs that binary (e.g. to compare two builds),
#                        PGWARDEN_ENVIRONMENT=ENV sets the target's environment and
#                        PGWARDEN_POLICY=PATH its policy file (the example policy
#                        measures DELETE/UPDATE not bounded by a key;
#                        PGWARDEN_POLICY=unmeasured: the example policy without its rules
#                        that have impact limits, i.e. probing off); rows are named
#                        pgwarden-NAME. Default: "allow-all:" (development target, no
#                        policy) and "production:" (production target, the example policy).
#   COUNTS=1             instead of the TPS table, count per transaction what each process
#                        does (pgbench, the proxy, the PostgreSQL backends): system calls,
#                        context switches, sends, receives, waits (perf stat on the running
#                        processes for DURATION s; needs perf: apt-get install linux-perf).
#                        Counts hardly depend on other load, unlike TPS.
#   SCHED=1              instead of the TPS table, trace the scheduler for SCHED_SECONDS
#                        (default 3) per cell: per transaction, the CPU time and the
#                        time spent runnable but waiting for a CPU of pgbench, the
#                        PostgreSQL backends and the proxy, and the machine's idle time
#                        (perf sched record -a, perf sched latency; needs perf).
#   OUT_DIR=DIR          where the table and raw pgbench logs are kept
#                        (default target/bench-e2e)
#   PG_MAJOR / PG_BINDIR which installed PostgreSQL to use (default: detected)
#
# Everything listens on 127.0.0.1 and is removed on exit. pgbench runs on the same machine
# as the server and the proxies, so absolute numbers depend on the cores available; compare
# the ratios within one run.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"
    exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--help]  (settings are environment variables)" >&2; exit 2; }

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-1}
CLIENTS=${CLIENTS:-1 8}
MODES=${MODES:-simple prepared}
SCALE=${SCALE:-10}
SCRIPT=${SCRIPT:-select-only}
POOL=${POOL:-16}
OUT_DIR=${OUT_DIR:-$REPO_ROOT/target/bench-e2e}
PGWARDEN_PROFILE=${PGWARDEN_PROFILE:-dist}

[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 ]] || die "DURATION must be a positive integer (seconds)"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "ROUNDS must be a positive integer"
case $SCRIPT in
    select-only | tpcb-like | simple-update) SCRIPT_ARGS=(-b "$SCRIPT") ;;
    *)
        [[ -f $SCRIPT ]] || die "SCRIPT: '$SCRIPT' is neither a built-in pgbench script nor a file"
        SCRIPT_ARGS=(-f "$(realpath "$SCRIPT")" -D "scale=$SCALE")
        ;;
esac
HINT="apt-get install postgresql-client" need_cmd psql pgbench
need_cmd timeout awk sort
[[ ${COUNTS:-0} != 1 ]] || HINT="apt-get install linux-perf" need_cmd perf pgrep
[[ ${SCHED:-0} != 1 ]] || HINT="apt-get install linux-perf" need_cmd perf
find_postgres
[[ $EUID -ne 0 ]] || command -v runuser >/dev/null || die "running as root needs 'runuser' to start PostgreSQL as 'postgres'"
for c in $CLIENTS; do
    [[ $c =~ ^[0-9]+$ ]] || die "CLIENTS must be numbers (got '$c')"
    ((c <= POOL)) || die "POOL ($POOL) must be at least the largest client count ($c) so PgBouncer does not queue"
done

# unmeasured_policy FILE: FILE without its rules that have `impact` limits (probing
# off: what those rules matched falls to the rules after them).
unmeasured_policy() {
    awk 'function flush() { if (!drop) printf "%s", buf; buf = ""; drop = 0 }
        /^\[/ { flush() }
        /^impact *=/ { drop = 1 }
        { buf = buf $0 "\n" }
        END { flush() }' "$1"
}

WORK=
trap cleanup_all EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgwarden-bench.XXXXXX")
chmod 755 "$WORK"
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT_DIR"
RAW=$OUT_DIR/$STAMP
mkdir -p "$RAW"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
start_cluster max_connections=100 shared_buffers=256MB
start_pgbouncer "$POOL"

TARGETS=(direct pgbouncer)
declare -A PORT=([direct]=$PG_PORT [pgbouncer]=$BOUNCER_PORT)
declare -A PROXY_PID=([pgbouncer]=$BOUNCER_PID)
PGWARDEN_NOTE=
if [[ ${PGWARDEN:-1} == 0 ]]; then
    PGWARDEN_NOTE="pgwarden skipped (PGWARDEN=0)"
else
    DEFAULT_VARIANTS="allow-all: production:PGWARDEN_ENVIRONMENT=production,PGWARDEN_POLICY=$REPO_ROOT/policy.example.toml"
    for spec in ${PGWARDEN_VARIANTS:-$DEFAULT_VARIANTS}; do
        vname=${spec%%:*}
        venv=${spec#*:}
        [[ $vname =~ ^[A-Za-z0-9_-]+$ ]] || die "PGWARDEN_VARIANTS: bad name in '$spec' (want NAME:VAR=VALUE,...)"
        t=pgwarden-$vname
        vars=()
        [[ -z $venv ]] || IFS=, read -r -a vars <<<"$venv"
        for v in "${vars[@]}"; do
            [[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "PGWARDEN_VARIANTS: '$v' in '$spec' is not VAR=VALUE"
        done
        # PGWARDEN_POLICY=unmeasured: the example policy without any rule that has
        # impact limits
        for i in "${!vars[@]}"; do
            case ${vars[$i]} in
                PGWARDEN_POLICY=unmeasured)
                    unmeasured_policy "$REPO_ROOT/policy.example.toml" >"$WORK/unmeasured-policy.toml"
                    vars[i]=PGWARDEN_POLICY=$WORK/unmeasured-policy.toml
                    ;;
            esac
        done
        if start_pgwarden "$t" "${vars[@]}"; then
            TARGETS+=("$t")
            PORT[$t]=$PGWARDEN_PORT
            PROXY_PID[$t]=$PGWARDEN_PID
        else
            PGWARDEN_NOTE="$t skipped: binary missing or not relaying queries (see warnings above)"
            warn "$PGWARDEN_NOTE"
        fi
    done
fi

log "pgbench -i -s $SCALE"
timeout 600 pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres \
    >"$RAW/init.log" 2>&1 || {
    tail -n 20 "$RAW/init.log" >&2
    die "pgbench -i failed"
}
psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'VACUUM ANALYZE' >/dev/null

# run_pgbench TARGET MODE CLIENTS SECONDS LOGFILE -> "tps latency_ms transactions"
# (a failed run ends the script: a proxy that drops pgbench connections has no figures)
run_pgbench() {
    local target=$1 mode=$2 c=$3 secs=$4 logf=$5 j
    j=$((c < 2 ? c : 2))
    if ! timeout $((secs + 60)) pgbench -n "${SCRIPT_ARGS[@]}" -M "$mode" -c "$c" -j "$j" -T "$secs" \
        -h 127.0.0.1 -p "${PORT[$target]}" -U postgres postgres >"$logf" 2>&1; then
        tail -n 15 "$logf" >&2
        die "pgbench against $target (-M $mode -c $c) failed (log: $logf)"
    fi
    local tps ntx
    tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' "$logf" | tail -n 1)
    ntx=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$logf" | tail -n 1)
    [[ -n $tps && -n $ntx ]] || die "could not read tps / transactions from $logf"
    # average latency = clients / TPS: what pgbench prints as "latency average" (closed
    # loop, no think time), without its rounding to the microsecond
    awk -v tps="$tps" -v c="$c" -v n="$ntx" 'BEGIN { printf "%s %.6f %d\n", tps, 1000 * c / tps, n }'
}

# warm-up: caches and the proxies' first connections
for t in "${TARGETS[@]}"; do
    run_pgbench "$t" simple 2 2 "$RAW/warmup-$t.log" >/dev/null
done

if [[ ${COUNTS:-0} == 1 ]]; then
    # shellcheck source=scripts/bench-counts.sh
    source "$(dirname "${BASH_SOURCE[0]}")/bench-counts.sh"
    exit 0
fi
if [[ ${SCHED:-0} == 1 ]]; then
    # shellcheck source=scripts/bench-sched.sh
    source "$(dirname "${BASH_SOURCE[0]}")/bench-sched.sh"
    exit 0
fi

NCELLS=0
for _ in $MODES; do for _ in $CLIENTS; do NCELLS=$((NCELLS + 1)); done; done
log "measuring: $ROUNDS round(s) x $NCELLS configurations x ${#TARGETS[@]} targets x ${DURATION}s (about $((ROUNDS * NCELLS * ${#TARGETS[@]} * (DURATION + 1))) s)"

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
RESULTS=$RAW/results.tsv
: >"$RESULTS"
for ((r = 1; r <= ROUNDS; r++)); do
    # alternate the targets within each configuration so drift hits all of them, and
    # rotate their order from round to round so none is always first
    order=("${TARGETS[@]:$(((r - 1) % ${#TARGETS[@]}))}" "${TARGETS[@]:0:$(((r - 1) % ${#TARGETS[@]}))}")
    for mode in $MODES; do
        for c in $CLIENTS; do
            for t in "${order[@]}"; do
                pid=${PROXY_PID[$t]:-}
                cpu0=0
                [[ -z $pid ]] || cpu0=$(cpu_ticks "$pid")
                read -r tps lat ntx < <(run_pgbench "$t" "$mode" "$c" "$DURATION" "$RAW/r$r-$mode-c$c-$t.log")
                # proxy CPU per transaction: user+system time of the proxy process during
                # the run / transactions; unlike TPS, barely affected by other load
                cpu_us=-
                if [[ -n $pid ]]; then
                    cpu1=$(cpu_ticks "$pid")
                    cpu_us=$(awk -v d=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="$ntx" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
                fi
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$mode" "$c" "$t" "$tps" "$lat" "$cpu_us" >>"$RESULTS"
                log "round $r  -M $mode  -c $c  $t: $tps tps, $lat ms${pid:+, proxy CPU $cpu_us µs/txn}"
            done
        done
    done
done

# median of the rounds per (mode, clients, target), then the table
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
TABLE=$RAW/table.md
{
    echo "pgbench ${SCRIPT_ARGS[*]}, scale $SCALE, ${DURATION} s per run, $ROUNDS round(s)$( ((ROUNDS > 1)) && echo ', median')"
    echo "machine: $(nproc) cores ($CPU_MODEL); load average at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "PostgreSQL $("$PG_BINDIR/pg_config" --version 2>/dev/null | awk '{print $2}' || "$PG_BINDIR/postgres" --version), $(pgbouncer --version 2>/dev/null | head -n 1), pgbench -j min(clients, 2), all on 127.0.0.1 TCP"
    if [[ -n $PGWARDEN_NOTE ]]; then
        echo "$PGWARDEN_NOTE"
    else
        rev=$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo 'an unknown revision')
        if [[ ${PGWARDEN_BIN:-} == "$REPO_ROOT/target/$PGWARDEN_PROFILE/pgwarden" ]]; then
            echo "pgwarden: built from $rev (profile $PGWARDEN_PROFILE)"
        elif [[ -n ${PGWARDEN_BIN:-} ]]; then
            echo "pgwarden: $PGWARDEN_BIN"
        else
            echo "pgwarden: the binaries named in PGWARDEN_VARIANTS (sources at $rev)"
        fi
    fi
    echo
    echo "| mode | clients | target | TPS | avg latency (ms) | TPS / direct | added latency vs direct (µs) | proxy CPU (µs/txn) | TPS / PgBouncer, same round |"
    echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
    for mode in $MODES; do
        for c in $CLIENTS; do
            dtps=$(awk -F'\t' -v m="$mode" -v c="$c" '$2 == m && $3 == c && $4 == "direct" { print $5 }' "$RESULTS" | median)
            # latency from the median TPS (clients / TPS), so the two columns agree
            dlat=$(awk -v c="$c" -v tps="$dtps" 'BEGIN { printf "%.6f", 1000 * c / tps }')
            for t in "${TARGETS[@]}"; do
                tps=$(awk -F'\t' -v m="$mode" -v c="$c" -v t="$t" '$2 == m && $3 == c && $4 == t { print $5 }' "$RESULTS" | median)
                lat=$(awk -v c="$c" -v tps="$tps" 'BEGIN { printf "%.6f", 1000 * c / tps }')
                cpu=$(awk -F'\t' -v m="$mode" -v c="$c" -v t="$t" '$2 == m && $3 == c && $4 == t && $7 != "-" { print $7 }' "$RESULTS" | median)
                # Paired: each round's TPS over PgBouncer's in the same round (the
                # machine drifts between rounds more than the proxies differ), median.
                vsb=$(awk -F'\t' -v m="$mode" -v c="$c" -v t="$t" '$2 == m && $3 == c && $4 == "pgbouncer" { b[$1] = $5 }
                    $2 == m && $3 == c && $4 == t { x[$1] = $5 }
                    END { for (r in x) if ((r in b) && b[r] > 0) print x[r] / b[r] }' "$RESULTS" | median)
                awk -v m="$mode" -v c="$c" -v t="$t" -v tps="$tps" -v lat="$lat" -v dtps="$dtps" -v dlat="$dlat" -v cpu="$cpu" -v vsb="$vsb" 'BEGIN {
                    if (t == "direct") { ratio = "1.00"; added = "–"; cpu = "–"; vsb = "–" }
                    else { ratio = sprintf("%.2f", tps / dtps); added = sprintf("%+.1f", (lat - dlat) * 1000); cpu = sprintf("%.1f", cpu); vsb = (vsb == "" ? "–" : sprintf("%.3f", vsb)) }
                    printf "| %s | %d | %s | %.0f | %.3f | %s | %s | %s | %s |\n", m, c, t, tps, lat, ratio, added, cpu, vsb
                }'
            done
        done
    done
} >"$TABLE"

echo
cat "$TABLE"
echo
echo "raw pgbench logs and results.tsv in $RAW"
