# Sourced by scripts/bench-e2e.sh when COUNTS=1 (after the cluster, PgBouncer and the
# pgwarden instances are up and warm): per transaction, what each process on the path
# does. For each target, mode and client count, pgbench runs a little longer than
# DURATION s with a per-transaction log; once its connections are up, perf stat attaches
# for DURATION s to pgbench, to the proxy and to the PostgreSQL backends then serving
# (three perf instances, one per role). Each perf's window is timed by the command it
# runs (which starts once its counters are on, however long attaching took on a busy
# machine), and the transactions pgbench finished inside that window divide its counts.

# system calls the counts break down into; a missing tracepoint stops the script
COUNT_EVENTS=raw_syscalls:sys_enter,context-switches,task-clock
for sc in sendto sendmsg write writev recvfrom recvmsg read readv epoll_wait epoll_pwait poll ppoll pselect6 futex; do
    COUNT_EVENTS+=,syscalls:sys_enter_$sc
done
perf stat -e "$COUNT_EVENTS" -- true >/dev/null 2>"$RAW/perf-check.log" ||
    die "perf cannot count system calls here (tracepoints; as root, or kernel.perf_event_paranoid <= 1): $(tail -n 1 "$RAW/perf-check.log")"

PG_POSTMASTER=$(head -n 1 "$PG_DATA/postmaster.pid")

# perf_counts OUTFILE PIDS: counts the comma-separated PIDS (all their threads) for
# DURATION s, as CSV; OUTFILE.window gets the window's start and end (µs since the epoch)
perf_counts() {
    perf stat -x, -e "$COUNT_EVENTS" -o "$1" -p "$2" -- \
        sh -c 'date +%s%6N; sleep "$1"; date +%s%6N' sh "$DURATION" >"$1.window" 2>/dev/null
}

# in_window WINDOWFILE DIR -> transactions pgbench logged in DIR that ended inside the window
in_window() {
    local a b
    { read -r a; read -r b; } <"$1"
    cat "$2"/tx.* | awk -v a="$a" -v b="$b" '{ u = $5 * 1000000 + $6 } u >= a && u <= b { n++ } END { print n + 0 }'
}

# sum_counts CSVFILE -> "syscalls ctxsw sends recvs waits futex cpu_ms"
sum_counts() {
    awk -F, '$3 ~ /:|context|task-clock/ {
        v = ($1 ~ /^[0-9.]+$/) ? $1 : 0; e = $3
        if (e == "task-clock") cpu += v
        else if (e == "raw_syscalls:sys_enter") all += v
        else if (e == "context-switches") cs += v
        else if (e ~ /sys_enter_(sendto|sendmsg|write|writev)$/) snd += v
        else if (e ~ /sys_enter_(recvfrom|recvmsg|read|readv)$/) rcv += v
        else if (e ~ /sys_enter_(epoll_wait|epoll_pwait|poll|ppoll|pselect6)$/) wt += v
        else if (e ~ /sys_enter_futex$/) fx += v
    } END { printf "%d %d %d %d %d %d %.3f\n", all, cs, snd, rcv, wt, fx, cpu }' "$1"
}

COUNTS_TSV=$RAW/counts.tsv
: >"$COUNTS_TSV"
log "counting: ${#TARGETS[@]} targets x modes ($MODES) x clients ($CLIENTS), ${DURATION} s each"
for mode in $MODES; do
    for c in $CLIENTS; do
        for t in "${TARGETS[@]}"; do
            dir=$RAW/counts-$mode-c$c-$t
            mkdir -p "$dir"
            j=$((c < 2 ? c : 2))
            (cd "$dir" && exec pgbench -n "${SCRIPT_ARGS[@]}" -M "$mode" -c "$c" -j "$j" -T $((DURATION + 3)) -l \
                --log-prefix=tx -h 127.0.0.1 -p "${PORT[$t]}" -U postgres postgres \
                >"$dir/pgbench.log" 2>&1) &
            bench_pid=$!
            sleep 1.5
            # client backends (pgbench's own, or the proxy's server connections)
            backends=$(pgrep -d, -P "$PG_POSTMASTER" -f '^postgres: postgres postgres 127\.0\.0\.1' || true)
            [[ -n $backends ]] || die "no PostgreSQL backends found for $t"
            perf_counts "$dir/pgbench.csv" "$bench_pid" &
            p1=$!
            perf_counts "$dir/backends.csv" "$backends" &
            p2=$!
            p3=
            if [[ -n ${PROXY_PID[$t]:-} ]]; then
                perf_counts "$dir/proxy.csv" "${PROXY_PID[$t]}" &
                p3=$!
            fi
            wait "$p1" "$p2" ${p3:+"$p3"}
            wait "$bench_pid" || die "pgbench against $t (-M $mode -c $c) failed (log: $dir/pgbench.log)"
            for role in pgbench proxy backends; do
                [[ -f $dir/$role.csv ]] || continue
                ntx=$(in_window "$dir/$role.csv.window" "$dir")
                ((ntx > 0)) || die "no transactions inside the counting window of $role for $t"
                read -r all cs snd rcv wt fx cpu < <(sum_counts "$dir/$role.csv")
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$c" "$t" "$role" "$ntx" \
                    "$all" "$cs" "$snd" "$rcv" "$wt" "$fx" "$cpu" >>"$COUNTS_TSV"
            done
            log "counted -M $mode -c $c $t: $ntx transactions in the last window"
        done
    done
done

TABLE=$RAW/counts.md
{
    echo "per transaction, pgbench ${SCRIPT_ARGS[*]}, ${DURATION} s window per cell; CPU = perf task-clock (inflated on a busy machine, compare within a run); sends = sendto+sendmsg+write+writev, receives = recvfrom+recvmsg+read+readv, waits = epoll_wait+epoll_pwait+poll+ppoll+pselect6"
    echo "machine: $(nproc) cores; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| mode | clients | target | process | syscalls | context switches | sends | receives | waits | futex | CPU (µs) | all processes: syscalls / context switches |"
    echo "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '{ k = $1 SUBSEP $2 SUBSEP $3; tot_s[k] += $6 / $5; tot_c[k] += $7 / $5; row[NR] = $0; key[NR] = k }
        END {
            for (i = 1; i <= NR; i++) {
                split(row[i], f, "\t"); n = f[5]
                printf "| %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f / %.2f |\n",
                    f[1], f[2], f[3], f[4], f[6] / n, f[7] / n, f[8] / n, f[9] / n, f[10] / n, f[11] / n,
                    f[12] * 1000 / n, tot_s[key[i]], tot_c[key[i]]
            }
        }' "$COUNTS_TSV"
} >"$TABLE"
echo
cat "$TABLE"
echo
echo "raw perf output and counts.tsv in $RAW"
