#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Raw STUN peers for tests, written independently of lib/stun.c.

  stunpeer.py ask HOST PORT HEX [--timeout S]
      send the hex bytes, print the first reply as hex ("" and exit 1 on timeout)
  stunpeer.py request [--cookie|--no-cookie] [--change FLAGS] [--fingerprint] [--attr TYPE:HEX]
      print a Binding request as hex (random transaction ID)
  stunpeer.py decode HEX
      print "type=0x0101 attr=0x0020:value ..." and XOR-MAPPED/MAPPED addresses
  stunpeer.py fake-server --bind HOST:PORT --mode wrong-source|wrong-txid|garbage|ok [--count N]
      answer Binding requests badly on purpose (or correctly with ok); prints "ready PORT"
  stunpeer.py fake-server --bind HOST:PORT --mode ignore-change --alt HOST2
      an RFC 5780 server that lies: it listens on both addresses and ports and names
      OTHER-ADDRESS, but answers a CHANGE-REQUEST from the socket the request came in on
      (claiming in RESPONSE-ORIGIN that it honoured it); prints "ready PORT ALTPORT"
  stunpeer.py fake-server --bind HOST:PORT --mode other --other ADDR:PORT
      answers correctly but names ADDR:PORT as its OTHER-ADDRESS (a hostile server)
"""
import binascii
import os
import socket
import struct
import sys
import zlib

COOKIE = 0x2112A442


def fingerprint(msg):
    return (zlib.crc32(msg) & 0xffffffff) ^ 0x5354554E


def build(mtype, txid, attrs, cookie=True, fp=False):
    body = b""
    for t, v in attrs:
        body += struct.pack("!HH", t, len(v)) + v + b"\0" * ((4 - len(v) % 4) % 4)
    head = struct.pack("!HH", mtype, len(body) + (8 if fp else 0))
    head += struct.pack("!I", COOKIE) + txid if cookie else txid
    msg = head + body
    if fp:
        msg += struct.pack("!HHI", 0x8028, 4, fingerprint(msg))
    return msg


def xor_addr(v, txid):
    fam, port = v[1], struct.unpack("!H", v[2:4])[0] ^ (COOKIE >> 16)
    if fam == 1:
        ip = struct.unpack("!I", v[4:8])[0] ^ COOKIE
        return "%s:%d" % (socket.inet_ntoa(struct.pack("!I", ip)), port)
    key = struct.pack("!I", COOKIE) + txid
    ip = bytes(a ^ b for a, b in zip(v[4:20], key))
    return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, ip), port)


def plain_addr(v):
    fam, port = v[1], struct.unpack("!H", v[2:4])[0]
    if fam == 1:
        return "%s:%d" % (socket.inet_ntoa(v[4:8]), port)
    return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, v[4:20]), port)


def decode(msg):
    mtype, length = struct.unpack("!HH", msg[:4])
    txid = msg[8:20]
    out = ["type=0x%04x" % mtype, "len=%d" % length]
    off = 20
    while off + 4 <= len(msg):
        t, l = struct.unpack("!HH", msg[off:off + 4])
        v = msg[off + 4:off + 4 + l]
        if t in (0x0020, 0x8020):
            out.append("xor-mapped=" + xor_addr(v, txid))
        elif t in (0x0001, 0x0004, 0x0005, 0x802B, 0x802C):
            names = {1: "mapped", 4: "source", 5: "changed",
                     0x802B: "response-origin", 0x802C: "other-address"}
            out.append(names[t] + "=" + plain_addr(v))
        elif t == 0x0009:
            out.append("error=%d" % (v[2] * 100 + v[3]))
        elif t == 0x000A:
            out.append("unknown=" + ",".join("0x%04x" % struct.unpack("!H", v[i:i + 2])[0]
                                             for i in range(0, len(v), 2)))
        else:
            out.append("attr=0x%04x:%s" % (t, binascii.hexlify(v).decode()))
        off += 4 + l + ((4 - l % 4) % 4)
    return " ".join(out)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def split_hp(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def plain_val(host, port):
    return struct.pack("!BBH", 0, 1, port) + socket.inet_aton(host)


def xor_val(host, port):
    ip = struct.unpack("!I", socket.inet_aton(host))[0] ^ COOKIE
    return struct.pack("!BBHI", 0, 1, port ^ (COOKIE >> 16), ip)


def lying_server(host, port, alt):
    """Four sockets like an RFC 5780 server; CHANGE-REQUEST is ignored."""
    import select
    pp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pp.bind((host, port))
    port = pp.getsockname()[1]
    pa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pa.bind((host, 0))
    aport = pa.getsockname()[1]
    ap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ap.bind((alt, port))
    aa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    aa.bind((alt, aport))
    where = {pp: (host, port), pa: (host, aport), ap: (alt, port), aa: (alt, aport)}
    print("ready %d %d" % (port, aport), flush=True)
    while True:
        for s in select.select(list(where), [], [])[0]:
            data, src = s.recvfrom(4096)
            if len(data) < 20 or data[:2] != b"\0\1":
                continue
            h, p = where[s]
            claimed_h, claimed_p = h, p
            off = 20
            while off + 8 <= len(data):
                t, l = struct.unpack("!HH", data[off:off + 4])
                if t == 0x0003 and l == 4:
                    flags = struct.unpack("!I", data[off + 4:off + 8])[0]
                    if flags & 4:
                        claimed_h = alt if h == host else host
                    if flags & 2:
                        claimed_p = aport if p == port else port
                off += 4 + l + ((4 - l % 4) % 4)
            other = (alt if h == host else host, aport if p == port else port)
            resp = build(0x0101, data[8:20], [
                (0x0020, xor_val(src[0], src[1])),
                (0x802C, plain_val(*other)),
                (0x802B, plain_val(claimed_h, claimed_p))])
            s.sendto(resp, src)


def main(argv):
    cmd = argv[1]
    if cmd == "ask":
        host, port, hexmsg = argv[2], int(argv[3]), argv[4]
        timeout = float(argv[argv.index("--timeout") + 1]) if "--timeout" in argv else 1.0
        s = socket.socket(family_of(host), socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.sendto(binascii.unhexlify(hexmsg), (host, port))
        try:
            data, src = s.recvfrom(4096)
        except socket.timeout:
            return 1
        print(binascii.hexlify(data).decode())
        return 0
    if cmd == "request":
        attrs = []
        cookie = "--no-cookie" not in argv
        if "--change" in argv:
            attrs.append((0x0003, struct.pack("!I", int(argv[argv.index("--change") + 1], 0))))
        for i, a in enumerate(argv):
            if a == "--attr":
                t, v = argv[i + 1].split(":")
                attrs.append((int(t, 0), binascii.unhexlify(v)))
        txid = os.urandom(12 if cookie else 16)
        print(binascii.hexlify(build(0x0001, txid, attrs, cookie, "--fingerprint" in argv)).decode())
        return 0
    if cmd == "decode":
        print(decode(binascii.unhexlify(argv[2])))
        return 0
    if cmd == "fake-server":
        host, port = split_hp(argv[argv.index("--bind") + 1])
        mode = argv[argv.index("--mode") + 1]
        if mode == "ignore-change":
            return lying_server(host, port, argv[argv.index("--alt") + 1])
        count = int(argv[argv.index("--count") + 1]) if "--count" in argv else 100
        s = socket.socket(family_of(host), socket.SOCK_DGRAM)
        s.bind((host, port))
        other = socket.socket(family_of(host), socket.SOCK_DGRAM)
        other.bind((host, 0))
        print("ready %d" % s.getsockname()[1], flush=True)
        for _ in range(count):
            data, src = s.recvfrom(4096)
            txid = data[8:20]
            if mode == "garbage":
                s.sendto(os.urandom(48), src)
                continue
            if mode == "wrong-txid":
                txid = bytes(b ^ 0xff for b in txid)
            ip = socket.inet_aton(src[0]) if family_of(host) == socket.AF_INET else None
            xport = src[1] ^ (COOKIE >> 16)
            val = struct.pack("!BBH", 0, 1, xport) + struct.pack("!I", struct.unpack("!I", ip)[0] ^ COOKIE)
            attrs = [(0x0020, val)]
            if mode == "other":
                ohost, oport = split_hp(argv[argv.index("--other") + 1])
                attrs.append((0x802C, plain_val(ohost, oport)))
            resp = build(0x0101, txid, attrs)
            (other if mode == "wrong-source" else s).sendto(resp, src)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
