#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A userspace delay element for the lab: holds every packet of an nfqueue
for a fixed time, then lets it go on unchanged (addresses and ports stay
what they were, so a hole-punching peer's candidates still hold).

    nfqdelay.py --queue N --delay MS [--ready FILE]

Run it in a router's namespace and send the packets to delay to queue N
(this kernel has no nft `queue` expression, CONFIG_NFT_QUEUE is off; the
xtables NFQUEUE target works, through iptables-nft):

    ip6tables -t mangle -A FORWARD -p udp -d 2001:db8:d2::/64 \\
        -j NFQUEUE --queue-num 1 --queue-bypass

--queue-bypass lets packets through while no one listens, so the path
works without the delay once this program ends. FILE gets "ready" once the
queue is bound. SIGTERM or SIGINT: unbind and exit 0; what is held is then
let go at once. Python's standard library only: nfnetlink_queue spoken
directly over a NETLINK_NETFILTER socket (linux/netfilter/nfnetlink_queue.h).
"""
import argparse
import collections
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NLA_TYPE_MASK = 0x3FFF

prog = "nfqdelay.py"


def die(msg):
    print(f"{prog}: {msg}", file=sys.stderr)
    sys.exit(1)


def align4(n):
    return (n + 3) & ~3


def attr(kind, payload):
    a = struct.pack("=HH", 4 + len(payload), kind) + payload
    return a + b"\0" * (align4(len(a)) - len(a))


class Queue:
    def __init__(self, num):
        self.num = num
        self.seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                  NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((0, 0))

    def send(self, msg_type, attrs, flags=NLM_F_REQUEST):
        self.seq += 1
        # nfgenmsg: family AF_UNSPEC, version 0, the queue number (big endian)
        body = struct.pack("=BBH", socket.AF_UNSPEC, 0,
                           socket.htons(self.num)) + b"".join(attrs)
        hdr = struct.pack("=IHHII", 16 + len(body),
                          (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags,
                          self.seq, 0)
        self.sock.send(hdr + body)

    def config(self, attrs):
        """A config request, acknowledged; an error reply fails it."""
        self.send(NFQNL_MSG_CONFIG, attrs, NLM_F_REQUEST | NLM_F_ACK)
        while True:
            for t, payload in self.messages(self.sock.recv(65536)):
                if t == NLMSG_ERROR:
                    err = struct.unpack_from("=i", payload)[0]
                    if err != 0:
                        raise OSError(-err, os.strerror(-err))
                    return

    def bind(self):
        self.config([attr(NFQA_CFG_CMD, struct.pack("!BBH",
                                                    NFQNL_CFG_CMD_BIND, 0, 0))])
        # metadata only: the packet id is all a verdict needs
        self.config([attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0,
                                                       NFQNL_COPY_META))])

    def unbind(self):
        self.send(NFQNL_MSG_CONFIG, [attr(NFQA_CFG_CMD, struct.pack(
            "!BBH", NFQNL_CFG_CMD_UNBIND, 0, 0))])

    def accept(self, packet_id):
        self.send(NFQNL_MSG_VERDICT, [attr(NFQA_VERDICT_HDR, struct.pack(
            "!II", NF_ACCEPT, packet_id))])

    @staticmethod
    def messages(buf):
        """(type, payload after the netlink header) for each message."""
        off = 0
        while off + 16 <= len(buf):
            length, mtype = struct.unpack_from("=IH", buf, off)
            if length < 16:
                break
            yield mtype, buf[off + 16:off + length]
            off += align4(length)

    @staticmethod
    def packet_id(payload):
        """The id of a queued packet (NFQA_PACKET_HDR), or None."""
        off = 4  # past nfgenmsg
        while off + 4 <= len(payload):
            length, kind = struct.unpack_from("=HH", payload, off)
            if length < 4:
                break
            if kind & NLA_TYPE_MASK == NFQA_PACKET_HDR:
                return struct.unpack_from("!I", payload, off + 4)[0]
            off += align4(length)
        return None


class Stop(Exception):
    pass


def stop(*_):
    # raised, not flagged: select() is retried after a signal (PEP 475)
    raise Stop()


def run(q, delay, held):
    while True:
        timeout = None
        if held:
            timeout = max(0.0, held[0][0] - time.monotonic())
        r, _, _ = select.select([q.sock], [], [], timeout)
        if r:
            try:
                buf = q.sock.recv(65536)
            except OSError:  # ENOBUFS: the kernel dropped some; go on
                buf = b""
            now = time.monotonic()
            for t, payload in q.messages(buf):
                if t == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    pid = q.packet_id(payload)
                    if pid is not None:
                        held.append((now + delay, pid))
        now = time.monotonic()
        while held and held[0][0] <= now:
            q.accept(held.popleft()[1])


def main():
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    ap.add_argument("--queue", type=int, required=True)
    ap.add_argument("--delay", type=float, required=True, help="milliseconds")
    ap.add_argument("--ready", help="a file that gets 'ready' once bound")
    a = ap.parse_args()
    if not 0 <= a.queue <= 65535 or a.delay < 0:
        die("--queue is 0-65535, --delay at least 0")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    q = Queue(a.queue)
    try:
        q.bind()
    except OSError as e:
        die(f"cannot bind queue {a.queue}: {e.strerror}")
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")

    delay = a.delay / 1000
    held = collections.deque()  # (due, packet id), in order: one delay
    try:
        run(q, delay, held)
    except Stop:
        pass
    while held:
        q.accept(held.popleft()[1])
    q.unbind()

if __name__ == "__main__":
    main()
