#!/usr/bin/env bash
# Running as a service: the install layout (DESTDIR=... cmake --install) and
# the uninstall target; the units accepted by systemd-analyze; the daemon
# started through systemd-socket-activate answers /v1/status on the passed
# socket, sends READY=1 (and STOPPING=1) to a test NOTIFY_SOCKET, and exits 0
# on SIGTERM (the stop time is logged); a daemon started with 256
# descriptors raises its soft limit to the hard limit; the .deb checked with dpkg-deb -c
# and dpkg -x into a temporary directory, never installed.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root
need_tool cmake

BUILD=$(dirname "$LOOPHOLE_BIN")
[ -f "$BUILD/CMakeCache.txt" ] || fail "$BUILD is not a CMake build directory (LOOPHOLE_BIN=$LOOPHOLE_BIN)"
[ -f "$BUILD/packaging/cmake_install.cmake" ] ||
    fail "the build has no install rules: the top-level CMakeLists.txt needs add_subdirectory(packaging)"
PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
[ -n "$PREFIX" ] || fail "no CMAKE_INSTALL_PREFIX in $BUILD/CMakeCache.txt"

# install_dest: cmake --install into $DEST (DESTDIR); R is the prefix in it
# and UNITS the systemd unit directory.
DEST=$LH_TMP/dest
R=$DEST$PREFIX
UNITS=$R/lib/systemd/system
install_dest() {
    DESTDIR=$DEST cmake --install "$BUILD" >"$LH_TMP/install.log" 2>&1 ||
        fail "cmake --install failed: $(tail -n 5 "$LH_TMP/install.log")"
}

expect_file() { # expect_file PATH [x]
    [ -f "$1" ] || fail "not installed: ${1#"$DEST"}"
    if [ "${2:-}" = x ]; then
        [ -x "$1" ] || fail "not executable: ${1#"$DEST"}"
    fi
}

# ---- Parts --------------------------------------------------------------------

# The install layout under DESTDIR, and the uninstall target.
part_install() {
    install_dest
    expect_file "$R/bin/loophole" x
    expect_file "$R/sbin/loopholed" x
    expect_file "$R/share/man/man5/loophole.conf.5"
    expect_file "$R/share/man/man8/loopholed.8"
    expect_file "$R/share/man/man1/loophole.1"
    expect_file "$R/share/bash-completion/completions/loophole"
    expect_file "$R/share/fish/vendor_completions.d/loophole.fish"
    zsh_file=$(find "$R/share/zsh" -name _loophole 2>/dev/null | head -n 1)
    [ -n "$zsh_file" ] || fail "no zsh completion under ${R#"$DEST"}/share/zsh"
    example=$(find "$DEST" -path '*/loophole/loophole.json.example' | head -n 1)
    [ -n "$example" ] || fail "no loophole/loophole.json.example installed"
    case "$PREFIX" in
    /usr) assert_eq "$DEST/etc/loophole/loophole.json.example" "$example" "example config place" ;;
    *) assert_eq "$R/etc/loophole/loophole.json.example" "$example" "example config place" ;;
    esac
    expect_file "$UNITS/loophole.service"
    expect_file "$UNITS/loophole.socket"
    grep -qx "ExecStart=$PREFIX/sbin/loopholed" "$UNITS/loophole.service" ||
        fail "loophole.service does not run $PREFIX/sbin/loopholed: $(grep ^ExecStart "$UNITS/loophole.service")"
    ! grep -q '@[A-Z_]*@' "$UNITS/loophole.service" || fail "unsubstituted @VARIABLE@ in loophole.service"
    grep -qx 'ListenStream=/run/loophole.sock' "$UNITS/loophole.socket" || fail "loophole.socket listens elsewhere"
    [ "$(stat -c %a "$UNITS/loophole.service")" = 644 ] || fail "loophole.service is not 0644"
    log "install layout under DESTDIR ok (prefix $PREFIX, $(find "$DEST" -type f | wc -l) files)"

    # The uninstall target removes every installed file.
    DESTDIR=$DEST cmake --build "$BUILD" --target uninstall >"$LH_TMP/uninstall.log" 2>&1 ||
        fail "uninstall target failed: $(tail -n 5 "$LH_TMP/uninstall.log")"
    left=$(find "$DEST" -type f -o -type l)
    [ -z "$left" ] || fail "uninstall left files behind: $left"
    log "uninstall removed everything"
}

# The units as installed, with ExecStart pointed at the DESTDIR binary (verify
# checks that it exists) and MANPATH at the installed pages.
part_units() {
    want_tool systemd-analyze "to verify the systemd units (apt-get install systemd)"
    install_dest
    mkdir -p "$LH_TMP/units"
    sed "s|^ExecStart=$PREFIX/sbin/|ExecStart=$R/sbin/|" "$UNITS/loophole.service" >"$LH_TMP/units/loophole.service"
    cp "$UNITS/loophole.socket" "$LH_TMP/units/"
    (cd "$LH_TMP/units" && MANPATH=$R/share/man systemd-analyze verify ./loophole.socket ./loophole.service) \
        >"$LH_TMP/verify.out" 2>&1
    # verify exits 0 on unknown keys, so any message is a failure.
    [ ! -s "$LH_TMP/verify.out" ] || fail "systemd-analyze verify: $(cat "$LH_TMP/verify.out")"
    log "systemd-analyze verify accepts the installed units"
}

# Socket activation, READY=1, SIGTERM.
part_activation() {
    local t
    for t in systemd-socket-activate socat curl ip; do
        need_tool "$t"
    done
    CSOCK=$LH_TMP/activated.sock
    OWN_SOCK=$LH_TMP/bound-itself.sock
    NOTIFY=$LH_TMP/notify.sock
    NOTIFY_OUT=$LH_TMP/notify.out
    LH_DNS_PORT=$(free_port)
    POOL=127.0.79.2-127.0.79.20

    # socat prints every datagram it receives, unseparated: READY=1STOPPING=1.
    socat -u "UNIX-RECV:$NOTIFY" - >"$NOTIFY_OUT" 2>"$LH_TMP/socat.err" &
    SOCAT_PID=$!
    on_exit "kill $SOCAT_PID"
    wait_for -t 10 test -S "$NOTIFY" || fail "socat did not create $NOTIFY"

    # systemd-socket-activate binds CSOCK, waits for the first connection, then
    # execs loopholed in its own process with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES
    # and only the environment given with -E. --control-socket names another
    # path: the daemon must serve on the passed socket, not bind its own.
    echo "==== $(date +%T.%3N) systemd-socket-activate loopholed" >>"$LH_LOG"
    systemd-socket-activate -l "$CSOCK" --fdname=Control \
        -E "NOTIFY_SOCKET=$NOTIFY" -E ASAN_OPTIONS -E UBSAN_OPTIONS \
        "$LOOPHOLED" --config "$LOOPHOLE_SRC/packaging/loophole.json.example" \
        --control-socket "$OWN_SOCK" --resolver off --alias off --state-dir "$LH_STATE_DIR" \
        --dns-listen "$LH_DNS_IP:$LH_DNS_PORT" --pool "$POOL" \
        --docker-host "unix://$LH_TMP/none.sock" --log-level debug >>"$LH_LOG" 2>&1 &
    LH_DAEMON_PID=$!
    wait_for -t 10 test -S "$CSOCK" || fail "systemd-socket-activate did not create $CSOCK"

    # The first connection starts the daemon; it is accepted once the daemon is
    # up, so this one request also measures the start.
    t0=$(now_ms)
    status=$(curl -sS --max-time 30 --unix-socket "$CSOCK" http://x/v1/status) ||
        fail "no answer to /v1/status on the activated socket (is LISTEN_FDS wired into main.c?)"
    log "/v1/status answered on the passed socket after $(($(now_ms) - t0)) ms"
    printf '%s' "$status" | grep -q '"version"' || fail "/v1/status has no version: $status"
    printf '%s' "$status" | grep -q "$LH_DNS_PORT" || fail "/v1/status does not show the DNS port: $status"
    [ ! -e "$OWN_SOCK" ] || fail "the daemon bound --control-socket although a socket was passed"
    daemon_alive || fail "loopholed is not running"

    has_ready() { grep -q 'READY=1' "$NOTIFY_OUT"; }
    wait_for -t 10 has_ready || fail "no READY=1 on NOTIFY_SOCKET (got '$(cat "$NOTIFY_OUT")')"
    log "READY=1 received"
    # A second request on the same socket, now that the daemon is surely up.
    curl -sS --max-time 10 --unix-socket "$CSOCK" http://x/v1/containers | grep -q '^\[' ||
        fail "/v1/containers did not answer a JSON array"

    # SIGTERM: exits 0, promptly, with nothing left on lo.
    pid=$LH_DAEMON_PID
    t0=$(now_ms)
    kill -TERM "$pid"
    if ! lh_wait_exit "$pid" 10; then
        fail "loopholed $pid did not exit within 10 s of SIGTERM"
    fi
    stop_ms=$(($(now_ms) - t0))
    daemon_reap
    assert_eq 0 "$LH_DAEMON_STATUS" "exit status after SIGTERM"
    log "SIGTERM -> exit 0 in $stop_ms ms"
    echo "stop time: $stop_ms ms" >&2
    has_stopping() { grep -q 'STOPPING=1' "$NOTIFY_OUT"; }
    wait_for -t 5 has_stopping || fail "no STOPPING=1 on NOTIFY_SOCKET (got '$(cat "$NOTIFY_OUT")')"
    if ip -4 addr show dev lo | grep -q 'inet 127\.0\.79\.'; then
        fail "addresses of the test pool left on lo: $(ip -4 addr show dev lo | grep 'inet 127\.0\.79\.')"
    fi
    # The socket belongs to the launcher: the daemon must not unlink it.
    [ -S "$CSOCK" ] || fail "the daemon removed the socket it was passed"
    log "ok"
}

# The descriptor limit: started with launchd's soft limit of 256 (this part
# runs in a bash of its own, so lowering it here touches nothing else), the
# daemon raises its soft limit to the hard limit and says so once.
part_fdlimit() {
    local hard soft
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] || [ "$hard" -gt 256 ] || skip "hard descriptor limit $hard: nothing to raise"
    ulimit -Sn 256 || fail "cannot lower the soft descriptor limit to 256"
    LH_DNS_PORT=$(free_port)
    start_daemon --docker-host "unix://$LH_TMP/none.sock"
    soft=$(awk '/^Max open files/ {print $4}' "/proc/$LH_DAEMON_PID/limits")
    log "soft descriptor limit of loopholed $LH_DAEMON_PID: $soft (hard $hard)"
    assert_eq "$hard" "$soft" "the daemon's soft descriptor limit (/proc/$LH_DAEMON_PID/limits)"
    assert_eq 1 "$(log_count "descriptor limit raised from 256 to $hard")" \
        "log lines saying the descriptor limit was raised"
    stop_daemon
    log "ok"
}

# The Debian package: cpack, then dpkg-deb -c / -x / -e, never installed.
part_deb() {
    want_tool dpkg-deb "to look into the .deb"
    [ -f "$BUILD/CPackConfig.cmake" ] || fail "no CPackConfig.cmake in $BUILD (packaging/CMakeLists.txt includes CPack)"
    (cd "$LH_TMP" && cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$LH_TMP/pkg") \
        >"$LH_TMP/cpack.log" 2>&1 || fail "cpack -G DEB failed: $(tail -n 5 "$LH_TMP/cpack.log")"
    deb=$(find "$LH_TMP/pkg" -maxdepth 1 -name 'loophole_*.deb' | head -n 1)
    [ -n "$deb" ] || fail "cpack made no loophole_*.deb"
    dpkg-deb -c "$deb" >"$LH_TMP/deb.list" || fail "dpkg-deb -c $deb failed"
    for f in bin/loophole sbin/loopholed lib/systemd/system/loophole.service \
        lib/systemd/system/loophole.socket share/man/man8/loopholed.8 \
        share/man/man5/loophole.conf.5 share/bash-completion/completions/loophole \
        share/fish/vendor_completions.d/loophole.fish; do
        grep -q " \./${PREFIX#/}/$f\$" "$LH_TMP/deb.list" || fail "the .deb lacks $PREFIX/$f"
    done
    grep -q '/_loophole$' "$LH_TMP/deb.list" || fail "the .deb lacks the zsh completion"
    [ "$(dpkg-deb -f "$deb" Package)" = loophole ] || fail "package name is not loophole"
    deps=$(dpkg-deb -f "$deb" Depends)
    for d in libuv1 libyajl2 libldns3; do
        case "$deps" in *"$d"*) ;; *) fail "Depends lacks $d: $deps" ;; esac
    done
    root=$LH_TMP/debroot
    dpkg -x "$deb" "$root" || fail "dpkg -x failed"
    "$root$PREFIX/sbin/loopholed" --version | grep -q '^loopholed ' ||
        fail "the packaged loopholed does not run"
    grep -qx "ExecStart=$PREFIX/sbin/loopholed" "$root$PREFIX/lib/systemd/system/loophole.service" ||
        fail "the packaged unit runs another binary"
    dpkg-deb -e "$deb" "$LH_TMP/debctl" || fail "dpkg-deb -e failed"
    for s in postinst prerm postrm; do
        [ -x "$LH_TMP/debctl/$s" ] || fail "the .deb has no executable $s"
        sh -n "$LH_TMP/debctl/$s" || fail "$s is not valid sh"
    done
    log "the .deb ($(basename "$deb"), $(grep -c . "$LH_TMP/deb.list") entries) has the layout; Depends: $deps"
}

run_parts
