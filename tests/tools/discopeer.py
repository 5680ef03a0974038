#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An independent disco sender (PyNaCl), for the tests that try to fool
punch: forged, replayed and misdirected disco messages over UDP.

  discopeer.py KEYFILE PEERPUB HOST:PORT MESSAGE [--nonce HEX] [--count N]

KEYFILE is the sender's private key (WireGuard base64), PEERPUB the
receiver's public key; MESSAGE is one of

  ping [TXIDHEX]              a Ping with the sender's node key
  pong TXIDHEX IP:PORT        a Pong for TxID, saying the ping came from IP:PORT
  cmm IP:PORT...              a CallMeMaybe
  forged-ping CLAIMPUB        a Ping naming CLAIMPUB as its sender (and node
                              key), though KEYFILE's key sealed it

--nonce fixes the 24-byte nonce (a replay sends the same packet twice);
--count sends the packet N times, 50 ms apart. Sends from an ephemeral
port and prints nothing; exit 2 on bad arguments.
"""
import base64
import ipaddress
import os
import socket
import sys
import time

from nacl.bindings import crypto_box_beforenm, crypto_box_afternm
from nacl.bindings import crypto_scalarmult_base

MAGIC = b"TS\xf0\x9f\x92\xac"


def die(msg):
    print("discopeer: " + msg, file=sys.stderr)
    sys.exit(2)


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def ep(s):
    host, port = hostport(s)
    ip = ipaddress.ip_address(host)
    raw = ip.packed if ip.version == 6 else b"\0" * 10 + b"\xff\xff" + ip.packed
    return raw + port.to_bytes(2, "big")


def main(argv):
    args, nonce, count = [], None, 1
    it = iter(argv)
    for a in it:
        if a == "--nonce":
            nonce = bytes.fromhex(next(it))
        elif a == "--count":
            count = int(next(it))
        else:
            args.append(a)
    if len(args) < 4:
        die("usage: discopeer.py KEYFILE PEERPUB HOST:PORT MESSAGE ...")
    keyfile, peerpub, dst, kind = args[:4]
    rest = args[4:]
    with open(keyfile) as f:
        priv = base64.b64decode(f.read().strip())
    pub = crypto_scalarmult_base(priv)
    peer = base64.b64decode(peerpub)
    sender = pub
    if kind == "ping":
        txid = bytes.fromhex(rest[0]) if rest else os.urandom(12)
        pt = b"\x01\x00" + txid + pub
    elif kind == "forged-ping":
        # claims to come from CLAIMPUB, but only KEYFILE's key sealed
        # it: it must not open
        if len(rest) != 1:
            die("forged-ping CLAIMPUB")
        sender = base64.b64decode(rest[0])
        pt = b"\x01\x00" + os.urandom(12) + sender
    elif kind == "pong":
        if len(rest) != 2:
            die("pong TXIDHEX IP:PORT")
        pt = b"\x02\x00" + bytes.fromhex(rest[0]) + ep(rest[1])
    elif kind == "cmm":
        pt = b"\x03\x00" + b"".join(ep(e) for e in rest)
    else:
        die("unknown message " + kind)
    if nonce is None:
        nonce = os.urandom(24)
    shared = crypto_box_beforenm(peer, priv)
    box = crypto_box_afternm(pt, nonce, shared)  # tag || ciphertext
    pkt = MAGIC + sender + nonce + box
    host, port = hostport(dst)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    for i in range(count):
        s.sendto(pkt, (host, port))
        if i + 1 < count:
            time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
