#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Raw DNS packets for magicdns's tests, with nothing but the standard library.

  magicdns-peer.py send [--tcp] [--timeout S] HOST PORT HEX...
      send one message (hex) and print the reply as hex, or "timeout";
      over TCP several messages go in one write and every reply is
      printed in the order it came ("closed" when the server hangs up)
  magicdns-peer.py burst [--timeout S] [--window N] HOST PORT NAME COUNT
      send COUNT A queries for NAME from one socket, at most N (default:
      all) unanswered at a time, then print how many were answered
  magicdns-peer.py query NAME [TYPE]
      print a plain query (RD, no EDNS) as hex, for `send`
  magicdns-peer.py blackhole HOST PORT
      a UDP "server" that reads queries and never answers; prints
      "ready" when bound and one line per query it swallowed
  magicdns-peer.py echo HOST PORT
      a UDP "server" that prints each query as hex and answers it with
      itself turned into an empty NOERROR response (OPT record and all)
  magicdns-peer.py random HOST PORT COUNT SEED
      send COUNT random datagrams, some with a plausible header
  magicdns-peer.py truncating HOST PORT
      a UDP-only "server" (nothing on TCP) that answers every query with
      one A record, 192.0.2.99, and TC set; prints "ready", then one line
      per query
  magicdns-peer.py hold [--source ADDR] HOST PORT COUNT SECONDS
      open COUNT TCP connections (from ADDR), on each announce a message
      of 65535 bytes and then send one byte of it a second, for SECONDS;
      prints "ready" when all are open, then "closed N of COUNT" (how many
      the server closed) and "first-closed S" (after how many seconds the
      first of those it had kept open was closed, or "never")
  magicdns-peer.py flood [--source ADDR] HOST PORT PIPES HOLDS SECONDS NAME
      a TCP flood from one source for SECONDS: PIPES connections that each
      keep 32 queries for NAME in flight, then HOLDS that announce 65535
      bytes and send one a second; prints "answered N qps Q closed T
      of C" (T: connections the server closed before the end)
"""
import select
import random
import socket
import struct
import sys
import time

TYPES = {"A": 1, "NS": 2, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}


def query(name, qtype="A", qid=0x4242):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        if label:
            q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", TYPES[qtype], 1)


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def send(args):
    tcp = False
    timeout = 2.0
    while args and args[0].startswith("--"):
        if args[0] == "--tcp":
            tcp = True
            args = args[1:]
        elif args[0] == "--timeout":
            timeout = float(args[1])
            args = args[2:]
        else:
            raise SystemExit("unknown option " + args[0])
    host, port = args[0], int(args[1])
    msgs = [bytes.fromhex(m) for m in args[2:]]
    if tcp:
        s = socket.socket(family(host), socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((host, port))
        s.sendall(b"".join(struct.pack("!H", len(m)) + m for m in msgs))
        buf = b""
        for _ in msgs:
            try:
                while len(buf) < 2 or \
                        len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                    chunk = s.recv(65537)
                    if not chunk:
                        print("closed")
                        return
                    buf += chunk
            except socket.timeout:
                print("timeout")
                return
            except ConnectionResetError:
                print("closed")
                return
            n = struct.unpack("!H", buf[:2])[0]
            print(buf[2:2 + n].hex(), flush=True)
            buf = buf[2 + n:]
        return
    msg = msgs[0]
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.sendto(msg, (host, port))
    try:
        data, _ = s.recvfrom(65535)
    except socket.timeout:
        print("timeout")
        return
    print(data.hex())


def burst(args):
    timeout = 1.0
    window = None
    while args and args[0].startswith("--"):
        if args[0] == "--timeout":
            timeout = float(args[1])
        elif args[0] == "--window":
            window = int(args[1])
        else:
            raise SystemExit("unknown option " + args[0])
        args = args[2:]
    host, port, name, count = args[0], int(args[1]), args[2], int(args[3])
    window = window or count
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    got = set()
    sent = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while sent < count and sent - len(got) < window:
            s.sendto(query(name, "A", sent), (host, port))
            sent += 1
            deadline = time.monotonic() + timeout
        if len(got) == count:
            break
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            break
        if len(data) >= 2:
            got.add(struct.unpack("!H", data[:2])[0])
    print(len(got))


def blackhole(args):
    host, port = args[0], int(args[1])
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(65535)
        print("swallowed %d bytes from %s" % (len(data), peer[0]), flush=True)


def echo(args):
    host, port = args[0], int(args[1])
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(65535)
        print(data.hex(), flush=True)
        if len(data) >= 12:
            flags = struct.unpack("!H", data[2:4])[0] | 0x8080
            s.sendto(data[:2] + struct.pack("!H", flags) + data[4:], peer)


def rand(args):
    host, port, count, seed = args[0], int(args[1]), int(args[2]), args[3]
    r = random.Random(seed)
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    for i in range(count):
        n = r.choice([0, 1, 11, 12, 13, 17, 30, 64, 300, 600])
        b = bytes(r.getrandbits(8) for _ in range(n))
        if n >= 12 and r.random() < 0.7:
            # QR clear, one question: gets past the first checks
            b = b[:2] + bytes([b[2] & 0x7f, b[3]]) + b"\0\1" + b[6:]
        s.sendto(b, (host, port))
    print("sent %d" % count)


def truncating(args):
    host, port = args[0], int(args[1])
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((host, port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(65535)
        if len(data) < 12:
            continue
        # the question as asked, then one answer pointing at it
        end = 12
        while end < len(data) and data[end] != 0:
            end += 1 + data[end]
        question = data[12:end + 5]
        flags = 0x8000 | 0x0200 | (struct.unpack("!H", data[2:4])[0] & 0x0100)
        resp = data[:2] + struct.pack("!HHHHH", flags, 1, 1, 0, 0) + \
            question + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + \
            bytes([192, 0, 2, 99])
        s.sendto(resp, peer)
        print("answered %d bytes with TC" % len(resp), flush=True)


def hold(args):
    source = None
    if args and args[0] == "--source":
        source, args = args[1], args[2:]
    host, port, count, secs = args[0], int(args[1]), int(args[2]), \
        float(args[3])
    socks = []
    for _ in range(count):
        s = socket.socket(family(host), socket.SOCK_STREAM)
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        s.setblocking(False)
        socks.append(s)
    start = time.monotonic()
    alive = {}
    for s in socks:
        try:
            s.send(b"\xff\xff\x00")
            alive[s] = True
        except OSError:
            alive[s] = False
    print("ready", flush=True)
    # the ones the server turned away at once are gone by the first tick
    kept = None
    first = None
    deadline = start + secs
    next_tick = start + 1
    while time.monotonic() < deadline:
        live = [s for s in socks if alive[s]]
        r, _, _ = select.select(live, [], [], max(0, min(next_tick,
                                deadline) - time.monotonic()))
        for s in r:
            try:
                if s.recv(4096):
                    continue
            except OSError:
                pass
            alive[s] = False
            if kept is not None and s in kept and first is None:
                first = time.monotonic() - start
        if time.monotonic() >= next_tick:
            if kept is None:
                kept = set(s for s in socks if alive[s])
            for s in socks:
                if alive[s]:
                    try:
                        s.send(b"\x00")
                    except OSError:
                        alive[s] = False
                        if s in kept and first is None:
                            first = time.monotonic() - start
            next_tick += 1
    closed = sum(1 for s in socks if not alive[s])
    print("closed %d of %d" % (closed, count))
    print("first-closed %s" % ("never" if first is None else
                               "%.1f" % first), flush=True)
    for s in socks:
        s.close()


def flood(args):
    source = None
    if args and args[0] == "--source":
        source, args = args[1], args[2:]
    host, port = args[0], int(args[1])
    pipes, holds, secs, name = int(args[2]), int(args[3]), float(args[4]), \
        args[5]
    q = query(name)
    batch = (struct.pack("!H", len(q)) + q) * 32
    socks, kind, inbuf = [], {}, {}
    for i in range(pipes + holds):
        s = socket.socket(family(host), socket.SOCK_STREAM)
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        s.setblocking(False)
        socks.append(s)
        kind[s] = "pipe" if i < pipes else "hold"
        inbuf[s] = b""
    alive = set(socks)
    out = {}
    for s in socks:
        try:
            s.send(batch if kind[s] == "pipe" else b"\xff\xff\x00")
            out[s] = 32
        except OSError:
            alive.discard(s)
    answered = 0
    start = time.monotonic()
    end = start + secs
    next_tick = start + 1
    while time.monotonic() < end and alive:
        r, _, _ = select.select(list(alive), [], [],
                                max(0, min(next_tick, end) - time.monotonic()))
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                alive.discard(s)
                continue
            if kind[s] != "pipe":
                continue
            buf = inbuf[s] + data
            n = 0
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack(
                    "!H", buf[:2])[0]:
                buf = buf[2 + struct.unpack("!H", buf[:2])[0]:]
                n += 1
            inbuf[s] = buf
            answered += n
            out[s] -= n
            if out[s] == 0:
                try:
                    s.send(batch)
                    out[s] = 32
                except OSError:
                    alive.discard(s)
        if time.monotonic() >= next_tick:
            for s in list(alive):
                if kind[s] == "hold":
                    try:
                        s.send(b"\x00")
                    except OSError:
                        alive.discard(s)
            next_tick += 1
    took = time.monotonic() - start
    print("answered %d qps %.0f closed %d of %d" % (
        answered, answered / took, len(socks) - len(alive), len(socks)),
        flush=True)
    for s in socks:
        s.close()


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "send":
        send(args)
    elif cmd == "burst":
        burst(args)
    elif cmd == "query":
        print(query(args[0], args[1] if len(args) > 1 else "A").hex())
    elif cmd == "blackhole":
        blackhole(args)
    elif cmd == "echo":
        echo(args)
    elif cmd == "random":
        rand(args)
    elif cmd == "truncating":
        truncating(args)
    elif cmd == "hold":
        hold(args)
    elif cmd == "flood":
        flood(args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
