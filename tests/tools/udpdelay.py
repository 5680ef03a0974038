#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A userspace delay element for the lab (this kernel has no netem).

  udpdelay.py --listen HOST:PORT --to HOST:PORT --ms N

Forwards every datagram arriving on the listening socket to the target after
N milliseconds, through one upstream socket per client, and the target's
replies back to that client after another N milliseconds. Prints "ready" on
stdout once bound. Only for use inside lab namespaces.
"""
import heapq
import os
import selectors
import socket
import sys
import time


def split(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def in_named_netns():
    """True inside a namespace made with `ip netns` (what lab.sh exec gives)."""
    me = os.stat("/proc/self/ns/net")
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return False
    for n in names:
        try:
            st = os.stat(os.path.join("/run/netns", n))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino):
            return True
    return False


def main(argv):
    listen = split(argv[argv.index("--listen") + 1])
    target = split(argv[argv.index("--to") + 1])
    delay = int(argv[argv.index("--ms") + 1]) / 1000.0
    if not in_named_netns():
        print("udpdelay: refusing to run outside a lab namespace", file=sys.stderr)
        return 2
    fam = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
    front = socket.socket(fam, socket.SOCK_DGRAM)
    front.bind(listen)
    front.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ, None)
    upstream = {}          # client address -> socket
    queue = []             # (due, seq, socket, data, destination)
    seq = 0
    print("ready", flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        for key, _ in sel.select(timeout):
            sock, client = key.fileobj, key.data
            try:
                data, src = sock.recvfrom(65535)
            except BlockingIOError:
                continue
            if client is None:          # from a client, towards the target
                up = upstream.get(src)
                if up is None:
                    up = socket.socket(fam, socket.SOCK_DGRAM)
                    up.setblocking(False)
                    sel.register(up, selectors.EVENT_READ, src)
                    upstream[src] = up
                seq += 1
                heapq.heappush(queue, (time.monotonic() + delay, seq, up, data, target))
            else:                       # a reply, back to its client
                seq += 1
                heapq.heappush(queue, (time.monotonic() + delay, seq, front, data, client))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, sock, data, dst = heapq.heappop(queue)
            try:
                sock.sendto(data, dst)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
