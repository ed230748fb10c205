#!/usr/bin/env bash
# Hostile clients (issue 15), against the real daemon and engine: slowloris,
# garbage, huge headers and never-ending requests on the control socket from
# two users at once, past the client cap; slowloris, garbage and stalled
# length prefixes on DNS over TCP; a few thousand random and malformed DNS
# packets (compression loops, truncated records, lying counts, long labels
# and names) over UDP and TCP; and clients that never read on a proxied
# connection. During each attack the daemon keeps answering other clients;
# after it, the control API and DNS answer, this run's containers in the
# registry match `docker ps`, each resolves and accepts on its port, and the
# daemon's fds (and, for the proxy, RSS) are back near where they were.
#
# The daemon has no flags for its control and DNS deadlines (control.h,
# dns_server.c: 10 s each), so the control part asserts concurrent answering
# under the attack rather than waiting deadlines out; the DNS part waits for
# the 10 s per-message deadline once, since that cut is what frees the TCP
# slots. Each part runs its own daemon.
# shellcheck shell=bash
# Parts and wait_for callbacks are called indirectly:
# shellcheck disable=SC2317
# jq filters name their $arguments inside single quotes:
# shellcheck disable=SC2016

# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in jq curl python3 setpriv; do need_tool "$t"; done
# ASan's quarantine keeps up to 256 MB of freed memory resident, which would
# drown the RSS comparison; a small one still catches use-after-free of
# recent frees.
export ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=8
# nobody must reach the control socket (the temporary directory is 0700).
chmod o+x "$LH_TMP"
# The attackers' python (they run as other users): root's may live under
# /root (pyenv).
SYS_PY=/usr/bin/python3
[ -x "$SYS_PY" ] || fail "missing $SYS_PY (nobody runs the control attacker with it)"

# ---- Shared checks ----------------------------------------------------------

# This run's containers are named $RUN_ID-<x>, so the registry (which lists
# every container of the engine, other tests' too) can be cut down to ours.
declare -A ADDR=()

run_docker_ids() { docker ps -q --no-trunc --filter "label=loophole.test=$RUN_ID" | LC_ALL=C sort; }
run_registry_ids() {
    curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers |
        jq -r --arg p "$RUN_ID-" '.[] | select((.container // "") | startswith($p))
            | select(.state == "running") | .id' | LC_ALL=C sort
}
registry_matches_docker() {
    local r d
    r=$(run_registry_ids) || return 1
    d=$(run_docker_ids) || return 1
    [ "$r" = "$d" ]
}

# ctr_ok CONTAINER-NAME: its DNS name resolves to its address, and port 80
# accepts there.
ctr_ok() {
    local j ip name
    j=$(ctr_json "$1")
    ip=$(jq -r '.ip // empty' <<<"$j")
    name=$(jq -r '.name // empty' <<<"$j")
    [ -n "$ip" ] && [ -n "$name" ] || return 1
    resolves_to "$name" "$ip" || return 1
    lh_tcp connects "$ip" 80
}

daemon_fds() { find "/proc/$LH_DAEMON_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
daemon_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$LH_DAEMON_PID/status"; }
FD0=
RSS0=
baseline() {
    FD0=$(daemon_fds)
    RSS0=$(daemon_rss_kb)
    log "baseline: $FD0 fds, RSS $RSS0 kB"
}
# Margin: +16 fds (a Docker reconnect, a lingering control client).
fds_near() { [ "$(daemon_fds)" -le $((FD0 + 16)) ]; }

# expect_recovered LABEL: the issue's checks after an attack; every
# container keeps the address it had.
expect_recovered() {
    local label=$1 c
    daemon_alive || fail "$label: the daemon died"
    wait_for -t 10 control_up || fail "$label: the control API does not answer"
    wait_for -t 10 dns_up || fail "$label: DNS over UDP does not answer"
    wait_for -t 10 dns_tcp_up || fail "$label: DNS over TCP does not answer"
    wait_for -t 20 registry_matches_docker ||
        fail "$label: registry ($(run_registry_ids | tr '\n' ' ')) != docker ps ($(run_docker_ids | tr '\n' ' '))"
    for c in "${!ADDR[@]}"; do
        wait_for -t 10 ctr_ok "$c" || fail "$label: $c does not resolve and accept: $(ctr_json "$c")"
        assert_eq "${ADDR[$c]}" "$(ctr_ip "$c")" "$label: address of $c"
    done
    wait_for -t 15 fds_near || fail "$label: daemon fds $(daemon_fds), were $FD0 (margin +16)"
    no_sanitizer_report "$label"
    log "$label: recovered ($(daemon_fds) fds, RSS $(daemon_rss_kb) kB)"
}

no_sanitizer_report() {
    if log_has 'AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:'; then
        fail "$1: a sanitizer report in the daemon log"
    fi
}

# answers NAME IP: NAME resolves to IP over UDP within 3 s (dig's 1 s per
# try, retried: the machine running the suite may be busy with other tests;
# a daemon starved by an attack misses it by far).
answers() { wait_for -t 3 resolves_to "$1" "$2"; }

dns_tcp_up() {
    dig +tcp +short +time=2 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" "$LH_DOMAIN" SOA 2>/dev/null | grep -q .
}

# web SUFFIX [DOCKER-RUN-ARGS...]: a container $RUN_ID-SUFFIX with httpd on
# port 80 (published); waits for its address and remembers it.
web() {
    local n=$RUN_ID-$1
    shift
    run_web "$n" "hello" -p 80 "$@" -- 80 >/dev/null
    ADDR[$n]=$(expect_ctr_ip "$n")
    wait_for -t 20 ctr_ok "$n" || fail "$n does not resolve and accept: $(ctr_json "$n")"
}

# setup: a daemon and one container, and the baseline.
setup() {
    start_daemon
    web a
    CTR_NAME=$(ctr_field "$RUN_ID-a" .name)
    CTR_IP=$(ctr_ip "$RUN_ID-a")
    baseline
}

# stop_attack TAG PID: tells the attacker to stop (TAG.stop), waits for it
# and shows its report (TAG.out).
stop_attack() {
    : >"$1.stop"
    wait "$2" || fail "the attacker $1 failed: $(cat "$1.out")"
    log "$(basename "$1"): $(cat "$1.out")"
}

# ---- The attackers (inline Python; peer.py stays as it is) ----------------------

# Control socket attacker: SOCK COUNT TAG PACE; keeps COUNT connections
# busy, reconnecting when the daemon closes one (at most one reconnect per
# PACE seconds; 0: at once), cycling through four ways to
# never finish a request:
#   slowloris  a request line and headers, one byte at a time, no end
#   garbage    random bytes, a few at a time
#   huge       header lines of 1000 bytes, towards the 16 KiB cap
#   endless    a complete header with Content-Length: 10000000, then a
#              trickle of body
# Writes "<TAG>.ready" once COUNT are open; stops when "<TAG>.stop" exists
# (or after 60 s); prints "opened N, closed by the daemon M".
read -r -d '' PY_CTL_ATTACK <<'EOF'
import os, random, selectors, socket, sys, time
path, count, tag, pace = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
modes = ["slowloris", "garbage", "huge", "endless"]
sel = selectors.DefaultSelector()
conns = {}
opened = closed = 0
def script(mode):
    if mode == "slowloris":
        head = b"GET /v1/status HTTP/1.1\r\nHost: x\r\n"
        return (bytes([b]) for b in head + b"X-Slow: " + b"a" * 100000)
    if mode == "garbage":
        return (os.urandom(random.randint(1, 8)) for _ in range(1 << 30))
    if mode == "huge":
        return (b"X-Big-%d: %s\r\n" % (i, b"h" * 1000) if i else b"GET / HTTP/1.1\r\n"
                for i in range(1 << 30))
    head = b"POST /v1/leases HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
    return (head if i == 0 else b"{" for i in range(1 << 30))
def connect(i):
    # A full listen backlog refuses (EAGAIN on a unix socket): try later.
    global opened
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
    except (BlockingIOError, InterruptedError, ConnectionRefusedError):
        s.close()
        return False
    opened += 1
    conns[s] = script(modes[i % len(modes)])
    sel.register(s, selectors.EVENT_READ)
    return True
deadline = time.time() + 60
i = 0
while i < count and time.time() < deadline:
    if connect(i):
        i += 1
    else:
        time.sleep(0.01)
open(tag + ".ready", "w").write("%d\n" % count)
pending = 0
last = 0.0
while not os.path.exists(tag + ".stop") and time.time() < deadline:
    while pending and time.time() - last >= pace and connect(i):
        pending -= 1
        i += 1
        last = time.time()
    for key, _ in sel.select(timeout=0.05):
        s = key.fileobj
        try:
            data = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            data = b""
        if not data:
            # The daemon closed it (an answer such as 400/431 comes first).
            sel.unregister(s)
            s.close()
            del conns[s]
            closed += 1
            pending += 1
    for s, gen in list(conns.items()):
        try:
            s.send(next(gen))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass  # seen as EOF or an error by the next select
print("opened %d, closed by the daemon %d" % (opened, closed))
EOF

# DNS-over-TCP attacker: ADDR PORT COUNT TAG; COUNT connections, a third
# each of
#   slow      a 2-byte length prefix and a real query of 100 bytes, one
#             byte every 0.2 s (20 s for the message: past the deadline)
#   garbage   random bytes, one every 0.2 s (the prefix is random too)
#   stall     a prefix of 1000, 10 bytes of it, then nothing
# never reconnecting. Writes "<TAG>.ready" once all are open, and
# "<TAG>.cut" with the count when every one of them has been closed by the
# daemon; stops at "<TAG>.stop" (or after 60 s); prints a report: per kind
# how many were cut, how many of the slow ones before their message was
# complete, and how many got an answer.
read -r -d '' PY_DNS_TCP_ATTACK <<'EOF'
import os, random, selectors, socket, struct, sys, time
addr, port, count, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x3c" + b"s" * 60 + \
    b"\x04loop\x04test\x00" + struct.pack(">HH", 1, 1)
answered = early = 0
sel = selectors.DefaultSelector()
conns = {}
for i in range(count):
    s = socket.create_connection((addr, port), timeout=3)
    s.setblocking(False)
    kind = ("slow", "garbage", "stall")[i % 3]
    if kind == "slow":
        data = struct.pack(">H", len(q)) + q
    elif kind == "garbage":
        data = os.urandom(4096)
    else:
        data = struct.pack(">H", 1000) + b"\x00" * 10
    conns[s] = [kind, data, 0, time.time()]
    sel.register(s, selectors.EVENT_READ)
start = time.time()
open(tag + ".ready", "w").write("%d\n" % count)
cut = {}
deadline = start + 60
next_tick = start
while not os.path.exists(tag + ".stop") and time.time() < deadline:
    for key, _ in sel.select(timeout=0.05):
        s = key.fileobj
        try:
            data = s.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            data = b""
        if data:
            answered += 1
            continue
        if not data:
            kind = conns[s][0]
            if kind == "slow" and conns[s][2] < len(conns[s][1]):
                early += 1
            cut[kind] = cut.get(kind, []) + [time.time() - start]
            sel.unregister(s)
            s.close()
            del conns[s]
            if not conns:
                open(tag + ".cut", "w").write("%d\n" % count)
    if time.time() >= next_tick:
        next_tick += 0.2
        for s, st in conns.items():
            kind, data, off, _ = st
            if kind == "stall" and off > 0:
                continue
            n = len(data) if kind == "stall" else 1
            if off < len(data):
                try:
                    st[2] += s.send(data[off:off + n])
                except OSError:
                    pass
for kind in sorted(cut):
    t = cut[kind]
    print("%s: %d cut after %.1f-%.1f s" % (kind, len(t), min(t), max(t)), end="; ")
print("still open %d; slow cut mid-message %d; answered %d" % (len(conns), early, answered))
EOF

# DNS fuzzer: ADDR PORT NAME IP SEED N-UDP N-TCP. Over UDP, batches of 40
# packets (malformed queries of the kinds below, responses, random bytes),
# each batch fenced by a real query for NAME that must come back with IP;
# over TCP, one connection per malformed message, followed by the same real
# query. A malformed query must be answered FORMERR or not at all (a random
# tail after a good header may be anything but a wrong id), a response must
# never be answered, and every reply carries the query's id. Prints the
# outcomes per kind; exits 1 with BAD lines on a violation.
read -r -d '' PY_DNS_FUZZ <<'EOF'
import os, random, socket, struct, sys, time
addr, port, name, want_ip, seed, n_udp, n_tcp = (sys.argv[1], int(sys.argv[2]), sys.argv[3],
    sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
rnd = random.Random(seed)
def hdr(qid, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)
def wire(n):
    return b"".join(bytes([len(l)]) + l for l in n.encode().split(b".") if l) + b"\0"
QT = struct.pack(">HH", 1, 1)
OPT = b"\x00" + struct.pack(">HHIH", 41, 4096, 0, 0)
def real(qid):
    return hdr(qid) + wire(name) + QT
# Malformed queries, each a function of the id: the daemon must answer
# FORMERR or nothing.
def crafted():
    q = wire(name)
    return {
        "pointer to itself": lambda i: hdr(i) + b"\xc0\x0c" + QT,
        "pointer loop of two": lambda i: hdr(i) + b"\x01a\xc0\x0e\x01b\xc0\x0c" + QT,
        "pointer past the end": lambda i: hdr(i) + b"\xc0\xff" + QT,
        "pointer forward": lambda i: hdr(i) + b"\xc0\x12" + QT + b"\x01a\x00",
        "label cut short": lambda i: hdr(i) + b"\x05ab",
        "type cut short": lambda i: hdr(i) + q + b"\x00",
        "qdcount 3, one question": lambda i: hdr(i, qd=3) + q + QT,
        "qdcount 2, two questions": lambda i: hdr(i, qd=2) + q + QT + q + QT,
        "qdcount 0": lambda i: hdr(i, qd=0),
        "ancount 5, no records": lambda i: hdr(i, an=5) + q + QT,
        "arcount 1, OPT cut": lambda i: hdr(i, ar=1) + q + QT + OPT[:5],
        "two OPT records": lambda i: hdr(i, ar=2) + q + QT + OPT + OPT,
        "label of 64": lambda i: hdr(i) + b"\x40" + b"a" * 64 + b"\x00" + QT,
        "label type 0x80": lambda i: hdr(i) + b"\x81a\x00" + QT,
        "name of 320 bytes": lambda i: hdr(i) + (b"\x3f" + b"a" * 63) * 5 + b"\x00" + QT,
        "random tail": lambda i: hdr(i) + bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 40))),
    }
KINDS = crafted()
RC = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
bad = []
seen = {}
def note(kind, outcome):
    seen.setdefault(kind, {}).setdefault(outcome, 0)
    seen[kind][outcome] += 1
def check_reply(kind, sent_id, data):
    if len(data) < 12:
        bad.append("%s: a %d-byte reply" % (kind, len(data)))
        return
    rid, flags = struct.unpack(">HH", data[:4])
    if rid != sent_id or not flags & 0x8000:
        bad.append("%s: reply id %d (sent %d) flags %04x" % (kind, rid, sent_id, flags))
        return
    rc = RC.get(flags & 0xf, str(flags & 0xf))
    note(kind, rc)
    if kind in KINDS and kind != "random tail" and rc != "FORMERR":
        bad.append("%s: answered %s, not FORMERR" % (kind, rc))
def real_ok(data, qid):
    # The A record's address is the last 4 bytes of a one-answer reply.
    return (len(data) >= 16 and struct.unpack(">H", data[:2])[0] == qid
            and struct.unpack(">H", data[6:8])[0] == 1 and socket.inet_ntoa(data[-4:]) == want_ip)
# ---- UDP: batches of junk, each fenced by a real query ----
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.connect((addr, port))
sent = 0
qid = 1
fences = 0
while sent < n_udp:
    batch = {}
    for _ in range(40):
        qid = qid % 60000 + 1
        r = rnd.random()
        if r < 0.5:
            kind = rnd.choice(sorted(KINDS))
            pkt = KINDS[kind](qid)
        elif r < 0.55:
            kind = "a response"
            pkt = hdr(qid, flags=0x8180) + wire(name) + QT
        else:
            kind = "random bytes"
            pkt = struct.pack(">H", qid) + os.urandom(rnd.randrange(0, 600))
        batch[qid] = kind
        try:
            u.send(pkt)
        except OSError:
            pass
        sent += 1
    fence = 60001 + fences % 5000
    fences += 1
    deadline = time.time() + 3
    got = False
    while not got and time.time() < deadline:
        u.send(real(fence))
        u.settimeout(1)
        try:
            while True:
                data = u.recv(65535)
                if real_ok(data, fence):
                    got = True
                    break
                rid = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else -1
                if rid in batch:
                    kind = batch.pop(rid)
                    if kind in ("a response",):
                        bad.append("answered a response (id %d)" % rid)
                    check_reply(kind, rid, data)
                elif rid < 60001:
                    bad.append("a reply with an unknown id %d" % rid)
        except socket.timeout:
            pass
    if not got:
        print("FAIL: no answer to a real query after %d junk UDP packets" % sent)
        sys.exit(1)
    for kind in batch.values():
        note(kind, "dropped")
# ---- TCP: one connection per message, fenced by a real query ----
tcp_closed = 0
for n in range(n_tcp):
    kind = rnd.choice(sorted(KINDS))
    pkt = KINDS[kind](n + 1)
    s = socket.create_connection((addr, port), timeout=3)
    s.sendall(struct.pack(">H", len(pkt)) + pkt + struct.pack(">H", len(real(60000))) + real(60000))
    buf = b""
    outcome = None
    try:
        while outcome is None:
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack(">H", buf[:2])[0]:
                ln = struct.unpack(">H", buf[:2])[0]
                msg, buf = buf[2:2 + ln], buf[2 + ln:]
                if real_ok(msg, 60000):
                    outcome = "fence"
                    break
                check_reply(kind + " (tcp)", n + 1, msg)
                if kind != "random tail" and msg[3] & 0xf != 1:
                    bad.append("%s over TCP: not FORMERR" % kind)
            if outcome:
                break
            d = s.recv(65536)
            if not d:
                outcome = "closed"
                tcp_closed += 1
                break
            buf += d
    except socket.timeout:
        bad.append("%s over TCP: neither an answer nor a close in 3 s" % kind)
    s.close()
for k in sorted(seen):
    print("%s: %s" % (k, ", ".join("%s %d" % kv for kv in sorted(seen[k].items()))))
print("udp %d packets, %d fences; tcp %d messages, %d closed by the daemon" % (sent, fences, n_tcp, tcp_closed))
for b in bad[:20]:
    print("BAD: " + b)
sys.exit(1 if bad else 0)
EOF

# Non-reading clients: ADDR PORT COUNT PATH TAG; COUNT connections that ask
# for PATH (a big file) with a small receive buffer and never read; "TAG.ready"
# once all have sent their request; they close when "TAG.stop" appears (or
# after 60 s).
read -r -d '' PY_NO_READ <<'EOF'
import os, socket, sys, time
addr, port, count, path, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
conns = []
for _ in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(3)
    s.connect((addr, port))
    s.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\n\r\n")
    conns.append(s)
open(tag + ".ready", "w").write("%d\n" % count)
deadline = time.time() + 60
while not os.path.exists(tag + ".stop") and time.time() < deadline:
    time.sleep(0.05)
for s in conns:
    s.close()
EOF

# ---- Control socket ------------------------------------------------------------------

# as_uid UID CMD...: CMD with that uid and gid and no supplementary groups
# (no user database entry needed).
as_uid() { setpriv --reuid="$1" --regid="$1" --clear-groups -- "${@:2}"; }

# control_attack PACE LABEL: five users (root, nobody and three uids without
# a name) with 60 connections each: past each uid's share (16) and,
# together, past the global ceiling (64); each reconnects when the daemon
# closes one of its connections, at most once per PACE seconds (0: at once).
# One user's flood only costs that user its own connections (control.c), so
# the requests checked under the attack come from a sixth uid (root's own
# may be evicted by root's flood): 20 status requests in a row, each
# answered (curl gives each 5 s), and DNS over UDP each time (answers).
control_attack() {
    local pace=$1 label=$2 d=$LH_TMP/attack u pids=() tags=()
    mkdir -p "$d"
    chmod 777 "$d"
    for u in 0 65534 40001 40002 40003; do
        as_uid "$u" "$SYS_PY" -c "$PY_CTL_ATTACK" "$LH_SOCK" 60 "$d/ctl-$u" "$pace" \
            >"$d/ctl-$u.out" 2>&1 &
        pids+=($!)
        tags+=("$d/ctl-$u")
        on_exit "kill $!"
    done
    for u in "${tags[@]}"; do
        wait_for -t 20 test -s "$u.ready" || fail "attacker $u could not connect: $(cat "$u.out")"
    done

    local i st
    for i in $(seq 1 20); do
        st=$(as_uid 40100 curl -sS -m 5 --unix-socket "$LH_SOCK" -o - -w '\n%{http_code}' \
            http://x/v1/status 2>"$LH_TMP/curl.err")
        assert_eq 200 "${st##*$'\n'}" "$label: GET /v1/status $i from a quiet user ($(cat "$LH_TMP/curl.err"))"
        jq -e '.version and .uptime_s != null' <<<"${st%$'\n'*}" >/dev/null ||
            fail "$label: GET /v1/status $i: not a status: $(head -c 300 <<<"$st")"
        answers "$CTR_NAME" "$CTR_IP" || fail "$label: $CTR_NAME does not resolve (UDP, 3 s) during query $i"
    done
    st=$(as_uid 40100 curl -s -m 5 --unix-socket "$LH_SOCK" http://x/v1/containers 2>/dev/null)
    jq -e --arg n "$RUN_ID-a" 'any(.[]; .container == $n)' <<<"$st" >/dev/null ||
        fail "$label: GET /v1/containers does not list $RUN_ID-a: $(head -c 300 <<<"$st")"
    daemon_alive || fail "$label: the daemon died"

    # The caps closed connections: each attacker held more than its share.
    local closed
    for i in "${!tags[@]}"; do
        stop_attack "${tags[$i]}" "${pids[$i]}"
        closed=$(sed -n 's/^opened [0-9]*, closed by the daemon \([0-9]*\)$/\1/p' "${tags[$i]}.out")
        [ -n "$closed" ] || fail "${tags[$i]}: no report: $(cat "${tags[$i]}.out")"
        [ "$closed" -ge 44 ] || fail "${tags[$i]}: only $closed of 60 connections closed by the daemon (16 per uid)"
    done
    # Root's requests are answered again once the flood is over.
    assert_eq 200 "$(ctl_http GET /v1/status "$LH_TMP/status.json")" "$label: GET /v1/status as root after it"
    expect_recovered "$label"
}

# as_uid UID CMD...: CMD with that uid and gid and no supplementary groups
# (no user database entry needed).
as_uid() { setpriv --reuid="$1" --regid="$1" --clear-groups -- "${@:2}"; }

# Slowloris: trickled requests, a reconnect at most every 20 ms per user.
part_control_slowloris() {
    setup
    control_attack 0.02 "control socket slowloris"
    stop_daemon
}

# The same with reconnects at once: every eviction is answered by a new
# connection, so the daemon accepts and evicts as fast as it can.
part_control_flood() {
    setup
    control_attack 0 "control socket flood"
    stop_daemon
}

# ---- DNS over TCP -----------------------------------------------------------------------

part_dns_tcp() {
    setup
    wait_for -t 5 dns_tcp_up || fail "DNS over TCP does not answer before the attack"
    # 72 connections (the TCP cap is 64): slots trickled, garbage, stalled.
    local t=$LH_TMP/dnstcp
    python3 -c "$PY_DNS_TCP_ATTACK" "$LH_DNS_IP" "$LH_DNS_PORT" 72 "$t" >"$t.out" 2>&1 &
    local pid=$!
    on_exit "kill $pid"
    wait_for -t 20 test -s "$t.ready" || fail "the DNS TCP attacker could not connect: $(cat "$t.out")"

    # UDP is answered throughout, until the daemon has cut every attacker:
    # the per-message deadline (10 s from a message's first byte, not
    # extended by partial reads) frees the slots, and a client that sends
    # nothing at all waits at most the idle time (10 s).
    local n=0 deadline=$(($(now_ms) + 30000))
    while [ ! -s "$t.cut" ]; do
        answers "$CTR_NAME" "$CTR_IP" || fail "UDP query $n under the TCP attack: $(rcode "$CTR_NAME")"
        n=$((n + 1))
        [ "$(now_ms)" -lt "$deadline" ] ||
            fail "the daemon did not cut the trickling DNS TCP clients within 30 s: $(cat "$t.out")"
        daemon_alive || fail "the daemon died under the DNS TCP attack"
    done
    log "$n UDP queries answered during the attack"
    [ "$n" -ge 3 ] || fail "only $n UDP queries during the attack"
    # The attacker is still running (it never reconnects): TCP answers now.
    wait_for -t 5 dns_tcp_up || fail "DNS over TCP does not answer after the attack"
    [ "$(dig +tcp +short +time=2 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" "$CTR_NAME" A)" = "$CTR_IP" ] ||
        fail "$CTR_NAME over TCP after the attack"
    stop_attack "$t" "$pid"
    grep -q 'still open 0;' "$t.out" || fail "attackers left open: $(cat "$t.out")"
    # Every trickled query was cut before it was complete (a deadline that
    # partial reads extended would have let each finish and be answered).
    grep -q 'slow cut mid-message 24; answered 0$' "$t.out" ||
        fail "trickled queries were not cut mid-message: $(cat "$t.out")"
    expect_recovered "DNS over TCP attack"
    stop_daemon
}

# ---- Random and malformed DNS packets ------------------------------------------------

part_dns_malformed() {
    setup
    local seed=$RANDOM
    log "fuzz seed $seed"
    python3 -c "$PY_DNS_FUZZ" "$LH_DNS_IP" "$LH_DNS_PORT" "$CTR_NAME" "$CTR_IP" "$seed" 3000 300 \
        >"$LH_TMP/fuzz.out" 2>&1 ||
        fail "DNS fuzz (seed $seed): $(cat "$LH_TMP/fuzz.out")"
    log "$(cat "$LH_TMP/fuzz.out")"
    grep -q 'FORMERR' "$LH_TMP/fuzz.out" || fail "no FORMERR answer at all: $(cat "$LH_TMP/fuzz.out")"
    expect_recovered "malformed DNS"
    stop_daemon
}

# ---- A client that never reads on a proxied connection ---------------------------------

# port80 CONTAINER-NAME FILTER: FILTER applied to its port 80 in GET
# /v1/containers (e.g. .connections.active).
port80() { ctr_field "$1" "first(.ports[] | select(.port == 80 and .proto == \"tcp\")) | $2"; }
# bytes_settled CONTAINER-NAME: the port's byte counters did not move since
# the last call (the non-readers' buffers are full).
bytes_settled() {
    local now
    now=$(port80 "$1" '"\(.bytes.in) \(.bytes.out)"')
    [ -n "$now" ] || return 1
    [ "$now" = "$(cat "$LH_TMP/bytes.last" 2>/dev/null)" ] && return 0
    echo "$now" >"$LH_TMP/bytes.last"
    return 1
}
active_is() { [ "$(port80 "$1" .connections.active)" = "$2" ]; }

part_proxy_no_read() {
    setup
    local n=$RUN_ID-a www=$LH_TMP/www-$RUN_ID-a t=$LH_TMP/noread
    # 4 GiB of zeros that take no disk (httpd reads holes as zeros).
    truncate -s 4G "$www/big" || fail "cannot make the big file"
    chmod a+r "$www/big"
    expect_http_says "$CTR_IP" 80 hello
    wait_for -t 10 active_is "$n" 0 || fail "connections left before the test: $(port80 "$n" .connections)"
    baseline

    # 8 clients ask for 4 GiB each and never read a byte.
    python3 -c "$PY_NO_READ" "$CTR_IP" 80 8 /big "$t" >"$t.out" 2>&1 &
    local pid=$!
    on_exit "kill $pid"
    wait_for -t 10 test -s "$t.ready" || fail "the non-reading clients could not connect: $(cat "$t.out")"
    wait_for -t 10 active_is "$n" 8 || fail "8 connections should be active: $(port80 "$n" .connections)"
    # Once the buffers are full, nothing moves: the relay stopped reading
    # from the container (backpressure), it does not buffer 4 GiB.
    wait_for -t 20 bytes_settled "$n" || fail "the byte counters keep moving: $(port80 "$n" .bytes)"
    local rss out
    rss=$(daemon_rss_kb)
    out=$(port80 "$n" .bytes.out)
    log "8 non-readers held: RSS $rss kB (was $RSS0), $(daemon_fds) fds (were $FD0), bytes out $out"
    # Margin: 20 MB for 8 relays (their buffers and pipes are 64 KiB-1 MiB each).
    [ "$rss" -le $((RSS0 + 20480)) ] || fail "daemon RSS $rss kB with 8 non-reading clients, was $RSS0 kB (margin +20 MB)"
    [ "$out" -lt $((8 * 64 * 1048576)) ] || fail "$out bytes went to 8 clients that never read"

    # Other connections on the same port still work: a page, and 20 MB of
    # the big file read by a client that does read.
    expect_http_says "$CTR_IP" 80 hello
    local got
    got=$(curl -s -m 10 "http://$CTR_IP/big" 2>/dev/null | head -c 20000000 | wc -c)
    assert_eq 20000000 "$got" "bytes of /big read by a reading client beside the non-readers"
    answers "$CTR_NAME" "$CTR_IP" || fail "$CTR_NAME does not resolve beside the non-readers"

    # Closing them frees everything.
    stop_attack "$t" "$pid"
    wait_for -t 10 active_is "$n" 0 || fail "connections still active after the clients closed: $(port80 "$n" .connections)"
    expect_recovered "non-reading clients"
    stop_daemon
}

run_parts
