#!/usr/bin/env python3
"""The other end of loophole's integration tests: small clients and checkers.

tests/integration/lib.sh and the test scripts call this program instead of
embedding Python; it needs nothing but the standard library. Every subcommand
has a deadline, so a test never hangs on it.

Exit statuses (the scripts test them):
  0   done, or the expected thing happened
  1   the check failed (tcp refused: it connected; udp: no echo; events: no
      such event or a bad line; json: not JSON)
  2   a connection or I/O error
  3   a deadline passed (no reply, no EOF in time); what came is printed
  64  bad usage
"""

import argparse
import json
import os
import socket
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

    u = sub.add_parser("udp", help="UDP clients").add_subparsers(
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
