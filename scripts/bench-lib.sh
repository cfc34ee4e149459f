# Shared by scripts/bench and scripts/bench-instructions (sourced, not run):
# a private PostgreSQL cluster under target/bench-cluster, a fresh database,
# a configured (not yet started) server, drop links, and small helpers.
# Expects scripts/lib.sh sourced and the working directory at the repo root.

# Starts the private cluster; sets psql_bin, pgbin, port, pgargs.
bench_cluster() {
    unset DATABASE_URL
    KEYDROP_REPO="$PWD/target/bench-cluster"
    mkdir -p "$KEYDROP_REPO"
    ensure_postgres
    pgbin="${KEYDROP_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
    psql_bin="$pgbin/psql"
    [[ -x "$psql_bin" ]] || psql_bin=psql
    port="${DATABASE_URL##*:}"
    port="${port%%/*}"
    pgargs=(-h 127.0.0.1 -p "$port" -U postgres)
    # Durable, as in production: scripts/lib.sh starts its clusters without
    # fsync (tests need no durability), so the benchmark turns it back on
    # (postgresql.auto.conf overrides keydrop.conf). BENCH_FSYNC=off leaves
    # it off, for comparison only: Keydrop's promise is a durable store.
    local durable=on
    [[ "${BENCH_FSYNC:-on}" == off ]] && durable=off
    "$psql_bin" -X -q "${pgargs[@]}" -d postgres -c "ALTER SYSTEM SET fsync = $durable" \
        -c "ALTER SYSTEM SET synchronous_commit = $durable" -c "ALTER SYSTEM SET full_page_writes = $durable" \
        -c "SELECT pg_reload_conf()" >/dev/null
}

stop_cluster() {
    kd_pg_run "$KEYDROP_PG_BINDIR/pg_ctl" -D "$KEYDROP_REPO/.keydrop/pg" -m fast stop >/dev/null 2>&1 || true
}

# fresh_db NAME: drops and creates it, points DB and DATABASE_URL at it.
fresh_db() {
    "$psql_bin" -X -q "${pgargs[@]}" -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
    DB="$1"
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$DB"
}

sql() { "$psql_bin" -X -q -At "${pgargs[@]}" -d "$DB" -v ON_ERROR_STOP=1 "$@"; }

free_port() {
    local p
    for ((p = $1; p < $1 + 500; p++)); do
        kd_port_in_use "$p" || {
            echo "$p"
            return 0
        }
    done
    kd_die "no free port from $1"
}

# The server's environment: KEK, listeners, no rate limits (one load
# generator is one client address). Sets kek_a, kek_b (rotation's next KEK).
bench_server_env() {
    kek_a="$("$bin" keygen --id bench-a)"
    kek_b="$("$bin" keygen --id bench-b)"
    export KEYDROP_KEKS="$kek_a"
    local public_port internal_port
    public_port="$(free_port 18080)"
    internal_port="$(free_port $((public_port + 1)))"
    export KEYDROP_PUBLIC_ADDR="127.0.0.1:$public_port" KEYDROP_INTERNAL_ADDR="127.0.0.1:$internal_port"
    export KEYDROP_RATE_LIMIT=off KEYDROP_LOG_FORMAT=json KEYDROP_MAX_CONNECTIONS_PER_CLIENT=off
    # As the Dockerfile ships it: mimalloc gives memory freed after start-up
    # back (idle RSS; BENCHMARKS.md).
    export MIMALLOC_ARENA_EAGER_COMMIT=0
}

# bench_links N FILE: N drop links of 100000 uses (the most one link takes), one per line.
bench_links() {
    local i
    : >"$2"
    for ((i = 0; i < $1; i++)); do
        "$bin" request create --org "Bench Co" --provider generic --max-uses 100000 --expires-in 1d >>"$2"
    done
}

# wait_up PID SECONDS: until the internal listener answers /healthz.
wait_up() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        curl -fsS "http://$KEYDROP_INTERNAL_ADDR/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$1" 2>/dev/null || kd_die "the server exited; log: $OUT/server.log"
        sleep 0.1
    done
    kd_die "the server did not answer /healthz within $2 s; log: $OUT/server.log"
}

# wait_sealed SECONDS: until the audit sealer has sealed every event.
wait_sealed() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        [[ "$(sql -c "SELECT count(*) FROM audit_events e WHERE NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.event_id = e.id)")" == 0 ]] && return 0
        sleep 0.1
    done
    kd_log "warning: audit events still unsealed after $1 s"
}
