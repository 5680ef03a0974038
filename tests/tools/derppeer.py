#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An independent DERP peer for tests, written from the wire reference
(protocols.md section 1) alone, not from lib/derp*.c, with python3-nacl's
Box for the NaCl box: it shows derpcat speaks Tailscale's format and not
only its own.

  derppeer.py vectors
      check this codec against the reference vectors; exit 0 or 1
  derppeer.py genkey
      print a new private key in base64 (as `wg genkey` does)
  derppeer.py pubkey [--key-file F] [--hex]
      print the public half of the private key in F (or on stdin)
  derppeer.py server --listen HOST:PORT [--key-file F] [--keepalive S]
                     [--ping-interval S] [--inject-unknown] [--write-timeout S]
                     [--evil bad-magic|bad-serverinfo] [--tls-cert F --tls-key F]
      a minimal DERP server over plain HTTP; prints "ready PORT" on stdout,
      one line per event on stderr; --inject-unknown puts an unknown frame
      (type 0x7f) before every RecvPacket; --evil breaks the handshake on
      purpose (wrong ServerKey magic, or ServerInfo sealed with another key);
      with --tls-cert and --tls-key it serves HTTPS instead
  derppeer.py client URL (--key-file F | --gen) [--send PEER TEXT]...
                     [--send-hex PEER HEX]... [--send-random PEER SIZE]...
                     [--recv N] [--echo] [--wait EVENT]... [--hold] [--digest]
                     [--expect-101-exact] [--fast-start --server-key KEY]
                     [--no-ping] [--note-preferred] [--stdio PEER] [--timeout S]
                     [--insecure | --cafile F | --pin sha256-raw:HEX]
      connect, send, print received packets as "SRCKEY_B64 HEX" lines (with
      --digest "SRCKEY_B64 len=N sha256=HEX"); answers the server's Pings;
      --stdio PEER behaves as `derpcat --raw` (stdin reads to PEER as packets,
      PEER's packets to stdout) until the timeout
  derppeer.py impersonate URL PUBKEY [--mode other-key|zero-box|short]
                     [--to PEER] [--timeout S]
      claim PUBKEY without its private key; exit 0 if the server closes the
      connection without accepting, 1 if it accepts
  derppeer.py garbage URL [CASE...] [--timeout S] [--mesh-key F]
      malformed and boundary input, one line "CASE ok|FAIL what-happened" each;
      exit 0 when the server did what Tailscale's derper does in every case;
      some cases are not in the default set, and the mesh ones need the
      server's mesh key (64 hex digits in F)
  derppeer.py crowd URL N [--timeout S]
      open N connections from this address that stop after the ServerKey
      (unfinished handshakes), then connect one more client fully; prints
      "held H refused R connect ok|refused"; exit 0 if that client got in

Keys on the command line: base64 (WireGuard form), 64 hex digits, or
nodekey:HEX. Private keys only from files (base64 as `wg genkey` writes, or
hex, or privkey:HEX). Client events other than packets go to stderr as
"derppeer: EVENT ..." lines; --wait takes an event name: keepalive, ping,
pong, peergone, peergone-nothere, peergone-disconnected, health, restarting,
unknown.

Exit status: 0 success, 1 the other side broke the protocol or did what it
must not, 2 usage, 3 network failure or timeout.
"""
import argparse
import base64
import binascii
import hashlib
import json
import os
import random
import select
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from collections import deque

from nacl.exceptions import CryptoError
from nacl.public import Box, PrivateKey, PublicKey

MAGIC = b"DERP\xf0\x9f\x94\x91"
DISCO_MAGIC = b"TS\xf0\x9f\x92\xac"
KEYLEN = 32
NONCELEN = 24
MAX_PACKET = 64 << 10
MAX_CLIENT_FRAME = 1 << 20
MAX_CLIENT_INFO = 256 << 10
HANDSHAKE_TIMEOUT = 10.0

SERVER_KEY, CLIENT_INFO, SERVER_INFO = 0x01, 0x02, 0x03
SEND_PACKET, RECV_PACKET, KEEP_ALIVE = 0x04, 0x05, 0x06
NOTE_PREFERRED, PEER_GONE, PEER_PRESENT = 0x07, 0x08, 0x09
FORWARD_PACKET, WATCH_CONNS, CLOSE_PEER = 0x0a, 0x10, 0x11
PING, PONG, HEALTH, RESTARTING = 0x12, 0x13, 0x14, 0x15
NAMES = {
    SERVER_KEY: "ServerKey", CLIENT_INFO: "ClientInfo", SERVER_INFO: "ServerInfo",
    SEND_PACKET: "SendPacket", RECV_PACKET: "RecvPacket", KEEP_ALIVE: "KeepAlive",
    NOTE_PREFERRED: "NotePreferred", PEER_GONE: "PeerGone", PEER_PRESENT: "PeerPresent",
    FORWARD_PACKET: "ForwardPacket", WATCH_CONNS: "WatchConns", CLOSE_PEER: "ClosePeer",
    PING: "Ping", PONG: "Pong", HEALTH: "Health", RESTARTING: "Restarting",
}
GONE_REASONS = {0x00: "disconnected", 0x01: "nothere", 0xf0: "meshconnbroke"}

# What tailscaled sends (magicsock sets CanAckPings; AppName empty).
CLIENT_INFO_JSON = b'{"version":2,"CanAckPings":true}'
SERVER_INFO_JSON = b'{"version":2}'

EXIT_OK, EXIT_NO, EXIT_USAGE, EXIT_NET = 0, 1, 2, 3


class Closed(Exception):
    """The other side closed or reset the connection."""


class Timeout(Exception):
    """A deadline passed."""


class Violation(Exception):
    """The other side broke the protocol."""


def log(*words):
    print("derppeer:", *words, file=sys.stderr, flush=True)


def b64(key):
    return base64.b64encode(key).decode()


def frame(ftype, payload=b""):
    return struct.pack("!BI", ftype, len(payload)) + payload


def response_101(server_pub):
    return (b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: DERP\r\n"
            b"Connection: Upgrade\r\n"
            b"Derp-Version: 2\r\n"
            b"Derp-Public-Key: " + binascii.hexlify(server_pub) + b"\r\n"
            b"\r\n")


def parse_key(text):
    """A public key from base64, hex or nodekey:HEX; None if it is neither."""
    t = text.strip()
    for prefix in ("nodekey:", "discokey:", "privkey:"):
        if t.startswith(prefix):
            t = t[len(prefix):]
    if len(t) == 64:
        try:
            return binascii.unhexlify(t)
        except binascii.Error:
            return None
    try:
        k = base64.b64decode(t, validate=True)
    except (binascii.Error, ValueError):
        return None
    return k if len(k) == KEYLEN else None


def read_private(path):
    with open(path) as f:
        k = parse_key(f.read())
    if k is None:
        raise ValueError("%s: not a base64 or hex private key" % path)
    return k


def public_of(priv):
    return bytes(PrivateKey(priv).public_key)


def seal(priv, peer_pub, msg, nonce=None):
    """nonce || Poly1305 tag || ciphertext, as Go's SealTo and crypto_box_easy."""
    if nonce is None:
        nonce = os.urandom(NONCELEN)
    return bytes(Box(PrivateKey(priv), PublicKey(peer_pub)).encrypt(msg, nonce))


def unseal(priv, peer_pub, sealed):
    if len(sealed) < NONCELEN + 16:
        raise CryptoError("box too short (%d bytes)" % len(sealed))
    return Box(PrivateKey(priv), PublicKey(peer_pub)).decrypt(sealed)


def looks_like_disco(pkt):
    return len(pkt) >= 62 and pkt[:6] == DISCO_MAGIC


# ---------------------------------------------------------------- streams

class Stream:
    """A socket with a read buffer and deadlines on every read."""

    def __init__(self, sock, poll=None):
        self.sock = sock
        self.buf = bytearray()
        self.poll = poll        # with no deadline, wake this often to check stop()
        self.stop = lambda: False

    def _fill(self, deadline):
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout()
                self.sock.settimeout(left if self.poll is None else min(left, self.poll))
            else:
                self.sock.settimeout(self.poll if self.poll else 3600)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                if self.stop():
                    raise Closed("stopped")
                continue
            except (ConnectionError, ssl.SSLError, OSError) as e:
                raise Closed(str(e) or type(e).__name__)
            if not data:
                raise Closed("end of stream")
            self.buf += data
            return

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def discard(self, n, deadline):
        while n > 0:
            if not self.buf:
                self._fill(deadline)
            k = min(n, len(self.buf))
            del self.buf[:k]
            n -= k

    def read_until(self, marker, limit, deadline):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            if len(self.buf) > limit:
                raise Violation("no %r within %d bytes" % (marker, limit))
            self._fill(deadline)

    def read_header(self, deadline):
        ftype, length = struct.unpack("!BI", self.read_exact(5, deadline))
        return ftype, length

    def read_frame(self, deadline, limit):
        ftype, length = self.read_header(deadline)
        if length > limit:
            raise Violation("%s frame of %d bytes (limit %d)"
                            % (NAMES.get(ftype, "0x%02x" % ftype), length, limit))
        return ftype, self.read_exact(length, deadline)

    def send(self, data, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        self.sock.settimeout(left)
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise Timeout()
        except (ConnectionError, ssl.SSLError, OSError) as e:
            raise Closed(str(e) or type(e).__name__)


# ---------------------------------------------------------------- vectors

def check_vectors():
    ok = True

    def check(name, got, want):
        nonlocal ok
        if got == want:
            print("ok", name)
        else:
            ok = False
            print("FAIL", name, "got", got, "want", want)

    a_priv, b_priv = b"\x11" * 32, b"\x22" * 32
    nonce = bytes(range(24))
    a_pub, b_pub = public_of(a_priv), public_of(b_priv)
    h = lambda b: binascii.hexlify(b).decode()
    check("A pub", h(a_pub), "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13")
    check("B pub", h(b_pub), "0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20")
    sk = frame(SERVER_KEY, MAGIC + b_pub)
    check("ServerKey len", len(sk), 45)
    check("ServerKey", h(sk), "0100000028" "44455250f09f9491"
          "0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20")
    ci = frame(CLIENT_INFO, a_pub + seal(a_priv, b_pub, CLIENT_INFO_JSON, nonce))
    check("ClientInfo len", len(ci), 109)
    check("ClientInfo", h(ci), "0200000068"
          "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13"
          "000102030405060708090a0b0c0d0e0f1011121314151617"
          "a858a062bb55fbd0e565bf952225b5e220ae6ff32ce093a7548f0f9efd7331db"
          "8b94711fe4546f1ed0d738121d94abe3")
    # The server side opens what the client sealed; a flipped bit does not.
    check("ClientInfo opens", unseal(b_priv, a_pub, ci[5 + 32:]), CLIENT_INFO_JSON)
    bad = bytearray(ci[5 + 32:])
    bad[-1] ^= 1
    try:
        unseal(b_priv, a_pub, bytes(bad))
        check("tampered ClientInfo refused", "opened", "refused")
    except CryptoError:
        check("tampered ClientInfo refused", "refused", "refused")
    si = frame(SERVER_INFO, seal(b_priv, a_pub, SERVER_INFO_JSON, nonce))
    check("ServerInfo header", h(si[:5]), "0300000035")
    check("ServerInfo opens", unseal(a_priv, b_pub, si[5:]), SERVER_INFO_JSON)

    eight = bytes(range(1, 9))
    check("ping", h(frame(PING, eight)), "12" "00000008" "0102030405060708")
    check("pong", h(frame(PONG, eight)), "13" "00000008" "0102030405060708")
    check("health BAD", h(frame(HEALTH, b"BAD")), "14" "00000003" "424144")
    check("health ok", h(frame(HEALTH)), "14" "00000000")
    rs = frame(RESTARTING, struct.pack("!II", 1, 2))
    check("restarting", h(rs), "15" "00000008" "00000001" "00000002")
    check("restarting decodes", describe(RESTARTING, rs[5:]), "restarting reconnect_in=1ms try_for=2ms")
    check("health decodes", describe(HEALTH, b"BAD"), "health BAD")

    # The 101 for server B, byte for byte (length is self-computed: 172).
    r = response_101(b_pub)
    check("101 length", len(r), 172)
    check("101 key field", r.split(b"\r\n")[4], b"Derp-Public-Key: " + h(b_pub).encode())

    # Disco packet A -> B (protocols.md 3.3), used for the PeerGone(NotHere) rule.
    pkt = DISCO_MAGIC + a_pub + seal(a_priv, b_pub, bytes.fromhex("0100") + bytes(range(1, 13)), nonce)
    check("disco ping packet", h(pkt), "5453f09f92ac"
          "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13"
          "000102030405060708090a0b0c0d0e0f1011121314151617"
          "209ba14dbad5083e2f98856cb9320c265a8c18945d97ffce3da53ca6da5d")
    check("disco shared key", h(Box(PrivateKey(a_priv), PublicKey(b_pub)).shared_key()),
          "8abe7c8ae6800b76d4f5986b04b77f6e9b4f332403c90df02428336e8bd9b525")
    check("disco looks like disco", looks_like_disco(pkt), True)
    check("61 bytes is not disco", looks_like_disco(pkt[:61]), False)
    check("key parse base64", parse_key(b64(a_pub)), a_pub)
    check("key parse hex", parse_key(h(a_pub)), a_pub)
    check("key parse nodekey:", parse_key("nodekey:" + h(a_pub)), a_pub)
    return EXIT_OK if ok else EXIT_NO


def parse_present(p):
    """key, ip text (None if absent), port, flags of a PeerPresent; tolerant
    of old servers' shorter forms (>= 32, + 18, + 1)."""
    key, ip, port, flags = p[:KEYLEN], None, 0, 0
    if len(p) >= KEYLEN + 18:
        raw = p[KEYLEN:KEYLEN + 16]
        ip = socket.inet_ntop(socket.AF_INET6, raw)
        if raw[:12] == b"\0" * 10 + b"\xff\xff":
            ip = socket.inet_ntop(socket.AF_INET, raw[12:])
        port = struct.unpack("!H", p[KEYLEN + 16:KEYLEN + 18])[0]
    if len(p) >= KEYLEN + 19:
        flags = p[KEYLEN + 18]
    return key, ip, port, flags


def describe(ftype, p):
    """One-line event text for a frame the client does not act on."""
    if ftype == KEEP_ALIVE:
        return "keepalive"
    if ftype == PEER_GONE:
        if len(p) < KEYLEN:
            return "peergone short(%d)" % len(p)
        reason = p[KEYLEN] if len(p) > KEYLEN else 0
        return "peergone %s %s" % (b64(p[:KEYLEN]), GONE_REASONS.get(reason, "0x%02x" % reason))
    if ftype == PEER_PRESENT:
        if len(p) < KEYLEN:
            return "peerpresent short(%d)" % len(p)
        key, ip, port, flags = parse_present(p)
        return "peerpresent %s %s flags=0x%02x" % (b64(key), "[%s]:%d" % (ip, port) if ip else "-", flags)
    if ftype == PONG:
        return "pong %s" % binascii.hexlify(p).decode()
    if ftype == HEALTH:
        return "health %s" % (p.decode("utf-8", "replace") if p else "ok")
    if ftype == RESTARTING:
        if len(p) < 8:
            return "restarting short(%d)" % len(p)
        a, b = struct.unpack("!II", p[:8])
        return "restarting reconnect_in=%dms try_for=%dms" % (a, b)
    return "unknown 0x%02x len=%d" % (ftype, len(p))


# ---------------------------------------------------------------- server

class TokenBucket:
    def __init__(self, rate, burst):
        self.rate, self.burst, self.tokens, self.t = rate, burst, burst, time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class ServerConn:
    QUEUE = 32

    def __init__(self, srv, sock, addr):
        self.srv, self.addr = srv, "%s:%d" % addr[:2]
        self.sock = sock
        self.wsock = sock.dup()     # own timeout for writes; the reader polls
        self.wsock.settimeout(srv.args.write_timeout)
        self.stream = Stream(sock, poll=0.5)
        self.stream.stop = lambda: self.closed
        self.cond = threading.Condition()
        self.ctrl = deque()
        self.data = deque()
        self.pong_pending = False
        self.pings = {}
        self.closed = False
        self.pub = None
        self.gone_lim = TokenBucket(1.0, 3)

    def name(self):
        return b64(self.pub) if self.pub else self.addr

    def enqueue_ctrl(self, fr):
        with self.cond:
            self.ctrl.append(fr)
            self.cond.notify()

    def enqueue_data(self, fr, src):
        with self.cond:
            if len(self.data) >= self.QUEUE:
                self.data.popleft()
                self.srv.log("drop", b64(src), "->", self.name(), "queue_head")
            self.data.append(fr)
            self.cond.notify()

    def close(self, why):
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.cond.notify()
        self.srv.log("closed", self.name(), why)
        for s in (self.sock, self.wsock):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def next_keepalive(self):
        ka = self.srv.args.keepalive
        # derper: KeepAlive + rand[0,5s); jitter scaled down with short test intervals.
        return time.monotonic() + ka + random.uniform(0, min(5.0, ka / 12))

    def writer(self):
        ka_at = self.next_keepalive()
        ping_every = self.srv.args.ping_interval
        ping_at = time.monotonic() + ping_every if ping_every else None
        while True:
            with self.cond:
                while not (self.closed or self.ctrl or self.data):
                    now = time.monotonic()
                    due = min(ka_at, ping_at or ka_at)
                    if now >= due:
                        break
                    self.cond.wait(due - now)
                if self.closed:
                    return
                out = []
                while self.ctrl:
                    out.append(self.ctrl.popleft())
                while self.data:
                    out.append(self.data.popleft())
                self.pong_pending = False
            now = time.monotonic()
            if now >= ka_at:
                out.append(frame(KEEP_ALIVE))
                self.srv.log("keepalive-sent", self.name())
                ka_at = self.next_keepalive()
            if ping_at and now >= ping_at:
                tok = os.urandom(8)
                self.pings[tok] = now
                out.append(frame(PING, tok))
                self.srv.log("ping-sent", self.name(), tok.hex())
                ping_at = now + ping_every
            try:
                self.wsock.sendall(b"".join(out))
            except (socket.timeout, OSError) as e:
                self.close("write: %s" % (e or "timeout"))
                return

    def http(self):
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        head = self.stream.read_until(b"\r\n\r\n", 8192, deadline).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self.wsock.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            raise Violation("bad request line %r" % lines[0][:80])
        method, path = parts[0], parts[1]
        hdr = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdr[k.strip().lower()] = v.strip()
        self.srv.log("http", self.addr, method, path, "upgrade=%s" % hdr.get("upgrade", "-"),
                     "fast-start=%s" % hdr.get("derp-fast-start", "-"))
        if path in ("/derp/probe", "/derp/latency-check"):
            if method in ("GET", "HEAD"):
                self.reply(b"200 OK", b"Access-Control-Allow-Origin: *\r\n")
            else:
                self.reply(b"405 Method Not Allowed")
            return False
        if path == "/generate_204":
            self.reply(b"204 No Content")
            return False
        if path != "/derp":
            self.reply(b"404 Not Found")
            return False
        if hdr.get("upgrade", "").lower() != "derp":
            self.reply(b"426 Upgrade Required", body=b"DERP requires connection upgrade")
            return False
        if hdr.get("derp-fast-start") != "1":
            self.wsock.sendall(response_101(self.srv.pub))
        return True

    def reply(self, status, extra=b"", body=b""):
        self.wsock.sendall(b"HTTP/1.1 " + status + b"\r\n" + extra +
                           b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)

    def handshake(self):
        magic = MAGIC[:-1] + b"\x92" if self.srv.args.evil == "bad-magic" else MAGIC
        self.wsock.sendall(frame(SERVER_KEY, magic + self.srv.pub))
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        ftype, length = self.stream.read_header(deadline)
        if ftype != CLIENT_INFO:
            raise Violation("expected ClientInfo, got %s" % NAMES.get(ftype, "0x%02x" % ftype))
        if length > MAX_CLIENT_INFO or length < KEYLEN + NONCELEN:
            raise Violation("ClientInfo of %d bytes" % length)
        p = self.stream.read_exact(length, deadline)
        claimed = p[:KEYLEN]
        try:
            info = json.loads(unseal(self.srv.priv, claimed, p[KEYLEN:]))
        except CryptoError:
            raise Violation("refused %s: box did not open" % b64(claimed))
        except ValueError:
            raise Violation("refused %s: ClientInfo is not JSON" % b64(claimed))
        self.pub = claimed
        self.srv.log("connected", b64(claimed), self.addr, "info=%s" % json.dumps(info, separators=(",", ":")))

    def run(self):
        try:
            if not self.http():
                return
            self.handshake()
            sealer = self.srv.priv
            if self.srv.args.evil == "bad-serverinfo":
                sealer = bytes(PrivateKey.generate())
            self.enqueue_ctrl(frame(SERVER_INFO, seal(sealer, self.pub, SERVER_INFO_JSON)))
            self.srv.register(self)
            threading.Thread(target=self.writer, daemon=True).start()
            self.loop()
        except (Closed, Timeout) as e:
            self.close(str(e) or "timeout")
        except Violation as e:
            self.close(str(e))
        except OSError as e:
            self.close("os: %s" % e)
        finally:
            self.close("done")
            if self.pub:
                self.srv.unregister(self)
            try:
                self.sock.close()
                self.wsock.close()
            except OSError:
                pass

    def loop(self):
        st = self.stream
        while not self.closed:
            ftype, length = st.read_header(None)
            if ftype == SEND_PACKET:
                if length < KEYLEN:
                    raise Violation("short SendPacket (%d bytes)" % length)
                if length - KEYLEN > MAX_PACKET:
                    raise Violation("SendPacket of %d bytes (max %d)" % (length - KEYLEN, MAX_PACKET))
                p = st.read_exact(length, None)
                self.srv.route(self, p[:KEYLEN], p[KEYLEN:])
            elif ftype == NOTE_PREFERRED:
                if length != 1:
                    raise Violation("NotePreferred of %d bytes" % length)
                self.srv.log("notepreferred", self.name(), st.read_exact(1, None)[0])
            elif ftype == PING:
                if length < 8 or length > 1000:
                    raise Violation("Ping of %d bytes" % length)
                p = st.read_exact(length, None)
                with self.cond:
                    if self.pong_pending:   # derper: one Pong slot, extras ignored
                        continue
                    self.pong_pending = True
                    self.ctrl.append(frame(PONG, p[:8]))
                    self.cond.notify()
                self.srv.log("ping", self.name(), p[:8].hex())
            elif ftype == PONG:
                p = st.read_exact(length, None)
                ok = self.pings.pop(p[:8], None) is not None
                self.srv.log("pong", self.name(), p[:8].hex(), "ok" if ok else "unexpected")
            elif ftype in (WATCH_CONNS, FORWARD_PACKET, CLOSE_PEER):
                raise Violation("%s without mesh key" % NAMES[ftype])
            else:
                st.discard(length, None)
                self.srv.log("skip", self.name(), "type=0x%02x" % ftype, "len=%d" % length)


def tls_pump(raw, ctx, inner, log_fn):
    """Terminate TLS for one connection on one thread (MemoryBIO, so no SSL
    object is ever used from two threads) and pass plaintext through the
    socketpair end `inner`."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=True)
    raw.setblocking(False)
    inner.setblocking(False)
    pending = b""           # plaintext from inner not yet taken by the SSL object
    handshaken = False
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT

    def flush():
        data = out.read()
        while data:
            if not select.select([], [raw], [], 5)[1]:
                raise Closed("TLS write timeout")
            n = raw.send(data)
            data = data[n:]

    def drain():
        # Records that came with the handshake's last flight count too.
        while handshaken:
            try:
                plain = obj.read(65536)
            except ssl.SSLWantReadError:
                return
            if not plain:
                raise Closed("TLS close")
            inner.setblocking(True)
            inner.sendall(plain)
            inner.setblocking(False)

    try:
        while True:
            if not handshaken:
                try:
                    obj.do_handshake()
                    handshaken = True
                except ssl.SSLWantReadError:
                    if time.monotonic() > deadline:
                        raise Closed("TLS handshake timeout")
                flush()
                drain()
            rl = [raw] + ([inner] if handshaken else [])
            r, _, _ = select.select(rl, [], [], 1)
            if raw in r:
                data = raw.recv(65536)
                if not data:
                    break
                inc.write(data)
                if handshaken:
                    drain()
                flush()
            if inner in r:
                data = inner.recv(65536)
                if not data:
                    break
                pending += data
                while pending:
                    n = obj.write(pending)
                    pending = pending[n:]
                flush()
    except (Closed, OSError, ssl.SSLError) as e:
        log_fn("tls", str(e) or type(e).__name__)
    finally:
        for sk in (raw, inner):
            try:
                sk.close()
            except OSError:
                pass


class Server:
    def __init__(self, args, priv):
        self.args, self.priv, self.pub = args, priv, public_of(priv)
        self.lock = threading.Lock()
        self.clients = {}       # pub -> [ServerConn], newest last (it receives)
        self.watchers = {}      # src pub -> set of dst pubs it sent to
        self.loglock = threading.Lock()

    def log(self, *words):
        with self.loglock:
            log(*words)

    def register(self, c):
        with self.lock:
            self.clients.setdefault(c.pub, []).append(c)

    def unregister(self, c):
        with self.lock:
            conns = self.clients.get(c.pub, [])
            if c in conns:
                conns.remove(c)
            if conns:
                return
            self.clients.pop(c.pub, None)
            tell = [self.clients[d][-1] for d in self.watchers.pop(c.pub, ()) if d in self.clients]
        for d in tell:
            d.enqueue_ctrl(frame(PEER_GONE, c.pub + b"\x00"))
            self.log("peergone-sent", d.name(), "about", b64(c.pub), "disconnected")

    def route(self, src, dst, pkt):
        with self.lock:
            conns = self.clients.get(dst)
            dc = conns[-1] if conns else None
            if dc:
                self.watchers.setdefault(src.pub, set()).add(dst)
        if dc:
            fr = frame(RECV_PACKET, src.pub + pkt)
            if self.args.inject_unknown:
                fr = frame(0x7f, b"meshkit") + fr
            dc.enqueue_data(fr, src.pub)
            self.log("relay", src.name(), "->", b64(dst), "len=%d" % len(pkt))
            return
        self.log("drop", src.name(), "->", b64(dst), "len=%d" % len(pkt), "unknown_dest")
        if looks_like_disco(pkt) and src.gone_lim.take():
            src.enqueue_ctrl(frame(PEER_GONE, dst + b"\x01"))
            self.log("peergone-sent", src.name(), "about", b64(dst), "nothere")

    def serve(self, host, port):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, port))
        ls.listen(128)
        self.log("server key", b64(self.pub))
        self.log("listening on %s:%d" % (host if fam == socket.AF_INET else "[%s]" % host, ls.getsockname()[1]))
        ctx = None
        if self.args.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.args.tls_cert, self.args.tls_key)
        print("ready %d" % ls.getsockname()[1], flush=True)
        while True:
            s, addr = ls.accept()
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.log("accept", "%s:%d" % addr[:2])
            if ctx:
                mine, theirs = socket.socketpair()
                threading.Thread(target=tls_pump, args=(s, ctx, theirs, self.log), daemon=True).start()
                s = mine
            c = ServerConn(self, s, addr)
            threading.Thread(target=c.run, daemon=True).start()


# ---------------------------------------------------------------- client

class Session:
    """One client connection, after the handshake."""

    def __init__(self, stream, priv, server_pub, deadline):
        self.stream, self.priv, self.server_pub = stream, priv, server_pub
        self.pub = public_of(priv)
        self.deadline = deadline

    def send(self, fr, deadline=None):
        self.stream.send(fr, deadline or time.monotonic() + 5)

    def send_packet(self, dst, pkt):
        self.send(frame(SEND_PACKET, dst + pkt))


def split_url(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError("bad URL %r (want http://HOST:PORT or https://HOST[:PORT])" % url)
    port = u.port or (443 if u.scheme == "https" else 80)
    return u.scheme, u.hostname, port, u.netloc, (u.path or "/derp")


def dial(url, deadline, args=None):
    scheme, host, port, netloc, path = split_url(url)
    s = socket.create_connection((host, port), timeout=max(0.1, deadline - time.monotonic()))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if scheme == "https":
        ctx = ssl.create_default_context(cafile=getattr(args, "cafile", None))
        pin = getattr(args, "pin", None)
        if getattr(args, "insecure", False) or pin:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname=host)
        if pin:
            want = pin.split(":", 1)[1].lower() if pin.startswith("sha256-raw:") else pin.lower()
            got = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
            if got != want:
                s.close()
                raise Violation("certificate sha256-raw:%s does not match the pin" % got)
    return Stream(s), netloc, path


def request(netloc, path, fast_start=False, upgrade="DERP", ideal_node=None):
    # As Go's http.Request.Write puts it: Host, User-Agent, then sorted headers.
    r = "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\nConnection: Upgrade\r\n" % (path, netloc)
    if fast_start:
        r += "Derp-Fast-Start: 1\r\n"
    if ideal_node:
        # derphttp sends it when it is not on the region's first node
        r += "Ideal-Node: %s\r\n" % ideal_node
    if upgrade:
        r += "Upgrade: %s\r\n" % upgrade
    return (r + "\r\n").encode()


def read_101(st, deadline):
    head = st.read_until(b"\r\n\r\n", 4096, deadline)
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 101 "):
        raise Violation("no 101: %r" % status.decode("latin-1"))
    return head


def read_server_key(st, deadline):
    ftype, p = st.read_frame(deadline, 1024)
    if ftype != SERVER_KEY:
        raise Violation("first frame is %s, not ServerKey" % NAMES.get(ftype, "0x%02x" % ftype))
    if len(p) < len(MAGIC) + KEYLEN:
        raise Violation("ServerKey of %d bytes (need >= 40)" % len(p))
    if p[:8] != MAGIC:
        raise Violation("ServerKey magic is %s, not %s" % (p[:8].hex(), MAGIC.hex()))
    return p[8:8 + KEYLEN]


def client_info(mesh_key=None, prober=False):
    """ClientInfo JSON in Go's field order (meshKey, version, CanAckPings, IsProber)."""
    if mesh_key is None and not prober:
        return CLIENT_INFO_JSON
    j = '{' + ('"meshKey":"%s",' % mesh_key.hex() if mesh_key else "") + '"version":2,"CanAckPings":true'
    return (j + (',"IsProber":true' if prober else "") + "}").encode()


def connect(url, priv, args, deadline, info=CLIENT_INFO_JSON, ideal_node=None):
    """HTTP upgrade, ServerKey, ClientInfo (the JSON `info`), ServerInfo;
    returns a Session."""
    st, netloc, path = dial(url, deadline, args)
    fast = getattr(args, "fast_start", False)
    st.send(request(netloc, path, fast_start=fast, ideal_node=ideal_node), deadline)
    if fast:
        server_pub = parse_key(args.server_key)
        st.send(frame(CLIENT_INFO, public_of(priv) + seal(priv, server_pub, info)), deadline)
    else:
        head = read_101(st, deadline)
        server_pub = read_server_key(st, deadline)
        check_101(head, server_pub, getattr(args, "expect_101_exact", False))
        st.send(frame(CLIENT_INFO, public_of(priv) + seal(priv, server_pub, info)), deadline)
    log("serverkey", b64(server_pub))
    while True:
        ftype, p = st.read_frame(deadline, MAX_CLIENT_FRAME)
        if ftype == SERVER_INFO:
            break
        if ftype == SERVER_KEY and fast:
            if p[:8] != MAGIC or p[8:40] != server_pub:
                raise Violation("fast start: ServerKey %s differs from --server-key" % p.hex())
            continue
        raise Violation("expected ServerInfo, got %s" % NAMES.get(ftype, "0x%02x" % ftype))
    try:
        info = unseal(priv, server_pub, p)
    except CryptoError:
        raise Violation("ServerInfo box did not open")
    try:
        j = json.loads(info)
    except ValueError:
        raise Violation("ServerInfo is not JSON: %r" % info)
    log("serverinfo", info.decode("utf-8", "replace"))
    if not isinstance(j, dict) or j.get("version") != 2:
        raise Violation("ServerInfo version is not 2: %r" % info)
    return Session(st, priv, server_pub, deadline)


def check_101(head, server_pub, exact):
    want = response_101(server_pub)
    if exact and head != want:
        raise Violation("101 differs:\n  got  %r\n  want %r" % (head, want))
    for ln in head.split(b"\r\n"):
        if ln.lower().startswith(b"derp-public-key:"):
            if ln.split(b":", 1)[1].strip() != binascii.hexlify(server_pub):
                raise Violation("Derp-Public-Key %r is not the ServerKey's key" % ln)
    if exact:
        log("101 exact", "%d bytes" % len(head))


def shutdown(sess):
    """Close politely so a server never sees a reset with our frames unread."""
    try:
        sess.stream.sock.shutdown(socket.SHUT_WR)
        end = time.monotonic() + 1
        while True:
            sess.stream.read_exact(len(sess.stream.buf) + 1, end)
    except (Closed, Timeout, OSError):
        pass
    sess.stream.sock.close()


def load_identity(args):
    if args.key_file:
        return read_private(args.key_file)
    priv = bytes(PrivateKey.generate())
    log("ephemeral key", b64(public_of(priv)))
    return priv


def run_client(args):
    priv = load_identity(args)
    sends = []
    for peer, text in args.send or []:
        sends.append((peer, text.encode()))
    for peer, hx in args.send_hex or []:
        sends.append((peer, binascii.unhexlify(hx)))
    for peer, size in args.send_random or []:
        sends.append((peer, os.urandom(int(size))))
    packets = []
    for peer, data in sends:
        k = parse_key(peer)
        if k is None:
            raise ValueError("bad peer key %r" % peer)
        packets.append((k, data))

    deadline = time.monotonic() + args.timeout
    sess = connect(args.url, priv, args, min(deadline, time.monotonic() + HANDSHAKE_TIMEOUT))
    log("connected", b64(sess.pub), "via", args.url)
    if args.stdio:
        return run_stdio(sess, parse_key(args.stdio), deadline)
    if args.note_preferred:
        sess.send(frame(NOTE_PREFERRED, b"\x01"))
    for dst, data in packets:
        sess.send_packet(dst, data)
        log("sent", b64(dst), "len=%d" % len(data), "sha256=%s" % hashlib.sha256(data).hexdigest())
    token = None
    if not args.no_ping:
        # The server handles frames in order, so its Pong means our packets were routed.
        token = os.urandom(8)
        sess.send(frame(PING, token))
    waiting = set(args.wait or [])
    got = 0
    only_pong = not (args.recv or waiting or args.hold or args.echo)
    while True:
        done = got >= (args.recv or 0) and not waiting and token is None
        if done and not args.hold and not (args.echo and not args.recv):
            break
        try:
            ftype, p = sess.stream.read_frame(deadline, MAX_CLIENT_FRAME)
        except Timeout:
            if args.hold or (args.echo and not args.recv and not waiting and token is None):
                break
            what = []
            if token is not None and only_pong:
                what.append("no Pong to our Ping")
            if got < (args.recv or 0):
                what.append("%d of %d packets" % (got, args.recv))
            if waiting:
                what.append("no %s" % ",".join(sorted(waiting)))
            log("timeout:", "; ".join(what) or "waiting")
            shutdown(sess)
            return EXIT_NET if token is None or not only_pong else EXIT_NO
        if ftype == RECV_PACKET:
            if len(p) < KEYLEN:
                raise Violation("RecvPacket of %d bytes has no source key" % len(p))
            src, data = p[:KEYLEN], p[KEYLEN:]
            got += 1
            if args.digest:
                print(b64(src), "len=%d" % len(data), "sha256=%s" % hashlib.sha256(data).hexdigest(), flush=True)
            else:
                print(b64(src), binascii.hexlify(data).decode(), flush=True)
            if args.echo:
                sess.send_packet(src, data)
            continue
        if ftype == PING:
            sess.send(frame(PONG, p[:8]))
            ev = "ping %s" % p[:8].hex()
        elif ftype == PONG and token is not None and p[:8] == token:
            token = None
            ev = "pong %s" % p.hex()
        else:
            ev = describe(ftype, p)
        log(ev)
        name = ev.split(" ")[0]
        waiting.discard(name)
        if name == "peergone":
            waiting.discard("peergone-" + ev.split(" ")[2])
    shutdown(sess)
    return EXIT_OK


def run_stdio(sess, peer, deadline):
    """As `derpcat --raw`: each read of stdin is one packet to peer, packets
    from peer go to stdout as they are; stdin EOF does not end the session."""
    wsock = sess.stream.sock.dup()
    lock = threading.Lock()

    def send(fr):
        with lock:
            wsock.settimeout(5)
            wsock.sendall(fr)

    def pump():
        try:
            while True:
                data = os.read(0, MAX_PACKET)
                if not data:
                    log("stdin EOF")
                    return
                send(frame(SEND_PACKET, peer + data))
        except OSError as e:
            log("stdin:", e)

    sess.stream.poll = 0.5
    threading.Thread(target=pump, daemon=True).start()
    while True:
        try:
            ftype, p = sess.stream.read_frame(deadline, MAX_CLIENT_FRAME)
        except Timeout:
            return EXIT_OK
        if ftype == RECV_PACKET and len(p) >= KEYLEN:
            if p[:KEYLEN] == peer:
                os.write(1, p[KEYLEN:])
            else:
                log("ignored packet from", b64(p[:KEYLEN]))
        elif ftype == PING:
            send(frame(PONG, p[:8]))
        else:
            log(describe(ftype, p))


# ---------------------------------------------------------------- impersonate

def run_impersonate(args):
    victim = parse_key(args.pubkey)
    if victim is None:
        raise ValueError("bad public key %r" % args.pubkey)
    deadline = time.monotonic() + args.timeout
    st, netloc, path = dial(args.url, deadline, args)
    st.send(request(netloc, path), deadline)
    read_101(st, deadline)
    server_pub = read_server_key(st, deadline)
    other = bytes(PrivateKey.generate())
    if args.mode == "other-key":
        body = seal(other, server_pub, CLIENT_INFO_JSON)
    elif args.mode == "zero-box":
        body = os.urandom(NONCELEN) + bytes(16 + len(CLIENT_INFO_JSON))
    else:
        body = os.urandom(10)
    out = frame(CLIENT_INFO, victim + body)
    if args.to:
        # Pipelined: a server must not relay what arrives before the key is proven.
        out += frame(SEND_PACKET, parse_key(args.to) + b"impersonated " + victim.hex().encode())
    try:
        st.send(out, deadline)
    except Closed as e:
        print("refused: closed while we wrote (%s)" % e)
        return EXIT_OK
    frames = []
    try:
        while True:
            ftype, p = st.read_frame(deadline, MAX_CLIENT_FRAME)
            frames.append(NAMES.get(ftype, "0x%02x" % ftype))
            if ftype == SERVER_INFO:
                print("accepted: server sent ServerInfo to a client that does not hold the key")
                return EXIT_NO
    except Closed as e:
        print("refused: server closed the connection (%s)%s"
              % (e, "; frames first: " + ",".join(frames) if frames else ""))
        return EXIT_OK
    except Timeout:
        print("open: neither refused nor accepted within %gs" % args.timeout)
        return EXIT_NO


# ---------------------------------------------------------------- garbage

class Garbage:
    """Each case returns (ok, what happened)."""

    def __init__(self, args):
        self.args = args
        self.t = args.timeout

    def deadline(self):
        return time.monotonic() + self.t

    def session(self, priv=None, info=CLIENT_INFO_JSON, ideal_node=None):
        return connect(self.args.url, priv or bytes(PrivateKey.generate()), self.args, self.deadline(),
                       info=info, ideal_node=ideal_node)

    def mesh_key(self):
        if not self.args.mesh_key:
            raise Violation("this case needs --mesh-key FILE (the server's mesh key)")
        with open(self.args.mesh_key) as f:
            return binascii.unhexlify(f.read().strip())

    def mesh_session(self, priv=None):
        return self.session(priv, info=client_info(mesh_key=self.mesh_key()))

    def raw(self):
        st, netloc, path = dial(self.args.url, self.deadline(), self.args)
        return st, netloc, path

    def outcome(self, st, deadline=None):
        """Read until the server closes or the deadline; say which and what came."""
        deadline = deadline or self.deadline()
        seen = []
        try:
            while True:
                ftype, p = st.read_frame(deadline, MAX_CLIENT_FRAME)
                seen.append(describe(ftype, p) if ftype != PONG else "pong")
        except Closed:
            return "closed", seen
        except Timeout:
            return "open", seen
        except Violation as e:
            return "bad-frame(%s)" % e, seen

    def ping(self, sess):
        tok = os.urandom(8)
        sess.send(frame(PING, tok))
        deadline = self.deadline()
        try:
            while True:
                ftype, p = sess.stream.read_frame(deadline, MAX_CLIENT_FRAME)
                if ftype == PONG and p[:8] == tok:
                    return True
        except (Closed, Timeout):
            return False

    def expect_close(self, sess, payload):
        try:
            sess.send(payload)
        except Closed as e:
            return True, "closed while we wrote (%s)" % e
        how, seen = self.outcome(sess.stream)
        return how == "closed", how + (" after " + ",".join(seen) if seen else "")

    def case_unknown_type(self):
        s = self.session()
        s.send(frame(0x7f, b"meshkit") + frame(0x20) + frame(0xfe, os.urandom(100)))
        ok = self.ping(s)
        shutdown(s)
        return ok, "skipped (Pong after three unknown frames)" if ok else "no Pong after unknown frames"

    def case_unknown_large(self):
        s = self.session()
        s.send(frame(0x7e, os.urandom(MAX_PACKET + 1000)), self.deadline())
        ok = self.ping(s)
        shutdown(s)
        return ok, "skipped 66536-byte unknown frame" if ok else "no Pong after a large unknown frame"

    def pair(self):
        a, b = self.session(), self.session()
        return a, b

    def recv_from(self, sess, src):
        deadline = self.deadline()
        try:
            while True:
                ftype, p = sess.stream.read_frame(deadline, MAX_CLIENT_FRAME)
                if ftype == RECV_PACKET and p[:KEYLEN] == src:
                    return p[KEYLEN:]
        except (Closed, Timeout, Violation):
            return None

    def case_max_packet(self):
        a, b = self.pair()
        pkt = os.urandom(MAX_PACKET)
        a.send(frame(SEND_PACKET, b.pub + pkt), self.deadline())
        got = self.recv_from(b, a.pub)
        shutdown(a)
        shutdown(b)
        if got == pkt:
            return True, "65536-byte packet relayed intact"
        return False, "65536-byte packet %s" % ("not relayed" if got is None else "corrupted (%d bytes)" % len(got))

    def case_oversize_packet(self):
        s = self.session()
        return self.expect_close(s, frame(SEND_PACKET, os.urandom(KEYLEN) + os.urandom(MAX_PACKET + 1)))

    def case_huge_length(self):
        s = self.session()
        return self.expect_close(s, struct.pack("!BI", SEND_PACKET, 0xffffffff) + os.urandom(64))

    def case_short_send(self):
        s = self.session()
        return self.expect_close(s, frame(SEND_PACKET, os.urandom(10)))

    def case_truncated(self):
        s = self.session()
        s.send(struct.pack("!BI", SEND_PACKET, 100) + os.urandom(10))
        s.stream.sock.shutdown(socket.SHUT_WR)
        how, seen = self.outcome(s.stream)
        return how == "closed", "half a frame then EOF: " + how

    def case_truncated_header(self):
        s = self.session()
        s.send(b"\x04\x00\x00")
        s.stream.sock.shutdown(socket.SHUT_WR)
        how, seen = self.outcome(s.stream)
        return how == "closed", "3 header bytes then EOF: " + how

    def case_short_ping(self):
        return self.expect_close(self.session(), frame(PING, b"1234"))

    def case_long_ping(self):
        return self.expect_close(self.session(), frame(PING, os.urandom(1001)))

    def case_bad_note_preferred(self):
        return self.expect_close(self.session(), frame(NOTE_PREFERRED, b"\x01\x01"))

    def case_watchconns_no_meshkey(self):
        return self.expect_close(self.session(), frame(WATCH_CONNS))

    def case_forward_no_meshkey(self):
        return self.expect_close(self.session(), frame(FORWARD_PACKET, os.urandom(64) + b"x"))

    def case_closepeer_no_meshkey(self):
        return self.expect_close(self.session(), frame(CLOSE_PEER, os.urandom(32)))

    def pre_handshake(self, payload):
        st, netloc, path = self.raw()
        st.send(request(netloc, path), self.deadline())
        read_101(st, self.deadline())
        read_server_key(st, self.deadline())
        try:
            st.send(payload, self.deadline())
        except Closed as e:
            return True, "closed while we wrote (%s)" % e
        how, seen = self.outcome(st)
        st.sock.close()
        return how == "closed", how + (" after " + ",".join(seen) if seen else "")

    def case_no_clientinfo(self):
        return self.pre_handshake(frame(SEND_PACKET, os.urandom(40)))

    def case_clientinfo_not_json(self):
        st, netloc, path = self.raw()
        st.send(request(netloc, path), self.deadline())
        read_101(st, self.deadline())
        spub = read_server_key(st, self.deadline())
        priv = bytes(PrivateKey.generate())
        st.send(frame(CLIENT_INFO, public_of(priv) + seal(priv, spub, b"not json")), self.deadline())
        how, seen = self.outcome(st)
        st.sock.close()
        ok = how == "closed" and not any(x.startswith("unknown 0x03") for x in seen)
        return ok, how + (" after " + ",".join(seen) if seen else "")

    def case_clientinfo_huge(self):
        return self.pre_handshake(struct.pack("!BI", CLIENT_INFO, MAX_CLIENT_INFO + 1) + os.urandom(1000))

    def http_status(self, req):
        st, netloc, path = self.raw()
        st.send(req.replace(b"NETLOC", netloc.encode()), self.deadline())
        try:
            head = st.read_until(b"\r\n", 4096, self.deadline())
        except Closed:
            return "closed"
        except Timeout:
            return "open"
        finally:
            st.sock.close()
        return head.strip().decode("latin-1")

    def case_http_no_upgrade(self):
        got = self.http_status(b"GET /derp HTTP/1.1\r\nHost: NETLOC\r\n\r\n")
        return got.startswith("HTTP/1.1 426"), got

    def case_http_probe(self):
        got = self.http_status(b"GET /derp/probe HTTP/1.1\r\nHost: NETLOC\r\n\r\n")
        return got.startswith("HTTP/1.1 200"), got

    def case_http_generate_204(self):
        got = self.http_status(b"GET /generate_204 HTTP/1.1\r\nHost: NETLOC\r\n\r\n")
        return got.startswith("HTTP/1.1 204"), got

    def case_http_garbage(self):
        got = self.http_status(os.urandom(64).replace(b"\n", b"x") + b"\r\n\r\n")
        return not got.startswith("HTTP/1.1 101") and got != "open", got

    def case_alive(self):
        a, b = self.pair()
        a.send_packet(b.pub, b"still alive")
        got = self.recv_from(b, a.pub)
        shutdown(a)
        shutdown(b)
        return got == b"still alive", "relay after the other cases %s" % ("works" if got else "FAILED")


    # -------- what Tailscale's derper does, beyond the plain relay

    def case_keepalive_oversize(self):
        # derper handles no KeepAlive from a client: discarded at any size
        s = self.session()
        s.send(frame(KEEP_ALIVE, os.urandom(100)) + frame(KEEP_ALIVE, os.urandom(MAX_PACKET + 100)),
               self.deadline())
        ok = self.ping(s)
        shutdown(s)
        return ok, "KeepAlives of 100 and 65636 bytes %s" % ("skipped" if ok else "were fatal")

    def case_pong_odd_size(self):
        # nor a Pong: one of 4 bytes or of 100 is discarded, not an error
        s = self.session()
        s.send(frame(PONG, b"1234") + frame(PONG, os.urandom(100)) + frame(PONG))
        ok = self.ping(s)
        shutdown(s)
        return ok, "Pongs of 4, 100 and 0 bytes %s" % ("skipped" if ok else "were fatal")

    def case_clientinfo_null(self):
        # Go's json.Unmarshal takes null into a struct without complaint
        s = self.session(info=b"null")
        ok = self.ping(s)
        shutdown(s)
        return ok, "ClientInfo null %s" % ("admitted" if ok else "admitted, then no Pong")

    def quiet_until_pong(self, sess):
        """True if sess gets its Pong with no RecvPacket before it."""
        tok = os.urandom(8)
        sess.send(frame(PING, tok))
        deadline = self.deadline()
        try:
            while True:
                ftype, p = sess.stream.read_frame(deadline, MAX_CLIENT_FRAME)
                if ftype == RECV_PACKET:
                    return False
                if ftype == PONG and p[:8] == tok:
                    return True
        except (Closed, Timeout):
            return False

    def case_dup_last_active(self):
        # lastWriterIsActive: the older of two connections for one key
        # becomes the one that receives as soon as it sends any frame (here
        # a Ping), not only a SendPacket
        a = self.session()
        kb = bytes(PrivateKey.generate())
        b1 = self.session(kb)
        b2 = self.session(kb)
        if not self.ping(b1):
            return False, "no Pong on the older connection"
        a.send_packet(b1.pub, b"to the last writer")
        got = self.recv_from(b1, a.pub)
        quiet = self.quiet_until_pong(b2)
        for x in (a, b1, b2):
            shutdown(x)
        if got == b"to the last writer" and quiet:
            return True, "the older connection pinged and then received; the newer got nothing"
        return False, "after the older one pinged: older %s, newer %s" % (
            "received" if got else "got nothing", "got nothing" if quiet else "received")

    def case_dup_active_after_close(self):
        # when the connection that receives goes, derper gives its packets
        # to the one that most recently connected or sent: here the oldest,
        # which pinged after the second connected, not the second
        a = self.session()
        kb = bytes(PrivateKey.generate())
        b1 = self.session(kb)
        b2 = self.session(kb)
        if not self.ping(b1):
            return False, "no Pong on the oldest connection"
        b3 = self.session(kb)
        # end b3 and wait until the server has closed it (so has forgotten it)
        b3.stream.sock.shutdown(socket.SHUT_WR)
        how, _ = self.outcome(b3.stream)
        b3.stream.sock.close()
        if how != "closed":
            return False, "the server did not close the newest connection after its EOF (%s)" % how
        a.send_packet(b1.pub, b"after the newest left")
        got = self.recv_from(b1, a.pub)
        quiet = self.quiet_until_pong(b2)
        for x in (a, b1, b2):
            shutdown(x)
        if got == b"after the newest left" and quiet:
            return True, "the last to send before the newest came (the oldest) receives; the second got nothing"
        return False, "after the newest left: oldest %s, second %s" % (
            "received" if got else "got nothing", "got nothing" if quiet else "received")

    def watch_until(self, w, want, what):
        """Read w's PeerPresent frames until every key of want (key -> flags)
        was seen; (ok, text)."""
        seen = {}
        deadline = self.deadline()
        try:
            while any(k not in seen for k in want):
                ftype, p = w.stream.read_frame(deadline, MAX_CLIENT_FRAME)
                if ftype == PEER_PRESENT and len(p) >= KEYLEN:
                    seen[p[:KEYLEN]] = parse_present(p)[3]
        except (Closed, Timeout) as e:
            return False, "%s: %s; saw %d of %d" % (what, type(e).__name__, sum(k in seen for k in want), len(want))
        bad = ["%s 0x%02x (want 0x%02x)" % (n, seen[k], f) for k, (n, f) in want.items() if seen[k] != f]
        return not bad, what + (": " + ", ".join(bad) if bad else " as derper: " +
                                ", ".join("%s 0x%02x" % (n, f) for n, f in want.values()))

    def case_present_flags(self):
        # derper's presentFlags: IsRegular (0x01) only when no other flag
        # applies; IsMeshPeer 0x02, IsProber 0x04, NotIdeal 0x08 (Ideal-Node)
        w = self.mesh_session()
        w.send(frame(WATCH_CONNS))
        if not self.ping(w):
            return False, "the watcher got no Pong"
        conns = {
            "regular": self.session(),
            "prober": self.session(info=client_info(prober=True)),
            "not-ideal": self.session(ideal_node="1f"),
            "prober+not-ideal": self.session(info=client_info(prober=True), ideal_node="1f"),
            "mesh": self.mesh_session(),
        }
        flags = {"regular": 0x01, "prober": 0x04, "not-ideal": 0x08, "prober+not-ideal": 0x0c, "mesh": 0x02}
        ok, what = self.watch_until(w, {c.pub: (n, flags[n]) for n, c in conns.items()}, "PeerPresent flags")
        for c in list(conns.values()) + [w]:
            shutdown(c)
        return ok, what

    def case_watch_self(self):
        # derper's addWatcher lists every client, the watcher included
        other = self.session(info=client_info(prober=True))
        w = self.mesh_session()
        w.send(frame(WATCH_CONNS))
        ok, what = self.watch_until(w, {w.pub: ("watcher", 0x02), other.pub: ("prober", 0x04)},
                                    "first list")
        shutdown(w)
        shutdown(other)
        return ok, what

    def case_watchconns_payload(self):
        # derper: "handleFrameWatchConns wrong size", even with the mesh key
        return self.expect_close(self.mesh_session(), frame(WATCH_CONNS, b"x"))

    def case_closepeer_wrong_length(self):
        # derper: "handleFrameClosePeer wrong size" unless exactly a key
        victim = self.session()
        ok, what = self.expect_close(self.mesh_session(), frame(CLOSE_PEER, victim.pub + b"x"))
        alive = self.ping(victim)
        shutdown(victim)
        return ok and alive, what + ("; the named peer stays" if alive else "; the named peer was closed")

    def case_forward_nothere(self):
        # a ForwardPacket to a key not here: PeerGone(NotHere) back to the
        # mesh peer, for disco-looking packets only (as for SendPacket)
        m = self.mesh_session()
        src, dst, plain = os.urandom(KEYLEN), os.urandom(KEYLEN), os.urandom(KEYLEN)
        disco = DISCO_MAGIC + os.urandom(56)
        m.send(frame(FORWARD_PACKET, src + plain + b"not disco") + frame(FORWARD_PACKET, src + dst + disco))
        deadline = self.deadline()
        got = []
        try:
            while True:
                ftype, p = m.stream.read_frame(deadline, MAX_CLIENT_FRAME)
                if ftype == PEER_GONE:
                    got.append(describe(ftype, p))
                    if p[:KEYLEN] == dst:
                        break
        except (Closed, Timeout) as e:
            shutdown(m)
            return False, "no PeerGone for the disco packet (%s)" % type(e).__name__
        shutdown(m)
        want = "peergone %s nothere" % b64(dst)
        ok = got == [want]
        return ok, "PeerGone(NotHere) for the disco packet only" if ok else "got %s" % got

    CASES = ["unknown-type", "unknown-large", "max-packet", "oversize-packet", "huge-length",
             "short-send", "truncated", "truncated-header", "short-ping", "long-ping",
             "bad-note-preferred", "watchconns-no-meshkey", "forward-no-meshkey",
             "closepeer-no-meshkey", "no-clientinfo", "clientinfo-not-json", "clientinfo-huge",
             "http-no-upgrade", "http-probe", "http-generate-204", "http-garbage",
             "keepalive-oversize", "pong-odd-size", "clientinfo-null", "alive"]
    # Not run by default: the Python server does not keep duplicate
    # connections as derper does, nor mesh; these need --mesh-key.
    MORE = ["dup-last-active", "dup-active-after-close", "present-flags", "watch-self", "watchconns-payload",
            "closepeer-wrong-length", "forward-nothere"]


def run_garbage(args):
    g = Garbage(args)
    cases = args.cases or Garbage.CASES
    bad = 0
    for c in cases:
        if c not in Garbage.CASES + Garbage.MORE:
            raise ValueError("unknown case %r (cases: %s)" % (c, " ".join(Garbage.CASES + Garbage.MORE)))
        try:
            ok, what = getattr(g, "case_" + c.replace("-", "_"))()
        except (Closed, Timeout, Violation) as e:
            ok, what = False, "%s: %s" % (type(e).__name__, e)
        print(c, "ok" if ok else "FAIL", what, flush=True)
        bad += not ok
    return EXIT_OK if bad == 0 else EXIT_NO


# ---------------------------------------------------------------- crowd

def run_crowd(args):
    """Many unfinished handshakes from one address (as behind one NAT),
    then one real client."""
    held, refused, socks = 0, 0, []
    deadline = time.monotonic() + args.timeout
    try:
        for _ in range(args.n):
            try:
                st, netloc, path = dial(args.url, deadline, args)
                socks.append(st.sock)
                st.send(request(netloc, path), deadline)
                read_101(st, deadline)
                read_server_key(st, deadline)
                held += 1
            except (Closed, ConnectionError):
                refused += 1
        try:
            sess = connect(args.url, bytes(PrivateKey.generate()), args, deadline)
            shutdown(sess)
            ok = True
        except (Closed, ConnectionError):
            ok = False
    finally:
        for sk in socks:
            sk.close()
    print("held %d refused %d connect %s" % (held, refused, "ok" if ok else "refused"), flush=True)
    return EXIT_OK if ok else EXIT_NO


# ---------------------------------------------------------------- main

def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def main(argv):
    ap = argparse.ArgumentParser(prog="derppeer.py", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("vectors")
    sub.add_parser("genkey")
    p = sub.add_parser("pubkey")
    p.add_argument("--key-file")
    p.add_argument("--hex", action="store_true")

    def tls(p):
        p.add_argument("--insecure", action="store_true")
        p.add_argument("--cafile")
        p.add_argument("--pin")

    p = sub.add_parser("server")
    p.add_argument("--listen", required=True)
    p.add_argument("--key-file")
    p.add_argument("--keepalive", type=float, default=60.0)
    p.add_argument("--ping-interval", type=float, default=0.0)
    p.add_argument("--inject-unknown", action="store_true")
    p.add_argument("--write-timeout", type=float, default=2.0)
    p.add_argument("--evil", choices=["bad-magic", "bad-serverinfo"])
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")

    p = sub.add_parser("client")
    p.add_argument("url")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--key-file")
    g.add_argument("--gen", action="store_true")
    p.add_argument("--send", nargs=2, action="append", metavar=("PEER", "TEXT"))
    p.add_argument("--send-hex", nargs=2, action="append", metavar=("PEER", "HEX"))
    p.add_argument("--send-random", nargs=2, action="append", metavar=("PEER", "SIZE"))
    p.add_argument("--recv", type=int, default=0)
    p.add_argument("--echo", action="store_true")
    p.add_argument("--wait", action="append")
    p.add_argument("--hold", action="store_true")
    p.add_argument("--digest", action="store_true")
    p.add_argument("--expect-101-exact", action="store_true")
    p.add_argument("--fast-start", action="store_true")
    p.add_argument("--server-key")
    p.add_argument("--no-ping", action="store_true")
    p.add_argument("--note-preferred", action="store_true")
    p.add_argument("--stdio", metavar="PEER")
    p.add_argument("--timeout", type=float, default=10.0)
    tls(p)

    p = sub.add_parser("impersonate")
    p.add_argument("url")
    p.add_argument("pubkey")
    p.add_argument("--mode", choices=["other-key", "zero-box", "short"], default="other-key")
    p.add_argument("--to")
    p.add_argument("--timeout", type=float, default=5.0)
    tls(p)

    p = sub.add_parser("garbage")
    p.add_argument("url")
    p.add_argument("cases", nargs="*")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--mesh-key")
    tls(p)

    p = sub.add_parser("crowd")
    p.add_argument("url")
    p.add_argument("n", type=int)
    p.add_argument("--timeout", type=float, default=8.0)
    tls(p)

    args = ap.parse_args(argv[1:])
    try:
        if args.cmd == "vectors":
            return check_vectors()
        if args.cmd == "genkey":
            print(b64(bytes(PrivateKey.generate())))
            return EXIT_OK
        if args.cmd == "pubkey":
            k = read_private(args.key_file) if args.key_file else parse_key(sys.stdin.read())
            if k is None:
                raise ValueError("stdin: not a base64 or hex private key")
            pub = public_of(k)
            print(pub.hex() if args.hex else b64(pub))
            return EXIT_OK
        if args.cmd == "server":
            priv = read_private(args.key_file) if args.key_file else bytes(PrivateKey.generate())
            Server(args, priv).serve(*hostport(args.listen))
            return EXIT_OK
        if args.cmd == "client":
            if args.fast_start and (not args.server_key or parse_key(args.server_key) is None):
                raise ValueError("--fast-start needs --server-key KEY")
            return run_client(args)
        if args.cmd == "impersonate":
            return run_impersonate(args)
        if args.cmd == "garbage":
            return run_garbage(args)
        if args.cmd == "crowd":
            return run_crowd(args)
    except ValueError as e:
        log(e)
        return EXIT_USAGE
    except Violation as e:
        log("protocol:", e)
        return EXIT_NO
    except (Closed, Timeout, OSError) as e:
        log("network:", type(e).__name__, e)
        return EXIT_NET
    except KeyboardInterrupt:
        return EXIT_NET
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main(sys.argv))
