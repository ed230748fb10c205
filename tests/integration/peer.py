#!/usr/bin/env python3
"""The other end of loophole's integration tests: small clients and checkers.

tests/integration/lib.sh and the test scripts call this program instead of
embedding Python; it needs nothing but the standard library. Every subcommand
has a deadline, so a test never hangs on it.

Exit statuses (the scripts test them):
  0   done, or the expected thing happened
  1   the check failed (tcp refused: it connected; udp: no echo; events: no
      such event or a bad line; json: not JSON; attack dns-fuzz: a reply
      broke the rules, or the daemon stopped answering real queries)
  2   a connection or I/O error
  3   a deadline passed (no reply, no EOF in time); what came is printed
  64  bad usage
"""

import argparse
import json
import os
import random
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

EX_FAILED, EX_ERROR, EX_TIMEOUT, EX_USAGE = 1, 2, 3, 64
PROG = "peer.py"


class Failure(Exception):
    """Ends the program with a message and an exit status."""

    def __init__(self, status, message=None):
        super().__init__(message)
        self.status = status
        self.message = message


def out_write(data):
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def unescape(text):
    """Turns the \\r \\n \\t \\xNN escapes of a command-line argument into bytes."""
    return text.encode().decode("unicode_escape").encode("latin-1")


# ---- tcp ----------------------------------------------------------------------

TCP_MODES = {
    "refused": "exit 0 only when connect() is refused (within 2 s)",
    "connects": "exit 0 when connect() succeeds (within 2 s)",
    "send": "send DATA, print the reply up to its first newline or EOF",
    "banner": "send DATA (usually nothing), print what the server says first (one recv)",
    "halfclose": "send DATA, shut down writing, print everything up to EOF",
    "hold": "send DATA, print the first reply line, then 'ready', and wait for the"
            " peer to close (EOF or reset: 0)",
}


def recv_line(s):
    """Bytes up to the first newline (the whole chunk holding it) or EOF."""
    got = b""
    while b"\n" not in got:
        b = s.recv(65536)
        if not b:
            break
        got += b
    return got


def cmd_tcp(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((args.host, args.port))
    except ConnectionRefusedError:
        if args.mode == "refused":
            return 0
        raise Failure(EX_ERROR, "connect %s:%d: refused" % (args.host, args.port))
    except OSError as e:
        raise Failure(EX_ERROR, "connect %s:%d: %s" % (args.host, args.port, e))
    if args.mode == "refused":
        raise Failure(EX_FAILED, "connect %s:%d: accepted, expected a refusal"
                      % (args.host, args.port))
    if args.mode == "connects":
        return 0
    s.settimeout(args.timeout)
    data = unescape(args.data)
    try:
        if data:
            s.sendall(data)
        if args.mode == "send":
            out_write(recv_line(s))
        elif args.mode == "banner":
            out_write(s.recv(65536))
        elif args.mode == "halfclose":
            s.shutdown(socket.SHUT_WR)
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out_write(b)
        elif args.mode == "hold":
            out_write(recv_line(s) + b"ready\n")
            try:
                while s.recv(65536):
                    pass
            except ConnectionResetError:
                pass
    except socket.timeout:
        raise Failure(EX_TIMEOUT, None)
    except OSError as e:
        raise Failure(EX_ERROR, "%s %s:%d: %s" % (args.mode, args.host, args.port, e))
    return 0


# ---- udp ----------------------------------------------------------------------

def cmd_udp_echo(args):
    """Each MESSAGE from one socket; the reply printed; 3 tries of 1 s each."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        for m in args.messages:
            m = m.encode()
            for _ in range(3):
                s.sendto(m, (args.host, args.port))
                try:
                    r, _src = s.recvfrom(65536)
                except (socket.timeout, ConnectionRefusedError):
                    continue
                out_write(r.decode(errors="replace").encode() + b"\n")
                if r == m:
                    break
            else:
                raise Failure(EX_FAILED, "no echo of %r from %s:%d"
                              % (m[:40], args.host, args.port))
    except OSError as e:
        raise Failure(EX_ERROR, "udp %s:%d: %s" % (args.host, args.port, e))
    return 0


def cmd_udp_clients(args):
    """Several client sockets (source ports) interleaved: each datagram comes
    back to its sender only, from the address and port it was sent to."""
    host, port = args.host, args.port
    socks = []
    for _ in range(args.clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(1)
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    if len(set(ports)) != len(ports):
        raise Failure(EX_ERROR, "client sockets share a port: %s" % ports)
    try:
        for i in range(args.rounds):
            for n, s in enumerate(socks):
                msg = ("client%d-%d-" % (n, i)).encode() + b"x" * (i * 50)
                for _attempt in range(3):
                    s.sendto(msg, (host, port))
                    try:
                        r, src = s.recvfrom(65536)
                    except socket.timeout:
                        continue
                    if src != (host, port):
                        raise Failure(EX_FAILED, "reply from %s, expected %s:%d"
                                      % (src, host, port))
                    if r != msg:
                        raise Failure(EX_FAILED, "client %d (port %d) got %r, sent %r"
                                      % (n, ports[n], r[:40], msg[:40]))
                    break
                else:
                    raise Failure(EX_FAILED, "client %d (port %d): no reply to datagram %d"
                                  % (n, ports[n], i))
    except OSError as e:
        raise Failure(EX_ERROR, "udp %s:%d: %s" % (host, port, e))
    print("ok from ports", ports)
    return 0


# ---- unix ---------------------------------------------------------------------

def cmd_unix_send(args):
    """Sends the bytes, prints what comes back up to EOF; never closes first,
    so EOF means the server closed."""
    if args.file is not None:
        try:
            with open(args.file, "rb") as f:
                data = f.read()
        except OSError as e:
            raise Failure(EX_ERROR, "%s: %s" % (args.file, e))
    else:
        try:
            data = bytes.fromhex(args.hex)
        except ValueError as e:
            raise Failure(EX_USAGE, "--hex: %s" % e)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    got = b""
    try:
        s.connect(args.path)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            got += b
    except socket.timeout:
        out_write(got)
        raise Failure(EX_TIMEOUT, None)
    except OSError as e:
        out_write(got)
        raise Failure(EX_ERROR, "%s: %s" % (args.path, e))
    out_write(got)
    return 0


def cmd_unix_idle(args):
    """Opens COUNT connections (every other one with half a request), writes
    their number to READY, holds them until STOP exists (at most --hold s),
    then prints how many the server had closed."""
    socks = []
    give_up = time.time() + args.connect_timeout
    for i in range(args.count):
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(args.path)
                if i % 2:
                    s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
                break
            except BlockingIOError:
                # The listen backlog is full (unix sockets do not wait): the
                # server is still accepting, try again.
                s.close()
                if time.time() > give_up:
                    raise Failure(EX_FAILED, "connect %d: backlog still full after %g s"
                                  % (i, args.connect_timeout))
                time.sleep(0.01)
            except OSError as e:
                raise Failure(EX_ERROR, "connect %d: %s" % (i, e))
        socks.append(s)
    with open(args.ready, "w") as f:
        f.write("%d\n" % len(socks))
    deadline = time.time() + args.hold
    while not os.path.exists(args.stop) and time.time() < deadline:
        time.sleep(0.05)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(65536) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    print("held %d, closed by the daemon %d" % (len(socks), closed))
    return 0


# ---- events -------------------------------------------------------------------

def complete_lines(path, strict):
    """The newline-terminated lines of a /v1/events capture, and the rest."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise Failure(EX_ERROR, "%s: %s" % (path, e))
    try:
        text = raw.decode("utf-8", "strict" if strict else "replace")
    except UnicodeDecodeError as e:
        raise Failure(EX_FAILED, "%s: not UTF-8: %s" % (path, e))
    lines = text.split("\n")
    return lines[:-1], lines[-1]


def cmd_events_seen(args):
    """A complete line is {"type": TYPE, "container": {"container": NAME, ...}}."""
    lines, _rest = complete_lines(args.file, strict=False)
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue  # reported by `events check`
        if not isinstance(e, dict):
            continue
        c = e.get("container")
        if e.get("type") == args.type and isinstance(c, dict) and c.get("container") == args.name:
            return 0
    raise Failure(EX_FAILED, None)


def cmd_events_check(args):
    """Every line is a complete event: a known type and a container object."""
    lines, rest = complete_lines(args.file, strict=True)
    if rest != "":
        raise Failure(EX_FAILED, "%s: a partial last line: %r" % (args.file, rest[:200]))
    for n, line in enumerate(lines, 1):
        try:
            e = json.loads(line)
        except ValueError as err:
            raise Failure(EX_FAILED, "%s:%d: not JSON (%s): %r" % (args.file, n, err, line[:200]))
        if not isinstance(e, dict) or e.get("type") not in ("added", "changed", "removed"):
            raise Failure(EX_FAILED, "%s:%d: no known type: %r" % (args.file, n, line[:200]))
        c = e.get("container")
        if not isinstance(c, dict) or "name" not in c:
            raise Failure(EX_FAILED, "%s:%d: no container with a name: %r"
                          % (args.file, n, line[:200]))
    print("%d event lines" % len(lines))
    return 0


# ---- json, gen ----------------------------------------------------------------

def reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def cmd_json(args):
    """Each FILE holds exactly one JSON document (no NaN or Infinity)."""
    for path in args.files:
        try:
            with open(path, "rb") as f:
                json.loads(f.read().decode("utf-8"), parse_constant=reject_constant)
        except OSError as e:
            raise Failure(EX_ERROR, "%s: %s" % (path, e))
        except ValueError as e:  # also UnicodeDecodeError, JSONDecodeError
            raise Failure(EX_FAILED, "%s: not valid JSON: %s" % (path, e))
    return 0


def cmd_gen_big_header(args):
    """A GET /v1/status request with one X-Big header of SIZE bytes."""
    out_write(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * args.size + b"\r\n\r\n")
    return 0


def cmd_gen_deep_json(args):
    """DEPTH nested arrays wrapped in comments holding a quote: /*"*/[[...]]/*"*/."""
    out_write(b'/*"*/' + b"[" * args.depth + b"]" * args.depth + b'/*"*/')
    return 0


# ---- udp server, floods -------------------------------------------------------

def cmd_udp_echo_server(args):
    """One process answering every client: each datagram is sent back to its
    sender. Stops (exit 0) after --timeout seconds."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((args.bind, args.port))
    except OSError as e:
        raise Failure(EX_ERROR, "bind %s:%d: %s" % (args.bind, args.port, e))
    deadline = time.time() + args.timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            return 0
        s.settimeout(left)
        try:
            b, a = s.recvfrom(2048)
            s.sendto(b, a)
        except socket.timeout:
            return 0
        except OSError:
            continue  # e.g. an ICMP error from a client gone away


def cmd_flood_udp(args):
    """CLIENTS client sockets (each a new source port) send one datagram
    each, "flood N"; after every BATCH of them, a pause of PAUSE s and the
    batch's sockets closed."""
    dst = (args.host, args.port)
    deadline = time.time() + args.timeout
    socks = []
    try:
        for i in range(args.clients):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"flood %d" % i, dst)
            socks.append(s)
            if i % args.batch == args.batch - 1:
                time.sleep(args.pause)
                for t in socks:
                    t.close()
                socks = []
                if time.time() > deadline:
                    raise Failure(EX_TIMEOUT, "%d of %d clients sent in %g s"
                                  % (i + 1, args.clients, args.timeout))
    except OSError as e:
        raise Failure(EX_ERROR, "udp %s:%d: %s" % (args.host, args.port, e))
    for t in socks:
        t.close()
    return 0


def flood_connect(dst, timeout):
    """A connection, or None when it was reset (turned away) before connect()
    returned."""
    try:
        return socket.create_connection(dst, timeout=timeout)
    except ConnectionResetError:
        return None


def ping_pong(s):
    """Sends PING, True when +PONG comes back; False when the peer closed or
    reset it instead."""
    try:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    except (ConnectionResetError, BrokenPipeError):
        return False


def raise_nofile(n):
    """Raises the soft descriptor limit to at least N (the hard one too, as
    root), or as far as the hard limit allows."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft >= n:
            return
        if hard == resource.RLIM_INFINITY or hard >= n:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError) as e:
        raise Failure(EX_ERROR, "cannot raise the descriptor limit to %d: %s" % (n, e))


def cmd_flood_tcp_idle(args):
    """Opens COUNT connections one after another, each at once asked for a
    PONG (relayed) or seen closed by the proxy (turned away); then holds the
    relayed ones, silent, until the peer closes them (at most --idle-wait s
    for all). Prints "RELAYED TURNED-AWAY CLOSED-IDLE"."""
    raise_nofile(max(4096, args.count + 1024))
    dst = (args.host, args.port)
    relayed, away = [], 0
    give_up = time.time() + args.timeout
    try:
        for i in range(args.count):
            if time.time() > give_up:
                raise Failure(EX_TIMEOUT, "%d of %d connections made in %g s"
                              % (i, args.count, args.timeout))
            s = flood_connect(dst, 10)
            if s is None:
                away += 1
            elif ping_pong(s):
                relayed.append(s)
            else:
                away += 1
                s.close()
    except socket.timeout:
        raise Failure(EX_TIMEOUT, "connect or PONG: no answer in 10 s")
    except OSError as e:
        raise Failure(EX_ERROR, "tcp %s:%d: %s" % (args.host, args.port, e))
    # Silent from here on: the proxy's idle timeout must close every one.
    closed = 0
    deadline = time.time() + args.idle_wait
    for s in relayed:
        s.settimeout(max(0.1, deadline - time.time()))
        try:
            if s.recv(16) == b"":
                closed += 1
        except ConnectionResetError:
            closed += 1
        except socket.timeout:
            pass
        except OSError as e:
            raise Failure(EX_ERROR, "recv: %s" % e)
    print(len(relayed), away, closed)
    return 0


def cmd_flood_tcp_hold(args):
    """COUNT clients connect at once (all connections first, then a PING on
    each); prints how many got a PONG, holds those until STOP exists (at most
    --hold s)."""
    raise_nofile(max(4096, args.count + 1024))
    dst = (args.host, args.port)
    try:
        socks = [flood_connect(dst, 10) for _ in range(args.count)]
        held = []
        for s in socks:
            if s is None:
                continue
            if ping_pong(s):
                held.append(s)
            else:
                s.close()
    except socket.timeout:
        raise Failure(EX_TIMEOUT, "connect or PONG: no answer in 10 s")
    except OSError as e:
        raise Failure(EX_ERROR, "tcp %s:%d: %s" % (args.host, args.port, e))
    print(len(held), flush=True)
    deadline = time.time() + args.hold
    while not os.path.exists(args.stop) and time.time() < deadline:
        time.sleep(0.05)
    return 0


# ---- attackers ----------------------------------------------------------------

def ctl_script(mode):
    """The endless byte chunks of one way never to finish a request."""
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


CTL_MODES = ["slowloris", "garbage", "huge", "endless"]


def cmd_attack_control(args):
    """Keeps COUNT connections to the control SOCKET busy, reconnecting when
    the daemon closes one (at most one reconnect per PACE s; 0: at once),
    cycling through four ways never to finish a request: slowloris (a request
    line and headers one byte at a time), garbage (random bytes), huge
    (header lines of 1000 bytes), endless (Content-Length: 10000000, then a
    trickle of body). Writes TAG.ready once COUNT are open; stops when
    TAG.stop exists (or after --deadline s); prints "opened N, closed by the
    daemon M"."""
    sel = selectors.DefaultSelector()
    conns = {}
    tally = {"opened": 0, "closed": 0}

    def connect(i):
        # A full listen backlog refuses (EAGAIN on a unix socket): try later.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(args.path)
        except (BlockingIOError, InterruptedError, ConnectionRefusedError):
            s.close()
            return False
        tally["opened"] += 1
        conns[s] = ctl_script(CTL_MODES[i % len(CTL_MODES)])
        sel.register(s, selectors.EVENT_READ)
        return True

    deadline = time.time() + args.deadline
    i = 0
    try:
        while i < args.count and time.time() < deadline:
            if connect(i):
                i += 1
            else:
                time.sleep(0.01)
    except OSError as e:
        raise Failure(EX_ERROR, "%s: %s" % (args.path, e))
    with open(args.tag + ".ready", "w") as f:
        f.write("%d\n" % args.count)
    pending = 0
    last = 0.0
    while not os.path.exists(args.tag + ".stop") and time.time() < deadline:
        while pending and time.time() - last >= args.pace and connect(i):
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
                tally["closed"] += 1
                pending += 1
        for s, gen in list(conns.items()):
            try:
                s.send(next(gen))
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass  # seen as EOF or an error by the next select
    print("opened %d, closed by the daemon %d" % (tally["opened"], tally["closed"]))
    return 0


def dns_header(qid, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)


def dns_wire(name):
    return b"".join(bytes([len(la)]) + la for la in name.encode().split(b".") if la) + b"\0"


DNS_QT = struct.pack(">HH", 1, 1)
DNS_OPT = b"\x00" + struct.pack(">HHIH", 41, 4096, 0, 0)
DNS_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
              5: "REFUSED"}


def dns_query(qid, name):
    return dns_header(qid) + dns_wire(name) + DNS_QT


def dns_crafted(name, rnd):
    """Malformed queries, each a function of the id: the daemon must answer
    FORMERR or nothing ("random tail": anything but a wrong id)."""
    h, q, qt, opt = dns_header, dns_wire(name), DNS_QT, DNS_OPT
    return {
        "pointer to itself": lambda i: h(i) + b"\xc0\x0c" + qt,
        "pointer loop of two": lambda i: h(i) + b"\x01a\xc0\x0e\x01b\xc0\x0c" + qt,
        "pointer past the end": lambda i: h(i) + b"\xc0\xff" + qt,
        "pointer forward": lambda i: h(i) + b"\xc0\x12" + qt + b"\x01a\x00",
        "label cut short": lambda i: h(i) + b"\x05ab",
        "type cut short": lambda i: h(i) + q + b"\x00",
        "qdcount 3, one question": lambda i: h(i, qd=3) + q + qt,
        "qdcount 2, two questions": lambda i: h(i, qd=2) + q + qt + q + qt,
        "qdcount 0": lambda i: h(i, qd=0),
        "ancount 5, no records": lambda i: h(i, an=5) + q + qt,
        "arcount 1, OPT cut": lambda i: h(i, ar=1) + q + qt + opt[:5],
        "two OPT records": lambda i: h(i, ar=2) + q + qt + opt + opt,
        "label of 64": lambda i: h(i) + b"\x40" + b"a" * 64 + b"\x00" + qt,
        "label type 0x80": lambda i: h(i) + b"\x81a\x00" + qt,
        "name of 320 bytes": lambda i: h(i) + (b"\x3f" + b"a" * 63) * 5 + b"\x00" + qt,
        "random tail": lambda i: h(i) + bytes(rnd.randrange(256)
                                              for _ in range(rnd.randrange(1, 40))),
    }


def dns_junk_batch(name, rnd, kinds, qid, size=40):
    """SIZE junk packets after id QID: half malformed queries, a few
    responses, the rest random bytes. Returns ([(id, kind, packet)], last id)."""
    batch = []
    for _ in range(size):
        qid = qid % 60000 + 1
        r = rnd.random()
        if r < 0.5:
            kind = rnd.choice(sorted(kinds))
            pkt = kinds[kind](qid)
        elif r < 0.55:
            kind = "a response"
            pkt = dns_header(qid, flags=0x8180) + dns_wire(name) + DNS_QT
        else:
            kind = "random bytes"
            pkt = struct.pack(">H", qid) + os.urandom(rnd.randrange(0, 600))
        batch.append((qid, kind, pkt))
    return batch, qid


def cmd_attack_dns_tcp(args):
    """COUNT DNS-over-TCP connections to ADDR:PORT, a third each of slow (a
    2-byte length prefix and a real 100-byte query, one byte every 0.2 s),
    garbage (random bytes, one every 0.2 s) and stall (a prefix of 1000, 10
    bytes of it, then nothing); never reconnecting. Writes TAG.ready once all
    are open and TAG.cut when the daemon has closed every one; stops at
    TAG.stop (or after --deadline s); prints per kind how many were cut and
    when, how many stay open, how many slow ones were cut mid-message, and
    how many got an answer."""
    q = dns_header(0x1234) + b"\x3c" + b"s" * 60 + b"\x04loop\x04test\x00" + DNS_QT
    answered = early = 0
    sel = selectors.DefaultSelector()
    conns = {}
    try:
        for i in range(args.count):
            s = socket.create_connection((args.addr, args.port), timeout=3)
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
    except OSError as e:
        raise Failure(EX_ERROR, "connect %s:%d: %s" % (args.addr, args.port, e))
    start = time.time()
    with open(args.tag + ".ready", "w") as f:
        f.write("%d\n" % args.count)
    cut = {}
    deadline = start + args.deadline
    next_tick = start
    while not os.path.exists(args.tag + ".stop") and time.time() < deadline:
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
            kind = conns[s][0]
            if kind == "slow" and conns[s][2] < len(conns[s][1]):
                early += 1
            cut.setdefault(kind, []).append(time.time() - start)
            sel.unregister(s)
            s.close()
            del conns[s]
            if not conns:
                with open(args.tag + ".cut", "w") as f:
                    f.write("%d\n" % args.count)
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
    return 0


def cmd_attack_dns_fuzz(args):
    """Over UDP, batches of 40 junk packets (malformed queries, responses,
    random bytes) to ADDR:PORT, each batch fenced by a real query for NAME
    that must come back with IP; over TCP, one connection per malformed
    query, followed by the same real query. A malformed query must be
    answered FORMERR or not at all (a random tail after a good header may be
    anything but a wrong id), a response never, and every reply carries the
    query's id. Prints the outcomes per kind; exit 1 with BAD lines on a
    violation (or a FAIL line when a fence goes unanswered for 3 s); exit 3
    past --deadline s."""
    name, want_ip = args.name, args.ip
    rnd = random.Random(args.seed)
    kinds = dns_crafted(name, rnd)
    bad = []
    seen = {}
    give_up = time.time() + args.deadline

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
        rc = DNS_RCODES.get(flags & 0xf, str(flags & 0xf))
        note(kind, rc)
        if kind in kinds and kind != "random tail" and rc != "FORMERR":
            bad.append("%s: answered %s, not FORMERR" % (kind, rc))

    def real_ok(data, qid):
        # The A record's address is the last 4 bytes of a one-answer reply.
        return (len(data) >= 16 and struct.unpack(">H", data[:2])[0] == qid
                and struct.unpack(">H", data[6:8])[0] == 1
                and socket.inet_ntoa(data[-4:]) == want_ip)

    def past_deadline(what):
        if time.time() > give_up:
            raise Failure(EX_TIMEOUT, "%s: past the deadline of %g s" % (what, args.deadline))

    try:
        # ---- UDP: batches of junk, each fenced by a real query ----
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.connect((args.addr, args.port))
        sent = 0
        qid = 1
        fences = 0
        while sent < args.n_udp:
            past_deadline("udp")
            junk, qid = dns_junk_batch(name, rnd, kinds, qid)
            batch = {}
            for jid, kind, pkt in junk:
                batch[jid] = kind
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
                u.send(dns_query(fence, name))
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
                            if kind == "a response":
                                bad.append("answered a response (id %d)" % rid)
                            check_reply(kind, rid, data)
                        elif rid < 60001:
                            bad.append("a reply with an unknown id %d" % rid)
                except socket.timeout:
                    pass
            if not got:
                print("FAIL: no answer to a real query after %d junk UDP packets" % sent)
                return EX_FAILED
            for kind in batch.values():
                note(kind, "dropped")
        # ---- TCP: one connection per message, fenced by a real query ----
        tcp_closed = 0
        fence = dns_query(60000, name)
        for n in range(args.n_tcp):
            past_deadline("tcp")
            kind = rnd.choice(sorted(kinds))
            pkt = kinds[kind](n + 1)
            s = socket.create_connection((args.addr, args.port), timeout=3)
            s.sendall(struct.pack(">H", len(pkt)) + pkt + struct.pack(">H", len(fence)) + fence)
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
    except OSError as e:
        raise Failure(EX_ERROR, "%s:%d: %s" % (args.addr, args.port, e))
    for k in sorted(seen):
        print("%s: %s" % (k, ", ".join("%s %d" % kv for kv in sorted(seen[k].items()))))
    print("udp %d packets, %d fences; tcp %d messages, %d closed by the daemon"
          % (sent, fences, args.n_tcp, tcp_closed))
    for b in bad[:20]:
        print("BAD: " + b)
    return EX_FAILED if bad else 0


def cmd_attack_no_read(args):
    """COUNT connections to ADDR:PORT that ask for PATH (HTTP/1.0) with a
    small receive buffer and never read; writes TAG.ready once all have sent
    their request; they close when TAG.stop appears (or after --deadline s)."""
    conns = []
    try:
        for _ in range(args.count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(3)
            s.connect((args.addr, args.port))
            s.sendall(b"GET " + args.url_path.encode() + b" HTTP/1.0\r\n\r\n")
            conns.append(s)
    except OSError as e:
        raise Failure(EX_ERROR, "%s:%d: %s" % (args.addr, args.port, e))
    with open(args.tag + ".ready", "w") as f:
        f.write("%d\n" % args.count)
    deadline = time.time() + args.deadline
    while not os.path.exists(args.tag + ".stop") and time.time() < deadline:
        time.sleep(0.05)
    for s in conns:
        s.close()
    return 0


# ---- self-test ----------------------------------------------------------------

def cmd_self_test(_args):
    """Runs each subcommand (as a child process, like the scripts do) against
    small servers on 127.0.0.1 and a unix socket."""
    me = [sys.executable, os.path.abspath(__file__)]
    failures = []

    def run(argv, want_status, want_out=None):
        p = subprocess.run(me + argv, capture_output=True, timeout=20)
        ok = p.returncode == want_status and (want_out is None or p.stdout == want_out)
        if not ok:
            failures.append("%s: status %d (want %d), out %r, err %r"
                            % (" ".join(argv), p.returncode, want_status, p.stdout[:200],
                               p.stderr[-300:]))
        return p

    def guarded(handler, c):
        try:
            handler(c)
        except OSError:
            pass  # the client under test went away first

    def serve(listener, handler):
        def loop():
            while True:
                try:
                    c, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=guarded, args=(handler, c), daemon=True).start()
        threading.Thread(target=loop, daemon=True).start()

    def tcp_server(handler):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(16)
        serve(ls, handler)
        return str(ls.getsockname()[1])

    def echo_line(c):
        with c:
            c.sendall(recv_line(c))

    def banner_count(c):
        with c:
            c.sendall(b"220 hi\n")
            n = 0
            while True:
                b = c.recv(65536)
                if not b:
                    break
                n += len(b)
            c.sendall(b"%d\n" % n)

    def silent(c):
        time.sleep(3)
        c.close()

    def reply_close(c):
        with c:
            recv_line(c)
            c.sendall(b"+PONG\r\n")
            time.sleep(0.2)

    echo, banner = tcp_server(echo_line), tcp_server(banner_count)
    quiet, closer = tcp_server(silent), tcp_server(reply_close)
    unbound = socket.socket()
    unbound.bind(("127.0.0.1", 0))  # bound, never listening: connect is refused
    closed_port = str(unbound.getsockname()[1])

    run(["tcp", "connects", "127.0.0.1", echo], 0)
    run(["tcp", "refused", "127.0.0.1", closed_port], 0)
    run(["tcp", "refused", "127.0.0.1", echo], EX_FAILED)
    run(["tcp", "send", "127.0.0.1", closed_port, "--data=x"], EX_ERROR)
    run(["tcp", "send", "127.0.0.1", echo, "--data=PING\\r\\n"], 0, b"PING\r\n")
    run(["tcp", "banner", "127.0.0.1", banner, "--timeout=3"], 0, b"220 hi\n")
    run(["tcp", "halfclose", "127.0.0.1", banner, "--data=hello\\nworld\\n"], 0,
        b"220 hi\n12\n")
    run(["tcp", "send", "127.0.0.1", quiet, "--data=x", "--timeout=0.3"], EX_TIMEOUT, b"")
    run(["tcp", "hold", "127.0.0.1", closer, "--data=PING\\r\\n"], 0, b"+PONG\r\nready\n")
    run(["tcp", "nonsense", "127.0.0.1", echo], EX_USAGE)

    us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    us.bind(("127.0.0.1", 0))

    def udp_echo_loop():
        while True:
            try:
                d, a = us.recvfrom(65536)
                us.sendto(d, a)
            except OSError:
                return
    threading.Thread(target=udp_echo_loop, daemon=True).start()
    uport = str(us.getsockname()[1])
    run(["udp", "echo", "127.0.0.1", uport, "a", "bc"], 0, b"a\nbc\n")
    run(["udp", "clients", "127.0.0.1", uport, "--rounds=3"], 0)
    run(["udp", "echo", "127.0.0.1", closed_port, "x"], EX_FAILED)
    run(["flood", "udp", "127.0.0.1", uport, "--clients=30", "--batch=10", "--pause=0.01"], 0)
    free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    free.bind(("127.0.0.1", 0))
    eport = str(free.getsockname()[1])
    free.close()
    server = subprocess.Popen(me + ["udp", "echo-server", "--bind=127.0.0.1", "--port", eport,
                                    "--timeout=2"])
    run(["udp", "echo", "127.0.0.1", eport, "one", "two"], 0, b"one\ntwo\n")
    if server.wait(timeout=10) != 0:
        failures.append("udp echo-server: status %d at its deadline" % server.returncode)

    def pong_server(relay):
        """PONGs the first RELAY connections and closes them 0.3 s later;
        closes the others at once (turned away)."""
        seen = []

        def handle(c):
            seen.append(c)
            with c:
                if len(seen) > relay:
                    return
                recv_line(c)
                c.sendall(b"+PONG\r\n")
                time.sleep(0.3)
        return tcp_server(handle)

    run(["flood", "tcp-idle", "127.0.0.1", pong_server(2), "--count=3", "--idle-wait=3"], 0,
        b"2 1 2\n")
    run(["flood", "tcp-hold", "127.0.0.1", pong_server(2), "--count=3", "--stop=/nonexistent",
         "--hold=0.2"], 0, b"2\n")

    # The DNS generators: every malformed kind carries the id; a batch is
    # SIZE packets with the ids after QID, and a seed repeats its kinds.
    kinds = dns_crafted("a.test", random.Random(1))
    if len(kinds) != 16 or any(k(7)[:2] != b"\x00\x07" for k in kinds.values()):
        failures.append("dns_crafted: %d kinds, or a packet without its id" % len(kinds))
    b1, last = dns_junk_batch("a.test", random.Random(5), kinds, 59990)
    b2, _ = dns_junk_batch("a.test", random.Random(5), kinds, 59990)
    ids = [i for i, _k, _p in b1]
    if (len(b1) != 40 or last != ids[-1] or ids[:11] != list(range(59991, 60001)) + [1]
            or any(p[:2] != struct.pack(">H", i) for i, _k, p in b1)
            or [k for _i, k, _p in b1] != [k for _i, k, _p in b2]):
        failures.append("dns_junk_batch: ids %s" % ids[:12])
    if dns_query(9, "a.test") != dns_header(9) + b"\x01a\x04test\x00" + DNS_QT:
        failures.append("dns_query: %r" % dns_query(9, "a.test"))

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.sock")
        ux = socket.socket(socket.AF_UNIX)
        ux.bind(path)
        ux.listen(64)

        def http400(c):
            with c:
                c.recv(65536)
                c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        serve(ux, http400)
        run(["unix", "send", path, "--hex", "474554200d0a0d0a"], 0,
            b"HTTP/1.1 400 Bad Request\r\n\r\n")
        req = os.path.join(tmp, "req")
        with open(req, "wb") as f:
            f.write(b"GET / HTTP/1.1\r\n\r\n")
        run(["unix", "send", path, "--file", req], 0, b"HTTP/1.1 400 Bad Request\r\n\r\n")
        run(["unix", "send", os.path.join(tmp, "none.sock"), "--hex", "00"], EX_ERROR)
        run(["unix", "send", path, "--hex", "zz"], EX_USAGE)
        # Closes the connections that sent something, keeps the silent ones.
        ipath = os.path.join(tmp, "idle.sock")
        ix = socket.socket(socket.AF_UNIX)
        ix.bind(ipath)
        ix.listen(64)

        def close_talkers(c):
            if c.recv(65536):
                c.close()
        serve(ix, close_talkers)
        ready = os.path.join(tmp, "ready")
        run(["unix", "idle", ipath, "--count=6", "--ready", ready, "--stop", ready + ".none",
             "--hold=0.5"], 0, b"held 6, closed by the daemon 3\n")
        tag = os.path.join(tmp, "ctl")
        p = run(["attack", "control", ipath, "4", tag, "0", "--deadline=0.5"], 0)
        if not (p.stdout.startswith(b"opened ") and b", closed by the daemon " in p.stdout
                and os.path.exists(tag + ".ready")):
            failures.append("attack control: %r, no %s.ready?" % (p.stdout, tag))
        tag = os.path.join(tmp, "dnstcp")
        run(["attack", "dns-tcp", "127.0.0.1", quiet, "3", tag, "--deadline=0.5"], 0,
            b"still open 3; slow cut mid-message 0; answered 0\n")
        tag = os.path.join(tmp, "noread")
        run(["attack", "no-read", "127.0.0.1", quiet, "2", "/big", tag, "--deadline=0.3"], 0)
        with open(tag + ".ready") as f:
            if f.read() != "2\n":
                failures.append("attack no-read: no %s.ready with 2" % tag)

        ev = os.path.join(tmp, "events")
        with open(ev, "w") as f:
            f.write('{"type":"added","container":{"container":"a","name":"a.t"}}\n'
                    '{"type":"removed","container":{"container":"b","name":"b.t"}}\n')
        run(["events", "seen", ev, "added", "a"], 0)
        run(["events", "seen", ev, "added", "b"], EX_FAILED)
        run(["events", "check", ev], 0, b"2 event lines\n")
        with open(ev, "a") as f:
            f.write('{"type":"added"')
        run(["events", "check", ev], EX_FAILED)

        good, bad = os.path.join(tmp, "good.json"), os.path.join(tmp, "bad.json")
        with open(good, "w") as f:
            f.write('{"a": [1, 2.5, "x", null]}\n')
        with open(bad, "w") as f:
            f.write('{"a": NaN}')
        run(["json", good], 0)
        run(["json", good, bad], EX_FAILED)

    run(["gen", "big-header", "--size=3"], 0,
        b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: aaa\r\n\r\n")
    run(["gen", "deep-json", "--depth=2"], 0, b'/*"*/[[]]/*"*/')

    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    if failures:
        return EX_FAILED
    print("peer.py self-test: all checks passed")
    return 0


# ---- command line -------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, "%s: error: %s\n" % (self.prog, message))


def positive(kind):
    def conv(text):
        v = kind(text)
        if v <= 0:
            raise argparse.ArgumentTypeError("must be > 0: %r" % text)
        return v
    conv.__name__ = kind.__name__
    return conv


def port(text):
    v = int(text)
    if not 0 < v < 65536:
        raise argparse.ArgumentTypeError("not a port: %r" % text)
    return v


def build_parser():
    p = Parser(prog=PROG, description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    modes = "\n".join("  %-10s %s" % kv for kv in TCP_MODES.items())
    t = sub.add_parser("tcp", help="a TCP client (lib.sh's lh_tcp)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="A TCP client with a deadline.\n\nmodes:\n" + modes +
                       "\n\nexit 3 when the deadline passes first (what came is printed).")
    t.add_argument("mode", choices=TCP_MODES, metavar="MODE", help=", ".join(TCP_MODES))
    t.add_argument("host")
    t.add_argument("port", type=port)
    t.add_argument("--data", default="", help="bytes to send; \\r \\n \\xNN escapes")
    t.add_argument("--timeout", type=positive(float), default=5.0, metavar="SECONDS",
                   help="deadline of each read after connecting (default 5)")
    t.set_defaults(func=cmd_tcp)

    u = sub.add_parser("udp", help="UDP clients, an echo server").add_subparsers(
        dest="what", metavar="WHAT", parser_class=Parser)
    u.required = True
    e = u.add_parser("echo", help="each MESSAGE must come back (lib.sh's udp_echo)",
                     description=cmd_udp_echo.__doc__)
    e.add_argument("host")
    e.add_argument("port", type=port)
    e.add_argument("messages", nargs="+", metavar="MESSAGE")
    e.set_defaults(func=cmd_udp_echo)
    c = u.add_parser("clients", help="interleaved clients on several source ports",
                     description=cmd_udp_clients.__doc__)
    c.add_argument("host")
    c.add_argument("port", type=port)
    c.add_argument("--clients", type=positive(int), default=2)
    c.add_argument("--rounds", type=positive(int), default=20,
                   help="datagrams per client, the i-th one 50*i bytes longer")
    c.set_defaults(func=cmd_udp_clients)

    e = u.add_parser("echo-server", help="one process echoing every client (in a container)",
                     description=cmd_udp_echo_server.__doc__)
    e.add_argument("--port", type=port, required=True)
    e.add_argument("--bind", default="0.0.0.0", metavar="ADDRESS")
    e.add_argument("--timeout", type=positive(float), default=600.0, metavar="SECONDS",
                   help="stop after this long (default 600)")
    e.set_defaults(func=cmd_udp_echo_server)

    fl = sub.add_parser("flood", help="many clients at a proxied port").add_subparsers(
        dest="what", metavar="WHAT", parser_class=Parser)
    fl.required = True
    f = fl.add_parser("udp", help="many UDP client addresses, one datagram each",
                      description=cmd_flood_udp.__doc__ + " Exit 3 past --timeout s.")
    f.add_argument("host")
    f.add_argument("port", type=port)
    f.add_argument("--clients", type=positive(int), default=2000)
    f.add_argument("--batch", type=positive(int), default=100)
    f.add_argument("--pause", type=positive(float), default=0.1, metavar="SECONDS")
    f.add_argument("--timeout", type=positive(float), default=30.0, metavar="SECONDS")
    f.set_defaults(func=cmd_flood_udp)
    f = fl.add_parser("tcp-idle", help="PING many TCP connections, wait for the idle closes",
                      description=cmd_flood_tcp_idle.__doc__ + " Each connect and PONG waits"
                      " at most 10 s, all the connects --timeout s (else exit 3).")
    f.add_argument("host")
    f.add_argument("port", type=port)
    f.add_argument("--count", type=positive(int), default=1000)
    f.add_argument("--idle-wait", type=positive(float), default=20.0, metavar="SECONDS")
    f.add_argument("--timeout", type=positive(float), default=120.0, metavar="SECONDS")
    f.set_defaults(func=cmd_flood_tcp_idle)
    f = fl.add_parser("tcp-hold", help="many TCP clients at once, held until a file exists",
                      description=cmd_flood_tcp_hold.__doc__ + " Each connect and PONG waits"
                      " at most 10 s (else exit 3).")
    f.add_argument("host")
    f.add_argument("port", type=port)
    f.add_argument("--count", type=positive(int), default=300)
    f.add_argument("--stop", required=True, metavar="FILE")
    f.add_argument("--hold", type=positive(float), default=60.0, metavar="SECONDS")
    f.set_defaults(func=cmd_flood_tcp_hold)

    at = sub.add_parser("attack", help="hostile clients of the daemon").add_subparsers(
        dest="what", metavar="WHAT", parser_class=Parser)
    at.required = True
    a = at.add_parser("control", help="slowloris, garbage, huge, endless on the control socket",
                      description=cmd_attack_control.__doc__)
    a.add_argument("path", metavar="SOCKET")
    a.add_argument("count", type=positive(int), metavar="COUNT")
    a.add_argument("tag", metavar="TAG")
    a.add_argument("pace", type=float, metavar="PACE")
    a.add_argument("--deadline", type=positive(float), default=60.0, metavar="SECONDS")
    a.set_defaults(func=cmd_attack_control)
    a = at.add_parser("dns-tcp", help="trickled, garbage and stalled DNS-over-TCP clients",
                      description=cmd_attack_dns_tcp.__doc__)
    a.add_argument("addr", metavar="ADDR")
    a.add_argument("port", type=port)
    a.add_argument("count", type=positive(int), metavar="COUNT")
    a.add_argument("tag", metavar="TAG")
    a.add_argument("--deadline", type=positive(float), default=60.0, metavar="SECONDS")
    a.set_defaults(func=cmd_attack_dns_tcp)
    a = at.add_parser("dns-fuzz", help="random and malformed DNS packets, UDP and TCP",
                      description=cmd_attack_dns_fuzz.__doc__)
    a.add_argument("addr", metavar="ADDR")
    a.add_argument("port", type=port)
    a.add_argument("name", metavar="NAME")
    a.add_argument("ip", metavar="IP")
    a.add_argument("seed", type=int, metavar="SEED")
    a.add_argument("n_udp", type=int, metavar="N-UDP")
    a.add_argument("n_tcp", type=int, metavar="N-TCP")
    a.add_argument("--deadline", type=positive(float), default=150.0, metavar="SECONDS")
    a.set_defaults(func=cmd_attack_dns_fuzz)
    a = at.add_parser("no-read", help="HTTP clients that never read",
                      description=cmd_attack_no_read.__doc__)
    a.add_argument("addr", metavar="ADDR")
    a.add_argument("port", type=port)
    a.add_argument("count", type=positive(int), metavar="COUNT")
    a.add_argument("url_path", metavar="PATH")
    a.add_argument("tag", metavar="TAG")
    a.add_argument("--deadline", type=positive(float), default=60.0, metavar="SECONDS")
    a.set_defaults(func=cmd_attack_no_read)

    x = sub.add_parser("unix", help="unix-socket clients").add_subparsers(
        dest="what", metavar="WHAT", parser_class=Parser)
    x.required = True
    s = x.add_parser("send", help="send bytes, print the answer up to EOF (lib.sh's ctl_raw)",
                     description=cmd_unix_send.__doc__)
    s.add_argument("path", metavar="SOCKET")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--hex", help="the bytes, in hex")
    g.add_argument("--file", help="a file holding the bytes")
    s.add_argument("--timeout", type=positive(float), default=5.0, metavar="SECONDS",
                   help="deadline for EOF (default 5)")
    s.set_defaults(func=cmd_unix_send)
    i = x.add_parser("idle", help="hold many idle connections",
                     description=cmd_unix_idle.__doc__)
    i.add_argument("path", metavar="SOCKET")
    i.add_argument("--count", type=positive(int), default=500)
    i.add_argument("--ready", required=True, metavar="FILE")
    i.add_argument("--stop", required=True, metavar="FILE")
    i.add_argument("--hold", type=positive(float), default=60.0, metavar="SECONDS")
    i.add_argument("--connect-timeout", type=positive(float), default=20.0, metavar="SECONDS")
    i.set_defaults(func=cmd_unix_idle)

    v = sub.add_parser("events", help="read a /v1/events capture").add_subparsers(
        dest="what", metavar="WHAT", parser_class=Parser)
    v.required = True
    k = v.add_parser("seen", help="exit 0 when the event is there",
                     description=cmd_events_seen.__doc__)
    k.add_argument("file")
    k.add_argument("type", metavar="TYPE")
    k.add_argument("name", metavar="CONTAINER-NAME")
    k.set_defaults(func=cmd_events_seen)
    k = v.add_parser("check", help="every line is a valid event",
                     description=cmd_events_check.__doc__)
    k.add_argument("file")
    k.set_defaults(func=cmd_events_check)

    j = sub.add_parser("json", help="files hold valid JSON", description=cmd_json.__doc__)
    j.add_argument("files", nargs="+", metavar="FILE")
    j.set_defaults(func=cmd_json)

    gen = sub.add_parser("gen", help="print hostile inputs").add_subparsers(
        dest="what", metavar="WHAT", parser_class=Parser)
    gen.required = True
    b = gen.add_parser("big-header", help="an HTTP request with a huge header",
                       description=cmd_gen_big_header.__doc__)
    b.add_argument("--size", type=positive(int), default=20480)
    b.set_defaults(func=cmd_gen_big_header)
    d = gen.add_parser("deep-json", help="comment-wrapped, deeply nested arrays",
                       description=cmd_gen_deep_json.__doc__)
    d.add_argument("--depth", type=positive(int), default=400000)
    d.set_defaults(func=cmd_gen_deep_json)

    st = sub.add_parser("self-test", help="check this program against local servers")
    st.set_defaults(func=cmd_self_test)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Failure as f:
        try:
            sys.stdout.flush()
        except OSError:
            pass
        if f.message:
            print("%s %s: %s" % (PROG, args.command, f.message), file=sys.stderr)
        return f.status
    except BrokenPipeError:
        # The reader went away (e.g. `| head -n1`): not this program's failure.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
