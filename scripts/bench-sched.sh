# Sourced by scripts/bench-e2e.sh when SCHED=1 (after the cluster, PgBouncer and the
# pgwarden instances are up and warm): where each transaction's time goes on the
# scheduler. For each target, mode and client count, pgbench runs a little longer than
# SCHED_SECONDS with a per-transaction log; once its connections are up, `perf sched
# record` traces every CPU for SCHED_SECONDS. `perf sched latency` then gives, per
# process (all its threads), the time it ran and the time it waited runnable for a CPU
# (wake-up to running), and /proc/stat gives the time both CPUs sat idle; each is divided
# by the transactions pgbench finished inside the window.

SCHED_SECONDS=${SCHED_SECONDS:-3}
perf sched record -o "$RAW/sched-check.data" -- true >/dev/null 2>"$RAW/sched-check.log" ||
    die "perf sched cannot trace here (as root, or kernel.perf_event_paranoid <= 1): $(tail -n 1 "$RAW/sched-check.log")"

# idle_us -> microseconds of idle (plus iowait) summed over all CPUs since boot
idle_us() {
    awk -v hz="$(getconf CLK_TCK 2>/dev/null || echo 100)" '$1 == "cpu" { printf "%.0f\n", ($5 + $6) / hz * 1e6 }' /proc/stat
}

# sched_rows LATENCYFILE PROXYTIDS PGBENCHTIDS -> "role runtime_ms switches wait_ms
# maxwait_ms" for pgbench, postgres and the proxy (by thread id: the comma-separated
# thread ids of the proxy process and of pgbench, from `perf sched latency -p`)
sched_rows() {
    awk -F'|' -v proxy=",$2," -v bench=",$3," 'NF >= 5 && $1 ~ /:[0-9]+ *$/ {
        task = $1; gsub(/^ +| +$/, "", task)
        tid = task; sub(/.*:/, "", tid); comm = task; sub(/:[0-9]+$/, "", comm)
        role = ""
        if (index(proxy, "," tid ",")) role = "proxy"
        else if (index(bench, "," tid ",")) role = "pgbench"
        else if (comm ~ /^postgres/) role = "postgres"
        if (role == "") next
        rt = $2; gsub(/[^0-9.]/, "", rt)
        sw = $3; gsub(/[^0-9]/, "", sw)
        avg = $4; sub(/.*avg: */, "", avg); gsub(/[^0-9.]/, "", avg)
        mx = $5; sub(/.*max: */, "", mx); gsub(/[^0-9.]/, "", mx)
        run[role] += rt; n[role] += sw; wait[role] += sw * avg
        if (mx > top[role]) top[role] = mx
    } END { for (r in run) printf "%s %.3f %d %.3f %.3f\n", r, run[r], n[r], wait[r], top[r] }' "$1"
}

# tids PID -> its thread ids, comma-separated
tids() { ls "/proc/$1/task" 2>/dev/null | paste -sd, -; }

SCHED_TSV=$RAW/sched.tsv
: >"$SCHED_TSV"
log "tracing the scheduler: ${#TARGETS[@]} targets x modes ($MODES) x clients ($CLIENTS), ${SCHED_SECONDS} s each"
for mode in $MODES; do
    for c in $CLIENTS; do
        for t in "${TARGETS[@]}"; do
            dir=$RAW/sched-$mode-c$c-$t
            mkdir -p "$dir"
            j=$((c < 2 ? c : 2))
            (cd "$dir" && exec pgbench -n "${SCRIPT_ARGS[@]}" -M "$mode" -c "$c" -j "$j" -T $((SCHED_SECONDS + 3)) -l \
                --log-prefix=tx -h 127.0.0.1 -p "${PORT[$t]}" -U postgres postgres \
                >"$dir/pgbench.log" 2>&1) &
            bench_pid=$!
            sleep 1.5
            bench_tids=$(tids "$bench_pid")
            proxy_tids=
            [[ -z ${PROXY_PID[$t]:-} ]] || proxy_tids=$(tids "${PROXY_PID[$t]}")
            i0=$(idle_us)
            a=$(date +%s%6N)
            perf sched record -a -o "$dir/sched.data" -- sleep "$SCHED_SECONDS" >/dev/null 2>"$dir/record.log" ||
                die "perf sched record failed for $t: $(tail -n 1 "$dir/record.log")"
            b=$(date +%s%6N)
            i1=$(idle_us)
            wait "$bench_pid" || die "pgbench against $t (-M $mode -c $c) failed (log: $dir/pgbench.log)"
            ntx=$(cat "$dir"/tx.* | awk -v a="$a" -v b="$b" '{ u = $5 * 1000000 + $6 } u >= a && u <= b { n++ } END { print n + 0 }')
            ((ntx > 0)) || die "no transactions inside the tracing window for $t"
            perf sched latency -p -i "$dir/sched.data" >"$dir/latency.txt" 2>/dev/null ||
                die "perf sched latency failed for $t"
            rm -f "$dir/sched.data"
            while read -r role rt sw wt mx; do
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$c" "$t" "$role" "$ntx" "$rt" "$sw" "$wt" "$mx" >>"$SCHED_TSV"
            done < <(sched_rows "$dir/latency.txt" "$proxy_tids" "$bench_tids")
            printf '%s\t%s\t%s\tidle\t%s\t%s\t0\t0\t0\n' "$mode" "$c" "$t" "$ntx" "$(((i1 - i0) / 1000))" >>"$SCHED_TSV"
            log "traced -M $mode -c $c $t: $ntx transactions in the window"
        done
    done
done
rm -f "$RAW/sched-check.data"

TABLE=$RAW/sched.md
{
    echo "per transaction, pgbench ${SCRIPT_ARGS[*]}, ${SCHED_SECONDS} s perf sched window per cell (tracing itself costs CPU: compare within a run)"
    echo "run = CPU time; wait = time runnable but waiting for a CPU (perf sched latency: wake-up to running); idle = both CPUs idle, summed"
    echo "machine: $(nproc) cores; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| mode | clients | target | TPS in window | pgbench run / wait (µs) | postgres run / wait (µs) | proxy run / wait (µs) | proxy wake-ups | proxy max wait (ms) | idle (µs) |"
    echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' -v secs="$SCHED_SECONDS" '{
            k = $1 SUBSEP $2 SUBSEP $3
            if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
            n[k] = $5; role = $4
            run[k, role] += $6; sw[k, role] += $7; wt[k, role] += $8
            if ($9 > mx[k, role]) mx[k, role] = $9
        }
        END {
            for (i = 1; i <= nk; i++) {
                k = order[i]; split(k, f, SUBSEP); x = 1000 / n[k]
                proxy = (sw[k, "proxy"] > 0) ? sprintf("%.1f / %.1f", run[k, "proxy"] * x, wt[k, "proxy"] * x) : "–"
                wake = (sw[k, "proxy"] > 0) ? sprintf("%.2f", sw[k, "proxy"] / n[k]) : "–"
                pmx = (sw[k, "proxy"] > 0) ? sprintf("%.2f", mx[k, "proxy"]) : "–"
                printf "| %s | %s | %s | %.0f | %.1f / %.1f | %.1f / %.1f | %s | %s | %s | %.1f |\n",
                    f[1], f[2], f[3], n[k] / secs,
                    run[k, "pgbench"] * x, wt[k, "pgbench"] * x, run[k, "postgres"] * x, wt[k, "postgres"] * x,
                    proxy, wake, pmx, run[k, "idle"] * x
            }
        }' "$SCHED_TSV"
} >"$TABLE"
echo
cat "$TABLE"
echo
echo "perf sched latency output per cell and sched.tsv in $RAW"
