#!/usr/bin/env bash
# Memory per session: the resident set (VmRSS) of pgwarden and of PgBouncer with N
# client sessions open and idle, then after each session ran a few statements (a
# read, a key-bound UPDATE, a range UPDATE the example policy measures), against one
# throwaway cluster. Prints KiB per session over the process's RSS with no client.
#
# Usage: scripts/bench-memory.sh
#
# Environment:
#   SESSIONS=200          client sessions (the cluster gets max_connections for them)
#   TABLES=0              extra tables (each with a primary key) in the database: a
#                         session that writes under an impact rule reads the catalog of
#                         every table once and keeps it
#   PGWARDEN_BIN=PATH     pgwarden binary (default target/dist/pgwarden, built first)
#   PGWARDEN_PROFILE=P    cargo profile of the default binary (default dist)
#   PGWARDEN_ENVIRONMENT  the target's environment (default production, with
#   PGWARDEN_POLICY       policy.example.toml; PGWARDEN_POLICY= for allow-all)
#   PG_MAJOR / PG_BINDIR  which installed PostgreSQL to use (default: detected)
#
# Needs python3 with psycopg2 (apt-get install python3-psycopg2) to hold the sessions
# open, and pgbouncer (apt-get install pgbouncer) for its row.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"
    exit 0
fi
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SESSIONS=${SESSIONS:-200}
TABLES=${TABLES:-0}
PGWARDEN_PROFILE=${PGWARDEN_PROFILE:-dist}
ENVIRONMENT=${PGWARDEN_ENVIRONMENT:-production}
POLICY=${PGWARDEN_POLICY-$REPO_ROOT/policy.example.toml}
[[ $SESSIONS =~ ^[0-9]+$ && $SESSIONS -gt 0 ]] || die "SESSIONS must be a positive number"
[[ $TABLES =~ ^[0-9]+$ ]] || die "TABLES must be a number"
python3 -c 'import psycopg2' 2>/dev/null \
    || die "python3 with psycopg2 is needed: apt-get install python3-psycopg2"
need_cmd pgbouncer
find_postgres

WORK=
trap cleanup_all EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgwarden-memory.XXXXXX")
chmod 755 "$WORK"

start_cluster "max_connections=$((SESSIONS + 20))"
as_pg "$PG_BINDIR/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -q -d postgres -c "
CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO t SELECT i, 0 FROM generate_series(1, 100000) i;
ANALYZE t;
DO \$\$ BEGIN FOR i IN 1..$TABLES LOOP
  EXECUTE format('CREATE TABLE extra_%s (id int PRIMARY KEY, v text)', i);
END LOOP; END \$\$;" >/dev/null
start_pgbouncer "$((SESSIONS + 10))"
start_pgwarden pgwarden "PGWARDEN_ENVIRONMENT=$ENVIRONMENT" ${POLICY:+"PGWARDEN_POLICY=$POLICY"} \
    || die "pgwarden did not start"
WARDEN_PORT=$PGWARDEN_PORT
WARDEN_PID=$PGWARDEN_PID

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# hold PORT: opens SESSIONS sessions through PORT, then follows the commands on stdin.
cat >"$WORK/hold.py" <<'EOF'
import sys, psycopg2
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = [psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
         for _ in range(n)]
for c in conns:
    c.autocommit = True
print("idle", flush=True)
sys.stdin.readline()
for i, c in enumerate(conns):
    cur = c.cursor()
    cur.execute("SELECT v FROM t WHERE id = %s", (i + 1,))
    cur.fetchall()
    cur.execute("UPDATE t SET v = v + 1 WHERE id = %s", (i + 1,))
    cur.execute("UPDATE t SET v = v + 1 WHERE id BETWEEN %s AND %s AND v >= 0",
                (i * 10 + 1, i * 10 + 20))
print("queried", flush=True)
sys.stdin.readline()
EOF

log "$SESSIONS sessions, $((TABLES + 1)) tables"
printf '%-10s %8s %10s %12s %14s %16s\n' proxy sessions "rss_0_KiB" "idle_KiB" "KiB/idle" "KiB/after_query"
for side in pgwarden pgbouncer; do
    if [[ $side == pgwarden ]]; then port=$WARDEN_PORT pid=$WARDEN_PID; else port=$BOUNCER_PORT pid=$BOUNCER_PID; fi
    base=$(rss "$pid")
    coproc HOLD { python3 "$WORK/hold.py" "$port" "$SESSIONS"; }
    read -r line <&"${HOLD[0]}"
    [[ $line == idle ]] || die "$side: the sessions did not open"
    sleep 2
    idle=$(rss "$pid")
    echo go >&"${HOLD[1]}"
    read -r line <&"${HOLD[0]}"
    [[ $line == queried ]] || die "$side: the statements did not run"
    sleep 2
    after=$(rss "$pid")
    echo done >&"${HOLD[1]}"
    wait "$HOLD_PID" || true
    awk -v s="$side" -v n="$SESSIONS" -v b="$base" -v i="$idle" -v a="$after" \
        'BEGIN { printf "%-10s %8d %10d %12d %14.1f %16.1f\n", s, n, b, i, (i - b) / n, (a - b) / n }'
done
