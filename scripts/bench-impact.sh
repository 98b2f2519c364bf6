#!/usr/bin/env bash
# The impact probe's cost: benches/pgbench/impact-range.sql (an UPDATE and a DELETE of
# 10-100 rows by a non-key range, then an INSERT putting the rows back) against two
# pgwarden listeners in front of the same database: one whose target's policy measures
# delete/update statements (an `impact` rule with limits the script stays within), one
# without (probing off). Prints pgbench's latency and TPS for each, at 1 and 8 clients.
#
# Usage: PROBED=HOST:PORT UNPROBED=HOST:PORT DB=NAME USER=NAME scripts/bench-impact.sh
#   Both listeners must reach the same database; PGPASSWORD as for psql.
#   DURATION=10 (seconds per run), CLIENTS="1 8", SCALE=10 (pgbench -i, run through
#   UNPROBED once), INIT=0 to skip the pgbench -i step.
#
# An impact rule for the probed target (policy file), e.g.:
#   [[rule]]
#   name = "measured-writes"
#   environment = "production"
#   classes = ["delete.*", "update.*"]
#   action = "hold"
#   impact = { rows = 1000, share = "10%", share_min_rows = 10, on_unknown = "hold" }
# pgbench runs -M simple (the default here); with -M prepared a DML is measured only
# as one [Parse] Bind [Describe] Execute Sync batch (see docs/impact.md).
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"
    exit 0
fi
: "${PROBED:?PROBED=host:port of the measuring listener}"
: "${UNPROBED:?UNPROBED=host:port of the listener without probing}"
DB=${DB:-app}
USER=${USER:-postgres}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-1 8}
SCALE=${SCALE:-10}
SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/benches/pgbench/impact-range.sql"
command -v pgbench >/dev/null || { echo "pgbench missing: apt-get install postgresql-client" >&2; exit 1; }
if [[ ${INIT:-1} != 0 ]]; then
    pgbench -i -q -s "$SCALE" -h "${UNPROBED%:*}" -p "${UNPROBED##*:}" -U "$USER" "$DB"
fi
printf '%-10s %7s %12s %10s\n' listener clients latency_ms tps
for c in $CLIENTS; do
    for side in UNPROBED PROBED; do
        addr=${!side}
        out=$(pgbench -n -M simple -f "$SCRIPT" -D scale="$SCALE" -c "$c" -j "$(( c < 2 ? c : 2 ))" \
            -T "$DURATION" -h "${addr%:*}" -p "${addr##*:}" -U "$USER" "$DB" 2>&1) || {
            echo "$side: pgbench failed:"; echo "$out"; exit 1; }
        lat=$(awk '/latency average/ {print $4}' <<<"$out")
        tps=$(awk '/^tps/ {print $3; exit}' <<<"$out")
        printf '%-10s %7s %12s %10s\n' "${side,,}" "$c" "$lat" "$tps"
    done
done
