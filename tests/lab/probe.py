#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Raw UDP and TCP probes for meshkit's NAT lab (no STUN, no classifier).

  probe.py echo [--bind IP:PORT]... [--tcp IP:PORT]... [--pidfile F] [--lifetime S]
      A UDP echo server on every --bind address: it answers each datagram, from the socket that got it,
      with the source address it saw ("ip:port" or "[v6]:port"). A datagram that begins with "all" is
      answered from every bound socket of the same family as well, which is how a client tests which
      remote addresses and ports its NAT lets in. Each --tcp address accepts connections and writes the
      peer's "ip:port" and a newline. With --pidfile the server goes into the background once every
      socket is bound (so it is ready when the command returns) and writes its pid there; --lifetime
      ends it after S seconds.
  probe.py map [--bind IP] [--from-port P] [--timeout S] DEST...
      From one UDP socket, send to every DEST and print "DEST MAPPED" for each one that answers (MAPPED
      is the address the echo server saw), "DEST unreachable" for an ICMP error. Exit 0 if all answered,
      3 otherwise.
  probe.py filter [--bind IP] [--from-port P] [--timeout S] [--grace S] DEST
      From one UDP socket, send "all" to DEST and print the source address of every datagram that comes
      back, in arrival order: which of the server's sockets the NAT admitted. It stops --grace seconds
      after the first answer, or at --timeout if none comes. Exit 0 if anything came, 3 otherwise.
  probe.py hairpin [--bind IP] [--from-port P] [--timeout S] DEST
      Learn one UDP socket's mapping from the echo server DEST, send to that mapping from a second,
      new socket, then learn the second socket's mapping from DEST too. Print "MAPPED SENDER RESULT":
      the first socket's mapping, the second's ("none" if DEST did not answer it), and the source
      address of the datagram that came back to the first socket, "unreachable" if an ICMP error came
      back to the second instead, or "none". A NAT that hairpins as RFC 4787 asks makes RESULT equal
      SENDER. Exit 0 if the datagram came back, 3 otherwise (without output if DEST did not answer
      the first socket).
  probe.py tcp [--timeout S] DEST
      Connect, print what the server says (the mapped "ip:port"). Exit 0, or 3 on timeout or refusal.

Exit status 2 for usage errors, 3 for a system error (such as a port in use). The clients send anywhere but to loopback only from inside a named
network namespace (ip netns): they are meant to run in the lab, through `lab.sh exec HOST`, never to
leak a probe through the host's default route.
"""

import argparse
import errno
import ipaddress
import os
import select
import socket
import sys
import time

RESEND = 0.25
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)


def parse_addr(s):
    """'198.18.0.10:3478' or '[2001:db8::10]:3478' -> (family, ip, port)."""
    try:
        if s.startswith("["):
            host, sep, port = s[1:].partition("]:")
        else:
            host, sep, port = s.rpartition(":")
        ip = ipaddress.ip_address(host)
        port = int(port)
        if not sep or not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError("bad address (want ip:port or [ip6]:port): %s" % s)
    fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return fam, str(ip), port


def parse_ip(s):
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        raise argparse.ArgumentTypeError("bad address: %s" % s)


def fmt(ip, port):
    ip = str(ipaddress.ip_address(ip))
    return "[%s]:%d" % (ip, port) if ":" in ip else "%s:%d" % (ip, port)


def key(sa):
    """A comparable (ip, port) from a socket address tuple."""
    return str(ipaddress.ip_address(sa[0])), sa[1]


def client_socket(fam, bind, port):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    else:
        s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    s.bind((bind or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), port))
    return s


def drain_errors(s):
    """ICMP errors queued on the socket, as the destinations they were about."""
    out = []
    while True:
        try:
            _, _, _, addr = s.recvmsg(512, 512, MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return out
        if addr:
            out.append(key(addr))


ICMP_ERRNOS = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
               errno.EACCES)


def send(s, data, dest):
    """sendto. A pending ICMP error of an earlier datagram fails the call without sending (the error
    stays in the error queue for receive()), so try again."""
    for _ in range(8):
        try:
            s.sendto(data, dest)
            return
        except OSError as e:
            if e.errno not in ICMP_ERRNOS:
                raise


def receive(s):
    """Yield (source, data) for datagrams ready now, and ("err", dest) for ICMP errors."""
    for d in drain_errors(s):
        yield "err", d
    while True:
        try:
            data, src = s.recvfrom(2048, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            if e.errno in ICMP_ERRNOS:
                for d in drain_errors(s):
                    yield "err", d
                continue
            raise
        yield key(src), data


def guard(dests):
    """Only loopback, unless this process runs in a named network namespace (ip netns, /run/netns)."""
    if all(ipaddress.ip_address(ip).is_loopback for _, ip, _ in dests):
        return
    me = os.stat("/proc/self/ns/net")
    try:
        names = os.listdir("/run/netns")
    except OSError:
        names = []
    for n in names:
        try:
            st = os.stat(os.path.join("/run/netns", n))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino):
            return
    usage_error("not in a lab namespace: run me through `lab.sh exec HOST`")


def same_family(dests):
    fams = {d[0] for d in dests}
    if len(fams) != 1:
        usage_error("all destinations must be of one address family")
    return fams.pop()


def cmd_map(a):
    dests = a.dest
    fam = same_family(dests)
    s = client_socket(fam, a.bind, a.from_port)
    want = {(ip, port): None for _, ip, port in dests}
    unreach = set()
    deadline = time.monotonic() + a.timeout
    next_send = 0.0
    while True:
        open_ = [d for d in want if want[d] is None and d not in unreach]
        now = time.monotonic()
        if not open_ or now >= deadline:
            break
        if now >= next_send:
            for d in open_:
                send(s, b"map", d)
            next_send = now + RESEND
        select.select([s], [], [], max(0.0, min(deadline, next_send) - now))
        for src, data in receive(s):
            if src == "err":
                if data in want and want[data] is None:
                    unreach.add(data)
            elif src in want and want[src] is None:
                want[src] = data.decode("ascii", "replace").strip()
    ok = True
    for _, ip, port in dests:
        d = (ip, port)
        if want[d] is not None:
            print(fmt(ip, port), want[d])
        elif d in unreach:
            print(fmt(ip, port), "unreachable")
            ok = False
        else:
            ok = False
    return 0 if ok else 3


def cmd_filter(a):
    fam, ip, port = a.dest[0]
    s = client_socket(fam, a.bind, a.from_port)
    dest = (ip, port)
    seen = []
    deadline = time.monotonic() + a.timeout
    next_send = 0.0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if not seen and now >= next_send:
            send(s, b"all", dest)
            next_send = now + RESEND
        wait = deadline - now if seen else min(deadline, next_send) - now
        select.select([s], [], [], max(0.0, wait))
        for src, _ in receive(s):
            if src == "err" or src in seen:
                continue
            if not seen:
                deadline = min(deadline, time.monotonic() + a.grace)
            seen.append(src)
    for src in seen:
        print(fmt(*src))
    return 0 if seen else 3


def ask(s, dest, timeout):
    """The mapped address the echo server dest reports for socket s, or None."""
    deadline = time.monotonic() + timeout
    next_send = 0.0
    while True:
        now = time.monotonic()
        if now >= deadline:
            return None
        if now >= next_send:
            send(s, b"map", dest)
            next_send = now + RESEND
        select.select([s], [], [], max(0.0, min(deadline, next_send) - now))
        for src, data in receive(s):
            if src == "err" and data == dest:
                return None
            if src == dest:
                return data.decode("ascii", "replace").strip()


def cmd_hairpin(a):
    fam, ip, port = a.dest[0]
    dest = (ip, port)
    s = client_socket(fam, a.bind, a.from_port)
    mapped = ask(s, dest, a.timeout)
    if mapped is None:
        return 3
    try:
        _, mip, mport = parse_addr(mapped)
    except argparse.ArgumentTypeError:
        print("probe.py: %s: not an address: %s" % (fmt(ip, port), mapped), file=sys.stderr)
        return 3
    target = (mip, mport)
    t = client_socket(fam, a.bind, 0)
    marker = b"hairpin " + os.urandom(8).hex().encode()
    result = None
    deadline = time.monotonic() + a.timeout
    next_send = 0.0
    while result is None:
        now = time.monotonic()
        if now >= deadline:
            break
        if now >= next_send:
            send(t, marker, target)
            next_send = now + RESEND
        select.select([s, t], [], [], max(0.0, min(deadline, next_send) - now))
        for src, data in receive(s):
            if src != "err" and data == marker:
                result = fmt(*src)
        for src, data in receive(t):
            if src == "err" and data == target and result is None:
                result = "unreachable"
    sender = ask(t, dest, a.timeout)
    print(mapped, sender or "none", result or "none")
    return 0 if result not in (None, "unreachable") else 3


def cmd_tcp(a):
    fam, ip, port = a.dest[0]
    try:
        with socket.create_connection((ip, port), timeout=a.timeout) as c:
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = c.recv(256)
                if not chunk:
                    break
                buf += chunk
    except OSError:
        return 3
    print(buf.decode("ascii", "replace").strip())
    return 0


def daemonize(pidfile, keep):
    """Fork once the sockets are bound; the parent reports the child's pid and leaves."""
    pid = os.fork()
    if pid:
        tmp = pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % pid)
        os.rename(tmp, pidfile)
        os._exit(0)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    # Inherited descriptors (a test runner's pipes) would keep its readers waiting.
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def cmd_echo(a):
    udp = []
    for fam, ip, port in a.bind:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((ip, port))
        udp.append(s)
    tcp = []
    for fam, ip, port in a.tcp:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((ip, port))
        s.listen(16)
        s.setblocking(False)
        tcp.append(s)
    if not udp and not tcp:
        usage_error("echo needs --bind or --tcp")
    if a.pidfile:
        daemonize(a.pidfile, {s.fileno() for s in udp + tcp})
    end = time.monotonic() + a.lifetime if a.lifetime > 0 else None
    while True:
        wait = None
        if end is not None:
            wait = end - time.monotonic()
            if wait <= 0:
                return 0
        r, _, _ = select.select(udp + tcp, [], [], wait)
        for s in r:
            if s in tcp:
                try:
                    c, src = s.accept()
                except OSError:
                    continue
                try:
                    c.settimeout(1)
                    c.sendall((fmt(src[0], src[1]) + "\n").encode())
                except OSError:
                    pass
                c.close()
                continue
            try:
                data, src = s.recvfrom(2048)
            except OSError:
                continue
            reply = fmt(src[0], src[1]).encode()
            senders = [s]
            if data.startswith(b"all"):
                senders += [o for o in udp if o is not s and o.family == s.family]
            for o in senders:
                try:
                    o.sendto(reply, src)
                except OSError:
                    pass


def usage_error(msg):
    print("probe.py: " + msg, file=sys.stderr)
    sys.exit(2)


def main():
    p = argparse.ArgumentParser(prog="probe.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--bind", type=parse_addr, action="append", default=[])
    e.add_argument("--tcp", type=parse_addr, action="append", default=[])
    e.add_argument("--pidfile")
    e.add_argument("--lifetime", type=float, default=0)
    for name, nargs in (("map", "+"), ("filter", 1), ("hairpin", 1)):
        c = sub.add_parser(name)
        c.add_argument("--bind", type=parse_ip)
        c.add_argument("--from-port", type=int, default=0)
        c.add_argument("--timeout", type=float, default=1.0)
        if name == "filter":
            c.add_argument("--grace", type=float, default=0.3)
        c.add_argument("dest", type=parse_addr, nargs=nargs)
    t = sub.add_parser("tcp")
    t.add_argument("--timeout", type=float, default=1.0)
    t.add_argument("dest", type=parse_addr, nargs=1)
    a = p.parse_args()
    if a.cmd != "echo":
        guard(a.dest)
    try:
        return {"echo": cmd_echo, "map": cmd_map, "filter": cmd_filter, "hairpin": cmd_hairpin,
                "tcp": cmd_tcp}[a.cmd](a)
    except OSError as e:
        print("probe.py: %s" % e, file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
