#!/usr/bin/env python3
"""The measuring half of bench/scale (see there and bench/README.md).

    scale.py run CONFIG.json: runs every measurement and writes the raw
    figures (JSON) to CONFIG["raw"]. bench/scale owns the clean-up: every
    container carries the label loophole.test=bench-scale and every daemon's
    pid goes to CONFIG["pids"].

Clocks: intervals use time.monotonic_ns(); readiness from the engine's start
event compares the event's timeNano with time.time_ns() (the same machine's
wall clock).
"""
import datetime
import json
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

CFG = {}
LABEL = "loophole.test=bench-scale"
IMAGE = "loophole-test/busybox:1"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')} bench/scale] {msg}", file=sys.stderr, flush=True)


# ---- Docker -------------------------------------------------------------------


def run_args(name):
    # busybox httpd on 8080 (a full HTTP round trip through the proxy is
    # possible), nothing on 8081; both only exposed, not published.
    return ["docker", "run", "-d", "--label", LABEL, "--label", f"loophole.bench.run={CFG['run']}",
            "--name", name, "--expose", "8080", "--expose", "8081", IMAGE,
            "httpd", "-f", "-p", "8080", "-h", "/"]


def start_containers(names, workers=8):
    """docker run -d for every name, `workers` at a time."""
    def one(n):
        r = subprocess.run(run_args(n), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"docker run {n}: {r.stderr.strip()}")
        return r.stdout.strip()
    t = time.monotonic()
    with ThreadPoolExecutor(workers) as ex:
        ids = list(ex.map(one, names))
    log(f"started {len(names)} containers in {time.monotonic() - t:.1f} s")
    return ids


# ---- The daemon -----------------------------------------------------------------


def http_unix(path, sockpath, timeout=5.0):
    """GET path on the control socket; returns (status, body bytes)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sockpath)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = [], body
        while rest:
            size_s, _, rest = rest.partition(b"\r\n")
            size = int(size_s, 16)
            if size == 0:
                break
            out.append(rest[:size])
            rest = rest[size + 2:]
        body = b"".join(out)
    return status, body


class Daemon:
    n = 0

    def __init__(self, tag, level="warn"):
        Daemon.n += 1
        d = os.path.join(CFG["tmp"], f"d{Daemon.n}-{tag}")
        os.makedirs(d)
        self.sock = os.path.join(d, "control.sock")
        self.dns_port = CFG["dns_port"]
        self.args = [os.path.join(CFG["bin"], "loopholed"), "--control-socket", self.sock,
                     "--state-dir", os.path.join(d, "state"),
                     "--dns-listen", f"127.0.0.1:{self.dns_port}", "--domain", "loop.test",
                     "--pool", CFG["pool"], "--resolver", "off", "--alias", "off",
                     "--log-level", level]
        self.logpath = os.path.join(d, "loopholed.log")
        self.logf = open(self.logpath, "w")
        self.t0 = time.monotonic_ns()
        self.p = subprocess.Popen(self.args, stdout=self.logf, stderr=subprocess.STDOUT)
        with open(CFG["pids"], "a") as f:
            f.write(f"{self.p.pid}\n")

    @property
    def pid(self):
        return self.p.pid

    def status(self):
        st, body = http_unix("/v1/status", self.sock)
        return json.loads(body) if st == 200 else None

    def containers(self):
        st, body = http_unix("/v1/containers", self.sock, timeout=10)
        return json.loads(body) if st == 200 else None

    def mine_served(self, prefix, n):
        """How many of our containers (names starting with prefix) have both
        ports listening in direct mode."""
        cs = self.containers() or []
        k = 0
        for c in cs:
            if not (c.get("container") or "").startswith(prefix):
                continue
            modes = [p.get("mode") for p in c.get("ports", []) if p.get("proto") == "tcp"]
            if len(modes) == 2 and all(m == "direct" for m in modes):
                k += 1
        return k

    def wait_served(self, prefix, n, deadline_s=60):
        """Polls until all n of ours are served; returns ns since spawn.
        /v1/status (cheap) every 2 ms until it counts enough listeners, then
        /v1/containers (the full list) every 10 ms."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.p.poll() is not None:
                raise RuntimeError(f"loopholed exited with {self.p.returncode}")
            try:
                st = self.status()
            except OSError:
                st = None
            # Others' containers count too: a lower bound, so that the
            # full listing (costly at 500) is polled only near the end.
            if st and st.get("listeners", 0) >= 2 * n and st.get("containers", 0) >= n:
                break
            time.sleep(0.002)
        while time.monotonic() < end:
            t = time.monotonic_ns()
            if self.mine_served(prefix, n) >= n:
                return t - self.t0
            time.sleep(0.01)
        raise RuntimeError(f"not all {n} containers served within {deadline_s} s")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def ctxt(pid):
    v = nv = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            st = proc_status(f"{pid}/task/{t}")
        except OSError:
            continue
        v += int(st["voluntary_ctxt_switches"])
        nv += int(st["nonvoluntary_ctxt_switches"])
    return v, nv


# ---- Measurements ------------------------------------------------------------------


def timed(cmd):
    t = time.monotonic_ns()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.monotonic_ns() - t) / 1e6


def startup(n, prefix, raw):
    """Start-up with n of our containers running: R daemon starts from an
    empty state directory, interleaved with the engine's own `docker ps` at
    the same count (the baseline)."""
    for r in range(CFG["runs"]):
        d = Daemon(f"start{n}")
        try:
            ns = d.wait_served(prefix, n)
            rss, fds = rss_kb(d.pid), nfds(d.pid)
            hwm = int(proc_status(d.pid)["VmHWM"].split()[0])
            st = d.status()
        finally:
            d.stop()
        ps = timed(["docker", "ps", "-q", "--no-trunc"])
        raw["startup"].append({"n": n, "run": r, "ms": ns / 1e6, "rss_kb": rss, "hwm_kb": hwm,
                               "fds": fds, "docker_ps_ms": ps,
                               "containers_total": st.get("containers") if st else None,
                               "listeners_total": st.get("listeners") if st else None})
        log(f"start-up with {n}: {ns / 1e6:.0f} ms, RSS {rss} kB, {fds} fds "
            f"(daemon serves {st.get('containers') if st else '?'} containers in all); docker ps {ps:.0f} ms")


def engine_events(since, until):
    """How many events the engine reported between two wall-clock times (any
    container's: other users of the engine wake the daemon too)."""
    r = subprocess.run(["docker", "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
                        "--format", "{{.Type}} {{.Action}}"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, timeout=30)
    return len(r.stdout.splitlines())


def idle_cost(d, raw):
    """CPU time and wake-ups of an idle daemon: /proc over IDLE s, then
    strace (epoll_wait timeouts and returns) over another IDLE s."""
    secs = CFG["idle_s"]
    time.sleep(2)
    hz = os.sysconf("SC_CLK_TCK")
    w0 = time.time()
    c0, (v0, nv0), t0 = cpu_ticks(d.pid), ctxt(d.pid), time.monotonic()
    time.sleep(secs)
    c1, (v1, nv1), t1 = cpu_ticks(d.pid), ctxt(d.pid), time.monotonic()
    w1 = time.time()
    el = t1 - t0
    res = {"secs": el, "cpu_s": (c1 - c0) / hz, "vcsw": v1 - v0, "nvcsw": nv1 - nv0,
           "events": engine_events(w0, w1)}
    out = os.path.join(CFG["tmp"], "idle.strace")
    w2 = time.time()
    subprocess.run(["timeout", "-s", "INT", str(secs), "strace", "-f", "-tt", "-T",
                    "-e", "trace=epoll_wait,epoll_pwait,epoll_pwait2", "-o", out,
                    "-p", str(d.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res["strace_events"] = engine_events(w2, time.time())
    # What the descriptors that woke the daemon are (socket inodes; the
    # engine connection is the unix socket whose peer is docker.sock).
    res["fd_kinds"] = {}
    for fd in os.listdir(f"/proc/{d.pid}/fd"):
        try:
            res["fd_kinds"][fd] = os.readlink(f"/proc/{d.pid}/fd/{fd}")
        except OSError:
            pass
    # Unix sockets: name ours by the other end's path (docker.sock: the
    # engine connection; the events stream is the long-lived one).
    ss = subprocess.run(["ss", "-xpn"], stdout=subprocess.PIPE, text=True).stdout.splitlines()
    local_path = {}
    for line in ss:
        f = line.split()
        if len(f) >= 8 and f[4] != "*":
            local_path[f[5]] = f[4]
    for line in ss:
        m = re.search(rf"pid={d.pid},fd=(\d+)", line)
        f = line.split()
        if m and len(f) >= 8 and f[4] == "*":
            peer = local_path.get(f[7])
            if peer:
                res["fd_kinds"][m.group(1)] = f"unix, peer {peer}"
        elif m and len(f) >= 8:
            res["fd_kinds"][m.group(1)] = f"unix, listening on {f[4]}"
    calls = []
    try:
        lines = open(out).read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        # [pid] HH:MM:SS.us epoll_wait(3, [...], 1024, TIMEOUT) = RET <secs>, or
        # the "<... epoll_wait resumed>" half of a call strace caught waiting.
        if "epoll" not in line:
            continue
        rv = re.search(r"\) += (-?\d+)", line)
        tm = re.search(r"(?:\]|resumed>.*), (\d+), (-?\d+)[,)]", line)
        ts = re.search(r"(\d\d):(\d\d):(\d\d\.\d+)", line)
        if rv is None or ts is None:
            continue
        t = int(ts.group(1)) * 3600 + int(ts.group(2)) * 60 + float(ts.group(3))
        fds = [int(x) for x in re.findall(r"u32=(\d+)", line)]
        calls.append({"t": t, "timeout": int(tm.group(2)) if tm else None, "ret": int(rv.group(1)),
                      "fds": fds})
    timer_wakes = sum(1 for c in calls if c["ret"] == 0)
    io_wakes = sum(1 for c in calls if c["ret"] > 0)
    timeouts = {}
    for c in calls:
        timeouts[str(c["timeout"])] = timeouts.get(str(c["timeout"]), 0) + 1
    res.update({"strace_secs": secs, "epoll_calls": len(calls), "calls": calls[:200], "timer_wakes": timer_wakes,
                "io_wakes": io_wakes, "timeouts": timeouts, "strace_tail": lines[-12:]})
    raw["idle"] = res
    log(f"idle: {res['cpu_s']:.2f} s CPU over {el:.0f} s, {res['vcsw']} voluntary switches; "
        f"strace: {len(calls)} epoll waits, {timer_wakes} timed out, timeouts {timeouts}")


def dns_query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


def dns_a(sock, port, name, qid, timeout=0.2):
    """One A query: ("ok", address), ("nx", None) when the answer has no
    address (the name is not there yet), ("timeout", None). Waits for the
    answer: it says what the daemon knew when the query arrived, and on a
    loaded machine an answer can take longer than the 1 ms poll interval.
    Late answers to earlier queries (other ids) are skipped."""
    sock.sendto(dns_query(name, qid), ("127.0.0.1", port))
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return "timeout", None
        sock.settimeout(left)
        try:
            b, _ = sock.recvfrom(4096)
        except (socket.timeout, BlockingIOError):
            return "timeout", None
        rid, flags, _, an = struct.unpack(">HHHH", b[:8])
        if rid != qid:
            continue
        if flags & 0xF or an == 0:
            return "nx", None
        return "ok", socket.inet_ntoa(b[-4:])  # one A record: the last 4 bytes


def http_ok(ip, port):
    """(connected at, answered at): monotonic ns of connect() succeeding at
    the proxy's listener and of httpd's answer through it, or None."""
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((ip, port))
    except OSError:
        s.close()
        return None, None
    t_conn = time.monotonic_ns()
    try:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        b = s.recv(64)
        return t_conn, time.monotonic_ns() if b.startswith(b"HTTP/1.") else None
    except OSError:
        return t_conn, None
    finally:
        s.close()


def readiness(k, raw, d):
    """k containers one after the other, polled at 1 ms from `docker run -d`
    returning: the name resolving at the daemon's DNS port, the proxy
    accepting on NAME:8080, a full HTTP round trip through it. The engine's
    start events (docker events, timeNano) give the second origin."""
    ev = subprocess.Popen(["docker", "events", "--filter", f"label=loophole.bench.run={CFG['run']}",
                           "--filter", "event=start", "--format", "{{json .}}"],
                          stdout=subprocess.PIPE, text=True)
    with open(CFG["pids"], "a") as f:
        f.write(f"{ev.pid}\n")
    starts = {}

    def reader():
        for line in ev.stdout:
            try:
                e = json.loads(line)
                starts[e["id"]] = int(e["timeNano"])
            except (ValueError, KeyError):
                pass
    threading.Thread(target=reader, daemon=True).start()
    time.sleep(0.5)
    us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    port = CFG["dns_port"]
    rows = []
    # The floor of the client's own measurement: the same DNS query and HTTP
    # round trip for a container that is already served, just before each
    # docker run.
    known = f"bs-{CFG['run']}-0.loop.test"
    _, known_ip = dns_a(us, port, known, 1, timeout=1)
    for i in range(k):
        fl = {}
        if known_ip:
            t = time.monotonic_ns()
            st_, _ = dns_a(us, port, known, 2, timeout=1)
            fl["floor_dns_ms"] = (time.monotonic_ns() - t) / 1e6 if st_ == "ok" else None
            t = time.monotonic_ns()
            acc, ans = http_ok(known_ip, 8080)
            fl["floor_accept_ms"] = (acc - t) / 1e6 if acc else None
            fl["floor_http_ms"] = (ans - t) / 1e6 if ans else None
        name = f"bs-{CFG['run']}-r{i}"
        fq = f"{name}.loop.test"
        t_call = time.monotonic_ns()
        r = subprocess.run(run_args(name), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t_ret, wall_ret = time.monotonic_ns(), time.time_ns()
        if r.returncode != 0:
            raise RuntimeError(f"docker run {name}: {r.stderr.strip()}")
        cid = r.stdout.strip()
        ip = t_dns = t_acc = t_http = None
        # When the last query before the first answer was sent (the name
        # became resolvable between then and t_dns), and how many were sent.
        t_dns_prev, nq = t_ret, 0
        end = time.monotonic() + 10
        qid = 1
        while time.monotonic() < end and t_http is None:
            nxt = time.monotonic_ns() + 1_000_000
            if ip is None:
                qid = (qid + 1) & 0xFFFF
                t_q = time.monotonic_ns()
                res, ip = dns_a(us, port, fq, qid)
                nq += 1
                if ip:
                    t_dns = time.monotonic_ns()
                elif res == "nx":
                    t_dns_prev = t_q
            if ip is not None:
                acc, ans = http_ok(ip, 8080)
                if acc and t_acc is None:
                    t_acc = acc
                if ans:
                    t_http = ans
            rest = nxt - time.monotonic_ns()
            if t_http is None and rest > 0:
                time.sleep(rest / 1e9)
        rows.append({"name": name, "id": cid, "run_ms": (t_ret - t_call) / 1e6,
                     "dns_ms": (t_dns - t_ret) / 1e6 if t_dns else None,
                     "dns_prev_ms": (t_dns_prev - t_ret) / 1e6, "queries": nq,
                     "accept_ms": (t_acc - t_ret) / 1e6 if t_acc else None,
                     "http_ms": (t_http - t_ret) / 1e6 if t_http else None,
                     "wall_ret": wall_ret, "mono_ret": t_ret, **fl})
    time.sleep(1)
    ev.terminate()
    ev.wait()
    reg = {}
    for line in open(d.logpath):
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z info +registry (\S+)\.loop\.test -> ", line)
        if m and m.group(2) not in reg:
            reg[m.group(2)] = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
    for row in rows:
        r_t = reg.get(row["name"])
        row["reg_ms"] = (r_t * 1e9 - row["wall_ret"]) / 1e6 if r_t else None
        e = starts.get(row["id"])
        row["event_to_reg_ms"] = (r_t * 1e9 - e) / 1e6 if r_t and e else None
        # event -> X = (event -> run returned) + (run returned -> X)
        row["event_to_ret_ms"] = (row["wall_ret"] - e) / 1e6 if e else None
    raw["ready"] = rows
    ok = [r for r in rows if r["http_ms"] is not None]
    log(f"readiness: {len(ok)}/{len(rows)} answered; p50 dns "
        f"{statistics.median([r['dns_ms'] for r in ok] or [0]):.1f} ms")


def idle_conns(d, prefix, k, raw):
    """k idle TCP connections through one listener (NAME:8080, relayed to
    the container's httpd): RSS and descriptors before and after."""
    cs = d.containers() or []
    ip = next(c["ip"] for c in cs if (c.get("container") or "").startswith(prefix))
    time.sleep(0.5)
    r0, f0 = rss_kb(d.pid), nfds(d.pid)
    socks = []
    for _ in range(k):
        s = socket.socket()
        s.connect((ip, 8080))
        socks.append(s)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        st = d.status()
        if st and st.get("connections", 0) >= k:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    r1, f1 = rss_kb(d.pid), nfds(d.pid)
    st = d.status()
    for s in socks:
        s.close()
    raw["conns"] = {"k": k, "rss0": r0, "rss1": r1, "fds0": f0, "fds1": f1,
                    "daemon_conns": st.get("connections") if st else None}
    log(f"{k} idle connections: RSS {r0} -> {r1} kB, fds {f0} -> {f1}")


def ls_latency(d, raw):
    """loophole ls / ls --json against the daemon, interleaved with docker ps
    (the engine's own listing of the same containers)."""
    cli = os.path.join(CFG["bin"], "loophole")
    cmds = {"loophole ls": [cli, "--socket", d.sock, "ls"],
            "loophole ls --json": [cli, "--socket", d.sock, "ls", "--json"],
            "docker ps": ["docker", "ps"],
            "docker ps --format '{{json .}}'": ["docker", "ps", "--format", "{{json .}}"]}
    res = {k: [] for k in cmds}
    for _ in range(CFG["ls_runs"]):
        for k, c in cmds.items():
            res[k].append(timed(c))
    raw["ls"] = res
    raw["ls_cmds"] = {k: " ".join(v) for k, v in cmds.items()}


def main():
    CFG.update(json.load(open(sys.argv[2])))
    raw = {"startup": [], "counts": CFG["counts"], "commands": {}}
    prefix = f"bs-{CFG['run']}-"
    raw["commands"]["docker run"] = " ".join(run_args(f"{prefix}N"))
    names = []
    try:
        counts = CFG["counts"]
        for idx, n in enumerate(counts):
            # The readiness containers count towards the later steps.
            have = len(names) + len(raw.get("ready", []))
            want = [f"{prefix}{i}" for i in range(len(names), len(names) + max(0, n - have))]
            start_containers(want)
            names += want
            startup(n, prefix, raw)
            if idx == 0:
                # Info level: its registry lines (ms timestamps) tell when
                # it registered each readiness container.
                d = Daemon("idle", "info")
                raw["commands"]["loopholed"] = " ".join(d.args)
                try:
                    d.wait_served(prefix, n)
                    idle_cost(d, raw)
                    readiness(CFG["ready_n"], raw, d)
                finally:
                    d.stop()
            if idx == len(counts) - 1:
                d = Daemon("last")
                try:
                    d.wait_served(prefix, n)
                    ls_latency(d, raw)
                    idle_conns(d, prefix, CFG["conns"], raw)
                finally:
                    d.stop()
    finally:
        with open(CFG["raw"], "w") as f:
            json.dump(raw, f, indent=1)


# ---- The report ------------------------------------------------------------------


def pct(v, q):
    """Nearest-rank percentile (p99 of 50 samples is their maximum)."""
    v = sorted(v)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(-(-q * len(v) // 100)) - 1))
    return v[k]


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=20).stdout.strip()
    except subprocess.SubprocessError:
        return "?"


# The daemon's periodic timers (grep uv_timer_start daemon/), to name a
# wake-up by its interval.
KNOWN_TIMERS = [
    (30000, "DAEMON_REPROBE_MS (daemon/main.c on_reprobe: the reachability re-probe of every network, 30 s, always armed)"),
    (60000, "docker.c USER_IDLE_MS or proxy_tcp.c's idle sweep (tcp_idle_s/4, at most 60 s, armed while connections exist)"),
    (5000, "proxy_udp.c's session sweep (udp_idle_s/4, at most 5 s, armed while UDP sessions exist)"),
]


def report():
    CFG.update(json.load(open(sys.argv[2])))
    raw = json.load(open(CFG["raw"]))
    out, plots = CFG["out"], []
    L = []
    w = L.append
    w("## scale\n")
    w(f"date: {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, commit {CFG.get('commit', '?')}"
      + (" (--smoke: tiny counts, figures meaningless)" if CFG.get("smoke") else ""))
    cpu = sh("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1")
    mem = sh("awk '/MemTotal/ { printf \"%.0f GiB\", $2 / 1048576 }' /proc/meminfo")
    w(f"machine: {os.cpu_count()} cores ({cpu}), {mem}, kernel {sh('uname -r')}, "
      f"load before the run {CFG.get('load', '?')}")
    dv = sh("docker version --format '{{.Server.Version}}'")
    w(f"versions: Docker {dv}, "
      f"{sh('strace -V | head -n1')}, {sh('gnuplot --version')}, Python {sys.version.split()[0]}, "
      f"{sh('/bin/busybox | head -n1').split(' multi-call')[0]} (the test image's httpd), "
      f"{sh(CFG['bin'] + '/loopholed --version')} (Release, {CFG['bin']})")
    w(f"other containers on the engine at the start: {CFG.get('others', '?')} (the daemon serves them too)\n")
    w("commands:\n")
    w("```")
    w(f"{raw['commands'].get('docker run', '')}   # N containers, 8 at a time")
    w(f"{raw['commands'].get('loopholed', '')}   # a fresh --state-dir per start; --log-level warn for the start-ups, info for the idle/readiness daemon")
    w("GET /v1/status every 2 ms until listeners >= 2N, then GET /v1/containers every 10 ms until"
      " all N of ours have both ports in mode direct")
    for k, v in raw.get("ls_cmds", {}).items():
        w(f"{v}")
    w(f"docker events --filter label=loophole.bench.run=RUN --filter event=start --format '{{{{json .}}}}'")
    w(f"timeout -s INT {CFG['idle_s']} strace -f -tt -T -e trace=epoll_wait,epoll_pwait,epoll_pwait2 -p PID")
    w("```\n")

    # Start-up.
    st = raw["startup"]
    counts = sorted({r["n"] for r in st})
    w(f"### Start-up ({CFG['runs']} daemon starts per count)\n")
    w("Time from spawning loopholed (empty state directory) until every one of our N containers"
      " has both ports listening in direct mode; VmRSS, VmHWM and open descriptors at that"
      " moment. Baseline: `docker ps -q --no-trunc` (the engine listing the same containers),"
      " timed after each start.\n")
    w("| containers | served after (ms) | min-max | docker ps (ms) | vs docker ps | VmRSS (kB) | min-max | VmHWM (kB) | fds | served in all |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    dat = []
    for n in counts:
        rs = [r for r in st if r["n"] == n]
        ms = [r["ms"] for r in rs]
        rss = [r["rss_kb"] for r in rs]
        ps = statistics.median(r["docker_ps_ms"] for r in rs)
        m = statistics.median(ms)
        w(f"| {n} | {m:.0f} | {min(ms):.0f}-{max(ms):.0f} | {ps:.0f} | {m / ps:.1f} | "
          f"{statistics.median(rss):.0f} | {min(rss)}-{max(rss)} | "
          f"{statistics.median(r['hwm_kb'] for r in rs):.0f} | {statistics.median(r['fds'] for r in rs):.0f} | "
          f"{max(r['containers_total'] or 0 for r in rs)} |")
        dat.append((n, m, min(ms), max(ms), statistics.median(rss) / 1024, min(rss) / 1024,
                    max(rss) / 1024, ps))
    if len(dat) >= 2:
        xs = [d[0] for d in dat]
        ys = [d[4] * 1024 for d in dat]
        fs = [statistics.median(r["fds"] for r in st if r["n"] == n) for n in xs]
        mx, my, mf = statistics.mean(xs), statistics.mean(ys), statistics.mean(fs)
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        fslope = sum((x - mx) * (f - mf) for x, f in zip(xs, fs)) / sxx
        w(f"\nMemory per container (least-squares slope of the median VmRSS over {xs}):"
          f" **{slope:.1f} kB**, intercept {my - slope * mx:.0f} kB; descriptors per container"
          f" {fslope:.2f} (two listeners each).")
    c = raw.get("conns")
    if c:
        w(f"\nPer idle connection: {c['k']} TCP connections held open through one listener"
          f" (NAME:8080, relayed to the container's httpd), VmRSS {c['rss0']} -> {c['rss1']} kB:"
          f" **{(c['rss1'] - c['rss0']) * 1024 / c['k']:.0f} bytes** each; descriptors"
          f" {c['fds0']} -> {c['fds1']} ({(c['fds1'] - c['fds0']) / c['k']:.2f} each; the daemon"
          f" counted {c['daemon_conns']} connections).")
    datf = os.path.join(CFG["tmp"], "startup.dat")
    with open(datf, "w") as f:
        for d in dat:
            f.write(" ".join(f"{x:.3f}" for x in d) + "\n")
    for name, title, ylab, cols, extra in [
            ("startup", "loopholed start-up: all containers served", "ms after spawning the daemon",
             "1:2:3:4 with yerrorlines lw 2 pt 7 title 'loopholed (median, min-max)', '' using 1:8 with linespoints lw 2 pt 5 title 'docker ps (median)'", ""),
            ("rss", "loopholed VmRSS when all are served", "MiB",
             "1:5:6:7 with yerrorlines lw 2 pt 7 title 'VmRSS (median, min-max)'", "set yrange [0:*]\n")]:
        for term, ext in [("svg size 640,400 dynamic background rgb 'white'", "svg"),
                          ("pngcairo size 640,400", "png")]:
            f = os.path.join(out, f"scale-{name}.{ext}")
            g = (f"set terminal {term}\nset output '{f}'\nset title '{title}'\n"
                 f"set xlabel 'running containers (2 exposed ports each)'\nset ylabel '{ylab}'\n"
                 f"set grid\nset key top left\nset xrange [0:*]\nset yrange [0:*]\n{extra}"
                 f"plot '{datf}' using {cols}\n")
            subprocess.run(["gnuplot"], input=g, text=True, stderr=subprocess.DEVNULL)
        plots.append(name)
    w("")
    for name in plots:
        w(f"![{name}](scale-{name}.svg) ([PNG](scale-{name}.png))")

    # ls.
    ls = raw.get("ls")
    if ls:
        n = counts[-1]
        w(f"\n### `loophole ls` with {n} containers ({CFG['ls_runs']} runs each, round-robin)\n")
        w("| command | p50 (ms) | p99 (ms) | min-max | p50 vs docker ps |")
        w("|---|---:|---:|---:|---:|")
        base = statistics.median(ls["docker ps"])
        for k, v in ls.items():
            w(f"| `{k}` | {statistics.median(v):.1f} | {pct(v, 99):.1f} | {min(v):.1f}-{max(v):.1f} |"
              f" {statistics.median(v) / base:.2f} |")

    # Readiness.
    rd = raw.get("ready")
    if rd:
        ok = [r for r in rd if r["http_ms"] is not None]
        w(f"\n### Readiness ({len(rd)} containers one after another, {len(ok)} answered; polled every 1 ms)\n")
        w("After `docker run -d` returns: DNS A query at the daemon's port until it answers with"
          " an address; then a TCP connect to NAME:8080 (the proxy's listener accepting) and"
          " `GET / HTTP/1.0` until httpd answers through the proxy (direct forwarding: the proxy"
          " accepts, then dials the container). From the engine's start event: the event's"
          " timeNano against the wall clock when `docker run -d` returned, plus the intervals above."
          " p99 is nearest-rank (the maximum of 50).\n")
        w("| from | to | p50 (ms) | p99 (ms) | min-max |")
        w("|---|---|---:|---:|---:|")
        rows = [("`docker run -d` called", "it returns", [r["run_ms"] for r in rd]),
                ("`docker run -d` returned", "the daemon logs the name (its clock, 1 ms steps)",
                 [r["reg_ms"] for r in rd if r.get("reg_ms") is not None])]
        for k, lab in [("dns_ms", "name resolves"), ("accept_ms", "proxy accepts"),
                       ("http_ms", "HTTP answer through the proxy")]:
            rows.append(("`docker run -d` returned", lab, [r[k] for r in rd if r[k] is not None]))
            if k == "dns_ms":
                rows.append(("`docker run -d` returned", "the last query answered without an address was sent",
                             [r["dns_prev_ms"] for r in rd if r[k] is not None]))
        for k, lab in [("floor_dns_ms", "a query for a served name"),
                       ("floor_accept_ms", "connect to a served name's 8080"),
                       ("floor_http_ms", "connect + HTTP answer, served name")]:
            rows.append(("(floor, before each run)", lab, [r[k] for r in rd if r.get(k) is not None]))
        ev = [r for r in rd if r.get("event_to_ret_ms") is not None]
        rows.append(("start event", "`docker run -d` returns (baseline)", [r["event_to_ret_ms"] for r in ev]))
        rows.append(("start event", "the daemon logs the name", [r["event_to_reg_ms"] for r in ev
                                                                 if r.get("event_to_reg_ms") is not None]))
        for k, lab in [("dns_ms", "name resolves"), ("accept_ms", "proxy accepts"),
                       ("http_ms", "HTTP answer through the proxy")]:
            rows.append(("start event", lab, [r["event_to_ret_ms"] + r[k] for r in ev if r[k] is not None]))
        for a, b, v in rows:
            if v:
                w(f"| {a} | {b} | {statistics.median(v):.2f} | {pct(v, 99):.2f} | {min(v):.2f}-{max(v):.2f} |")
        nq = [r["queries"] for r in rd if r.get("queries")]
        if nq:
            w(f"\nDNS queries until the first address: median {statistics.median(nq):.0f}, max {max(nq)}"
              " (one query every 1 ms at most; a query that gets no address shows that the name was"
              " not there yet when it was sent).")

    # Idle.
    idle = raw.get("idle")
    if idle:
        hz_note = f"{os.sysconf('SC_CLK_TCK')} ticks/s"
        w(f"\n### Idle cost ({counts[0]} of our containers, no traffic)\n")
        w(f"- /proc over {idle['secs']:.0f} s: CPU (utime+stime) **{idle['cpu_s']:.2f} s**"
          f" ({100 * idle['cpu_s'] / idle['secs']:.3f}%, {hz_note}); voluntary context switches"
          f" {idle['vcsw']} ({idle['vcsw'] / idle['secs'] * 60:.1f} a minute), involuntary {idle['nvcsw']}; the engine reported"
          f" {idle.get('events', '?')} events (any container's) in that window.")
        calls = idle.get("calls", [])
        w(f"- strace over the next {idle['strace_secs']} s: {idle['epoll_calls']} epoll waits"
          f" returned, {idle['timer_wakes']} timed out (a timer), {idle['io_wakes']} with events"
          f" (I/O; the engine reported"
          f" {idle.get('strace_events', '?')} events in that window, other users' containers);"
          f" **{(idle['timer_wakes'] + idle['io_wakes']) / idle['strace_secs'] * 60:.1f} wake-ups a minute**."
          f" Timeouts passed to epoll_wait (ms: count): {idle['timeouts']}.")
        byfd = {}
        for x in calls:
            for fd in x.get("fds", []):
                byfd[fd] = byfd.get(fd, 0) + 1
        if byfd:
            kinds = idle.get("fd_kinds", {})
            w("- wake-ups by descriptor: " + ", ".join(
                f"fd {fd} ({kinds.get(str(fd), 'closed by the end: a request connection')}): {k}" for fd, k in sorted(byfd.items(), key=lambda i: -i[1])))
        tw = [x["t"] for x in calls if x["ret"] == 0]
        gaps = [round((b - a) * 1000) for a, b in zip(tw, tw[1:])]
        # Name the timer by the longest timeout a timed-out wait was given
        # (the first wait strace sees has partly elapsed already).
        tmos = [x["timeout"] for x in calls if x["ret"] == 0 and x["timeout"] is not None]
        if tmos:
            g = max(tmos)
            name = next((d for ms, d in KNOWN_TIMERS if abs(g - ms) < ms * 0.05), "no timer known to this script")
            w(f"- timed-out waits were given {tmos} ms (intervals between them {gaps} ms): {name}.")
        w("\n<details><summary>strace tail</summary>\n\n```")
        for line in idle.get("strace_tail", []):
            w(line)
        w("```\n</details>")

    # Targets.
    w("\n### Against the targets of issue 16\n")
    if rd:
        acc = [r["accept_ms"] for r in rd if r["accept_ms"] is not None]
        h = [r["http_ms"] for r in rd if r["http_ms"] is not None]
        for lab, v in [("proxy accepts", acc), ("HTTP answer", h)]:
            if v:
                p50, p99 = statistics.median(v), pct(v, 99)
                w(f"- ready ({lab}) after `docker run -d` returns: p50 {p50:.2f} ms (target <= 2:"
                  f" {'met' if p50 <= 2 else '**missed**'}), p99 {p99:.2f} ms (target <= 10:"
                  f" {'met' if p99 <= 10 else '**missed**'})")
    big = [r for r in st if r["n"] == counts[-1]]
    if big:
        m = statistics.median(r["ms"] for r in big)
        rss = statistics.median(r["rss_kb"] for r in big)
        w(f"- {counts[-1]} containers served {m:.0f} ms after start (target <= 2000 ms:"
          f" {'met' if m <= 2000 else '**missed**'})")
        w(f"- VmRSS at {counts[-1]} containers {rss / 1024:.1f} MiB (target < 30 MB:"
          f" {'met' if rss * 1024 < 30e6 else '**missed**'})")
    if idle:
        per_min = idle["timer_wakes"] / idle["strace_secs"] * 60
        w(f"- idle: {per_min:.1f} timer wake-ups a minute (target at most 1:"
          f" {'met' if per_min <= 1.0 else '**missed**'})")
    text = "\n".join(L) + "\n"
    with open(os.path.join(out, "scale.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    if sys.argv[1] == "report":
        report()
    else:
        main()
