# Hostile files in the person's home: the root daemon reads
# ~/.docker/config.json and ~/.docker/contexts/meta/*/meta.json to find the
# Docker socket. A FIFO there used to block the whole daemon in fopen(), and a
# comment-wrapped document 400,000 levels deep crashed it in yajl_tree_free().
# In each case the daemon must start, answer DNS (dig) and /v1/status (the
# CLI), and find Docker by the next candidate. A symlinked config.json (dotfile
# managers) still works when it leads to the person's own file, and is
# refused when it leads to someone else's.
#
# The person is made up without touching the machine: the daemon runs in a
# private mount namespace where /etc/passwd is a bind-mounted copy with one
# more line, and is told --user; no --docker-host, so discovery runs.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
need_tool unshare
need_tool jq

# Discovery falls back to /var/run/docker.sock, so the engine must be there.
[ "$LH_DOCKER_HOST" = unix:///var/run/docker.sock ] ||
    skip "the engine is at $LH_DOCKER_HOST; this test needs it at /var/run/docker.sock"

D=$LH_DOMAIN
PERSON=lh$RUN_ID
PUID=4242
OTHER_UID=4343
PHOME=$LH_TMP/home
CTX_SOCK=$LH_TMP/ctx.sock
ENGINE_SOCK=${LH_DOCKER_HOST#unix://}
CLI=$LOOPHOLE_BIN/loophole

mkdir -p "$PHOME/.docker/contexts/meta/c1" "$PHOME/dotfiles"
cp /etc/passwd "$LH_TMP/passwd"
echo "$PERSON:x:$PUID:$PUID:loophole test person:$PHOME:/bin/sh" >>"$LH_TMP/passwd"
# A context whose socket is a link to the engine's: when the daemon uses it,
# /v1/status names it, which proves the person's files were read.
ln -s "$ENGINE_SOCK" "$CTX_SOCK"
printf '{"Name":"lhctx","Metadata":{},"Endpoints":{"docker":{"Host":"unix://%s"}}}\n' "$CTX_SOCK" \
    >"$PHOME/.docker/contexts/meta/c1/meta.json"
printf '{"auths":{},"currentContext":"lhctx"}\n' >"$PHOME/dotfiles/docker-config.json"
chown -R "$PUID:$PUID" "$PHOME"

# The daemon, wrapped: same pid (unshare and sh exec), its own /etc/passwd.
cat >"$LH_TMP/loopholed-ns" <<EOF
#!/bin/sh
exec unshare -m sh -c 'mount --bind "\$0" /etc/passwd && exec "\$@"' "$LH_TMP/passwd" \
    env -u DOCKER_HOST "$LOOPHOLED" "\$@"
EOF
chmod +x "$LH_TMP/loopholed-ns"
REAL_LOOPHOLED=$LOOPHOLED

# start_discovering: like start_daemon, but without --docker-host.
start_discovering() {
    [ -n "$LH_DNS_PORT" ] || LH_DNS_PORT=$(free_port)
    LOOPHOLED=$LH_TMP/loopholed-ns
    start_daemon_raw --control-socket "$LH_SOCK" --state-dir "$LH_STATE_DIR" \
        --dns-listen "$LH_DNS_IP:$LH_DNS_PORT" --domain "$D" --pool "$LH_POOL" \
        --resolver off --alias off --user "$PERSON" --log-level debug --dns-ttl 1
    LOOPHOLED=$REAL_LOOPHOLED
    if ! wait_for -t 20 dns_up; then
        daemon_alive || {
            daemon_reap
            fail "loopholed exited at start (status $LH_DAEMON_STATUS)"
        }
        fail "loopholed does not answer DNS on $LH_DNS_IP:$LH_DNS_PORT with $1"
    fi
}

status_json() { timeout 10 "$CLI" --socket "$LH_SOCK" status --json 2>/dev/null; }
connected() { [ "$(status_json | jq -r .docker.connected)" = true ]; }

# serves CASE WANT-ENDPOINT: the daemon answers DNS and the CLI, is connected
# to Docker through WANT-ENDPOINT, and a container gets its name.
serves() {
    local what=$1 want=$2 name a ep
    start_discovering "$what"
    wait_for -t 20 connected || fail "$what: not connected to Docker: $(status_json)"
    ep=$(status_json | jq -r .docker.endpoint)
    assert_eq "$want" "$ep" "$what: Docker endpoint in loophole status"
    name=lh-hostile-$((++n))-$RUN_ID
    run_ctr --name "$name" -p 80 "$LH_IMAGE" httpd -f -p 80 >/dev/null
    a=$(expect_address "$name.$D")
    timeout 10 "$CLI" --socket "$LH_SOCK" status >/dev/null || fail "$what: loophole status failed"
    dns_up || fail "$what: DNS stopped answering"
    stop_daemon
    log "$what: served ($name -> $a, Docker via $ep)"
}
n=0
CFG=$PHOME/.docker/config.json

# The person's own config.json through a symlink: their context is used.
ln -s "$PHOME/dotfiles/docker-config.json" "$CFG"
serves "a symlinked config.json" "unix://$CTX_SOCK"

# A symlink to a file the person does not own: refused, next candidate.
cp "$PHOME/dotfiles/docker-config.json" "$LH_TMP/someone-elses.json"
chown "$OTHER_UID:$OTHER_UID" "$LH_TMP/someone-elses.json"
ln -sfn "$LH_TMP/someone-elses.json" "$CFG"
serves "a symlink to someone else's file" "$LH_DOCKER_HOST"

# A FIFO that nobody ever writes.
rm -f "$CFG"
mkfifo "$CFG"
chown "$PUID:$PUID" "$CFG"
serves "a FIFO as config.json" "$LH_DOCKER_HOST"

# The comment-wrapped, 400,000-deep document, as config.json and as meta.json.
rm -f "$CFG"
peer gen deep-json --depth 400000 >"$CFG"
chown "$PUID:$PUID" "$CFG"
serves "a 400,000-deep config.json" "$LH_DOCKER_HOST"
cp "$PHOME/dotfiles/docker-config.json" "$CFG"
peer gen deep-json --depth 400000 >"$PHOME/.docker/contexts/meta/c1/meta.json"
chown -R "$PUID:$PUID" "$PHOME"
serves "a 400,000-deep meta.json" "$LH_DOCKER_HOST"

log "ok"
