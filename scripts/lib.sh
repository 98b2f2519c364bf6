# shellcheck shell=bash
# Shared helpers for scripts/pg-regress.sh and scripts/bench-e2e.sh.
# Sourced, not executed. Everything listens on 127.0.0.1 only.
#
# Callers must set WORK (a private temp dir) before calling the cluster / proxy helpers,
# and call cleanup_all from their EXIT trap.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '%s %s\n' "[$(date +%H:%M:%S)]" "$*" >&2; }
warn() { printf '%s WARNING: %s\n' "[$(date +%H:%M:%S)]" "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || die "'$c' not found on PATH${HINT:+ ($HINT)}"
    done
}

# ---------------------------------------------------------------------------
# PostgreSQL installation
# ---------------------------------------------------------------------------

# Sets PG_MAJOR and PG_BINDIR (server binaries: initdb, pg_ctl, postgres).
find_postgres() {
    if [[ -z ${PG_BINDIR:-} ]]; then
        if [[ -n ${PG_MAJOR:-} ]]; then
            PG_BINDIR=/usr/lib/postgresql/$PG_MAJOR/bin
        elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
            PG_BINDIR=$(dirname "$(readlink -f "$(command -v initdb)")")
        else
            local d
            # highest installed major version under the Debian layout
            d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1 || true)
            PG_BINDIR=$d
        fi
    fi
    if [[ -z $PG_BINDIR || ! -x $PG_BINDIR/initdb || ! -x $PG_BINDIR/pg_ctl ]]; then
        die "PostgreSQL server binaries (initdb, pg_ctl) not found${PG_BINDIR:+ in $PG_BINDIR}.
  Install the server, e.g. 'apt-get install postgresql-15', or set PG_BINDIR=/path/to/bin."
    fi
    if [[ -z ${PG_MAJOR:-} ]]; then
        PG_MAJOR=$("$PG_BINDIR/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/')
    fi
    export PG_BINDIR PG_MAJOR
}

# Runs a command as the unprivileged 'postgres' user when we are root (PostgreSQL refuses
# to run as root), as ourselves otherwise.
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Ensures the postgres user can traverse and write DIR.
pg_own() {
    if [[ $EUID -eq 0 ]]; then
        chown -R postgres: "$@"
    fi
}

# A free TCP port on 127.0.0.1 (best effort: nothing listens there right now).
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "could not find a free port on 127.0.0.1"
}

# wait_for_sql PORT [SECS] [PID]: waits until 'psql -h 127.0.0.1 -p PORT' can run a query
# (user postgres, db postgres); gives up early if process PID has exited.
wait_for_sql() {
    local port=$1 secs=${2:-30} pid=${3:-} i
    for ((i = 0; i < secs * 5; i++)); do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        if PGCONNECT_TIMEOUT=2 psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -tAc 'select 1' >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# ---------------------------------------------------------------------------
# Throwaway cluster
# ---------------------------------------------------------------------------

PG_DATA=
PG_PORT=

# start_cluster [extra postgres -c settings...]
# initdb (trust auth, UTF8, C locale) in $WORK/data, start on a free port on 127.0.0.1.
start_cluster() {
    PG_DATA=$WORK/data
    PG_PORT=$(free_port)
    mkdir -p "$WORK/sock"
    pg_own "$WORK"
    log "initdb in $PG_DATA"
    as_pg "$PG_BINDIR/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C \
        >"$WORK/initdb.log" 2>&1 || {
        cat "$WORK/initdb.log" >&2
        die "initdb failed"
    }
    local opts="-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$WORK/sock"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    local s
    for s in "$@"; do opts+=" -c $s"; done
    log "starting PostgreSQL $PG_MAJOR on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$WORK/postgres.log" -o "$opts" -w -t 60 start \
        >/dev/null || {
        tail -n 30 "$WORK/postgres.log" >&2 || true
        die "PostgreSQL did not start"
    }
    wait_for_sql "$PG_PORT" 30 || die "PostgreSQL on port $PG_PORT does not answer"
}

stop_cluster() {
    if [[ -n $PG_DATA && -f $PG_DATA/postmaster.pid ]]; then
        as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
}

# ---------------------------------------------------------------------------
# Proxies
# ---------------------------------------------------------------------------

# Background processes we started: "name:pid" entries.
STARTED_PIDS=()

stop_started() {
    local e pid
    # pgwarden runs in its own process group (setsid): signal the group; others by pid
    for e in "${STARTED_PIDS[@]}"; do
        pid=${e#*:}
        if [[ ${e%%:*} == pgwarden* ]]; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        else
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for e in "${STARTED_PIDS[@]}"; do
        pid=${e#*:}
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if [[ ${e%%:*} == pgwarden* ]]; then
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        kill -KILL "$pid" 2>/dev/null || true
    done
    STARTED_PIDS=()
}

cleanup_all() {
    stop_started
    stop_cluster
    if [[ -n ${WORK:-} && -d $WORK ]]; then
        if [[ ${KEEP_WORK:-0} == 1 ]]; then
            log "kept work dir $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
}

# start_pgbouncer POOL_SIZE [IGNORED_STARTUP_PARAMS] -> sets BOUNCER_PORT. Session mode,
# trust auth, every database forwarded to the cluster.
BOUNCER_PORT=
BOUNCER_PID=
start_pgbouncer() {
    local pool=${1:-20} ignored=${2:-extra_float_digits}
    HINT="apt-get install pgbouncer" need_cmd pgbouncer
    BOUNCER_PORT=$(free_port)
    local dir=$WORK/pgbouncer
    mkdir -p "$dir"
    printf '"postgres" ""\n' >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = session
default_pool_size = $pool
max_client_conn = $((pool * 4 + 20))
max_db_connections = 0
server_reset_query = DISCARD ALL
ignore_startup_parameters = $ignored
logfile = $dir/pgbouncer.log
pidfile =
EOF
    pg_own "$dir"
    log "starting PgBouncer (session mode, pool $pool) on 127.0.0.1:$BOUNCER_PORT"
    # As root, pgbouncer drops to 'postgres' itself (-u), so $! is pgbouncer's own pid
    # (a runuser wrapper would neither forward SIGTERM nor show pgbouncer's CPU time).
    local asuser=()
    [[ $EUID -ne 0 ]] || asuser=(-u postgres)
    pgbouncer "${asuser[@]}" "$dir/pgbouncer.ini" >"$dir/stdout.log" 2>&1 &
    local pid=$!
    # shellcheck disable=SC2034 # read by the sourcing script
    BOUNCER_PID=$pid
    STARTED_PIDS+=("pgbouncer:$pid")
    if ! wait_for_sql "$BOUNCER_PORT" 20 "$pid"; then
        tail -n 20 "$dir/pgbouncer.log" "$dir/stdout.log" >&2 2>/dev/null || true
        die "PgBouncer did not accept connections on port $BOUNCER_PORT"
    fi
}

# Resolves PGWARDEN_BIN. By default it is target/$PGWARDEN_PROFILE/pgwarden (profile
# "release" unless set), brought up to date with cargo first so that it is never a stale
# build of other sources. Returns non-zero (with a message) when no binary can be had.
resolve_pgwarden() {
    local profile=${PGWARDEN_PROFILE:-release}
    local default=$REPO_ROOT/target/$profile/pgwarden
    PGWARDEN_BIN=${PGWARDEN_BIN:-$default}
    if [[ $PGWARDEN_BIN == "$default" && -z ${PGWARDEN_BUILT:-} ]] && command -v cargo >/dev/null 2>&1; then
        log "building pgwarden (cargo build --profile $profile; log in $WORK/cargo-build.log)"
        if ! (cd "$REPO_ROOT" && timeout "${BUILD_TIMEOUT:-1800}" cargo build --profile "$profile") \
            >"$WORK/cargo-build.log" 2>&1; then
            tail -n 15 "$WORK/cargo-build.log" >&2
            warn "cargo build --profile $profile failed"
            return 1
        fi
        PGWARDEN_BUILT=1
    fi
    if [[ ! -x $PGWARDEN_BIN ]]; then
        warn "pgwarden binary not found at $PGWARDEN_BIN (set PGWARDEN_BIN=...)"
        return 1
    fi
}

# start_pgwarden [NAME [VAR=VALUE...]] -> sets PGWARDEN_PORT and PGWARDEN_PID. Allow-all
# development target in front of the cluster; the VAR=VALUE pairs are added to its
# environment (e.g. PGWARDEN__SERVER__WORKER_THREADS=1), except four that shape the
# instance: PGWARDEN_BIN=PATH runs that binary instead, PGWARDEN_ENVIRONMENT=ENV sets the
# target's environment (e.g. production) and PGWARDEN_POLICY=PATH loads that policy file
# (e.g. policy.example.toml); PGWARDEN_SETSID=1 starts it in a session of its own, as
# earlier versions of this script did (see below). NAME keeps the files of several
# instances apart. Returns non-zero if the binary is missing or does not relay a query.
PGWARDEN_PORT=
PGWARDEN_PID=
start_pgwarden() {
    local name=${1:-pgwarden}
    (($# == 0)) || shift
    # The pseudo-variables above shape the instance; the rest go to its environment.
    local bin="" environment=development policy="" own_session=0 a
    local envs=()
    for a in "$@"; do
        case $a in
            PGWARDEN_BIN=*) bin=${a#PGWARDEN_BIN=} ;;
            PGWARDEN_ENVIRONMENT=*) environment=${a#PGWARDEN_ENVIRONMENT=} ;;
            PGWARDEN_POLICY=*) policy=${a#PGWARDEN_POLICY=} ;;
            PGWARDEN_SETSID=*) own_session=${a#PGWARDEN_SETSID=} ;;
            *) envs+=("$a") ;;
        esac
    done
    if [[ -n $policy && ! -f $policy ]]; then
        warn "policy file not found at $policy"
        return 1
    fi
    if [[ -z $bin ]]; then
        resolve_pgwarden || return 1
        bin=$PGWARDEN_BIN
    elif [[ ! -x $bin ]]; then
        warn "pgwarden binary not found at $bin"
        return 1
    fi
    PGWARDEN_PORT=$(free_port)
    local dir=$WORK/$name
    mkdir -p "$dir"
    cat >"$dir/proxy.toml" <<EOF
[server]
listen = "127.0.0.1:$PGWARDEN_PORT"

[targets.main]
host = "127.0.0.1"
port = $PG_PORT
environment = "$environment"
EOF
    [[ -z $policy ]] || printf '\n[policy]\npath = "%s"\n' "$policy" >>"$dir/proxy.toml"
    log "starting $name ($bin${envs[*]:+ with ${envs[*]}}) on 127.0.0.1:$PGWARDEN_PORT"
    # Its own process group, so stop_started also ends anything a wrapper script spawned,
    # but by default in this script's session: a new session (setsid) is also a new
    # scheduler autogroup (kernel.sched_autogroup_enabled), which the kernel gives one
    # share of the CPU against the script's group holding pgbench, PostgreSQL and
    # PgBouncer, so pgwarden would be measured under other scheduling than PgBouncer
    # (BENCHMARKS.md: on a busy machine, paired TPS / PgBouncer 0.43-0.45 with setsid,
    # 0.50-1.75 without).
    if [[ $own_session == 1 ]]; then
        setsid env ${envs[@]+"${envs[@]}"} "$bin" serve --config "$dir/proxy.toml" >"$dir/pgwarden.log" 2>&1 &
    else
        set -m
        env ${envs[@]+"${envs[@]}"} "$bin" serve --config "$dir/proxy.toml" >"$dir/pgwarden.log" 2>&1 &
        set +m
    fi
    local pid=$!
    # shellcheck disable=SC2034 # read by the sourcing script
    PGWARDEN_PID=$pid
    STARTED_PIDS+=("$name:$pid")
    if ! wait_for_sql "$PGWARDEN_PORT" 20 "$pid"; then
        warn "$name did not relay 'select 1' (exited, or no answer within 20 s); last log lines:"
        tail -n 15 "$dir/pgwarden.log" >&2 || true
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        return 1
    fi
}

# cpu_ticks PID: user+system CPU time of a process in clock ticks (0 if it is gone).
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
