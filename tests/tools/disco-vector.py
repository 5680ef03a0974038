#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Recompute the self-computed disco packet of protocols.md §3.3 without
lib/disco.c: once in pure Python (X25519, HSalsa20, XSalsa20, Poly1305
written out here, so no libsodium at all) and once with PyNaCl
(python3-nacl) when it is installed.

  disco-vector.py          print keys, shared key and packet; exit 1 on a mismatch
  disco-vector.py open HEX open a packet sent A -> B (pure Python), print the plaintext

A priv = 32 x 11, B priv = 32 x 22, nonce = 00..17, plaintext = ping with
TxID 01..0c (no node key, no padding).
"""
import binascii
import sys

MAGIC = b"TS\xf0\x9f\x92\xac"
A_PRIV = bytes([0x11]) * 32
B_PRIV = bytes([0x22]) * 32
NONCE = bytes(range(24))
PING = bytes([0x01, 0x00]) + bytes(range(1, 13))

EXPECT_SHARED = "8abe7c8ae6800b76d4f5986b04b77f6e9b4f332403c90df02428336e8bd9b525"
EXPECT_PACKET = (
    "5453f09f92ac"
    "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13"
    "000102030405060708090a0b0c0d0e0f1011121314151617"
    "209ba14dbad5083e2f98856cb9320c265a8c18945d97ffce3da53ca6da5d")

# ---- RFC 7748 X25519 ----
P25519 = 2 ** 255 - 19


def x25519(k, u):
    k = bytearray(k)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1
        if swap ^ kt:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b = x2 + z2, x2 - z2
        aa, bb = a * a % P25519, b * b % P25519
        e = aa - bb
        c, d = x3 + z3, x3 - z3
        da, cb = d * a, c * b
        x3 = (da + cb) ** 2 % P25519
        z3 = x1 * (da - cb) ** 2 % P25519
        x2 = aa * bb % P25519
        z2 = e * (aa + 121665 * e) % P25519
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P25519 - 2, P25519) % P25519).to_bytes(32, "little")


# ---- Salsa20 family ----
SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]


def _rotl(v, n):
    v &= 0xffffffff
    return ((v << n) | (v >> (32 - n))) & 0xffffffff


def _rounds(key, inp):
    def w(b):
        return [int.from_bytes(b[i:i + 4], "little") for i in range(0, len(b), 4)]
    k, n = w(key), w(inp)
    x = [SIGMA[0]] + k[:4] + [SIGMA[1]] + n + [SIGMA[2]] + k[4:] + [SIGMA[3]]
    y = list(x)

    def qr(a, b, c, d):
        y[b] ^= _rotl(y[a] + y[d], 7)
        y[c] ^= _rotl(y[b] + y[a], 9)
        y[d] ^= _rotl(y[c] + y[b], 13)
        y[a] ^= _rotl(y[d] + y[c], 18)
    for _ in range(10):
        qr(0, 4, 8, 12); qr(5, 9, 13, 1); qr(10, 14, 2, 6); qr(15, 3, 7, 11)
        qr(0, 1, 2, 3); qr(5, 6, 7, 4); qr(10, 11, 8, 9); qr(15, 12, 13, 14)
    return x, y


def hsalsa20(key, inp16):
    _, y = _rounds(key, inp16)
    return b"".join(y[i].to_bytes(4, "little") for i in (0, 5, 10, 15, 6, 7, 8, 9))


def xsalsa20_stream(key, nonce24, n):
    sub = hsalsa20(key, nonce24[:16])
    out = b""
    ctr = 0
    while len(out) < n:
        x, y = _rounds(sub, nonce24[16:] + ctr.to_bytes(8, "little"))
        out += b"".join(((a + b) & 0xffffffff).to_bytes(4, "little") for a, b in zip(x, y))
        ctr += 1
    return out[:n]


def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0ffffffc0ffffffc0ffffffc0fffffff
    s = int.from_bytes(key[16:], "little")
    p, acc = (1 << 130) - 5, 0
    for i in range(0, len(msg), 16):
        acc = (acc + int.from_bytes(msg[i:i + 16] + b"\x01", "little")) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def beforenm(peer_pub, my_priv):
    return hsalsa20(x25519(my_priv, peer_pub), bytes(16))


def seal_afternm(shared, nonce, msg):
    ks = xsalsa20_stream(shared, nonce, 32 + len(msg))
    ct = bytes(a ^ b for a, b in zip(msg, ks[32:]))
    return poly1305(ks[:32], ct) + ct


def open_afternm(shared, nonce, box):
    ks = xsalsa20_stream(shared, nonce, len(box) + 16)
    if len(box) < 16 or poly1305(ks[:32], box[16:]) != box[:16]:
        return None
    return bytes(a ^ b for a, b in zip(box[16:], ks[32:]))


def hx(b):
    return binascii.hexlify(b).decode()


def main():
    base = (9).to_bytes(32, "little")
    a_pub, b_pub = x25519(A_PRIV, base), x25519(B_PRIV, base)
    if len(sys.argv) == 3 and sys.argv[1] == "open":
        pkt = binascii.unhexlify(sys.argv[2])
        if len(pkt) < 78 or pkt[:6] != MAGIC or pkt[6:38] != a_pub:
            print("not a disco packet from A", file=sys.stderr)
            return 1
        pt = open_afternm(beforenm(a_pub, B_PRIV), pkt[38:62], pkt[62:])
        if pt is None:
            print("does not open", file=sys.stderr)
            return 1
        print(hx(pt))
        return 0

    shared = beforenm(b_pub, A_PRIV)
    pkt = MAGIC + a_pub + NONCE + seal_afternm(shared, NONCE, PING)
    print("A pub  ", hx(a_pub))
    print("B pub  ", hx(b_pub))
    print("shared ", hx(shared))
    print("packet ", hx(pkt), len(pkt))
    ok = hx(shared) == EXPECT_SHARED and hx(pkt) == EXPECT_PACKET
    ok = ok and beforenm(a_pub, B_PRIV) == shared
    ok = ok and open_afternm(shared, NONCE, pkt[62:]) == PING
    print("pure python:", "ok" if ok else "MISMATCH")
    try:
        from nacl.public import Box, PrivateKey
    except ImportError:
        print("pynacl: not installed")
        return 0 if ok else 1
    a, b = PrivateKey(A_PRIV), PrivateKey(B_PRIV)
    box = Box(a, b.public_key)
    # PyNaCl's encrypt returns nonce || tag || ciphertext
    npkt = MAGIC + bytes(a.public_key) + NONCE + box.encrypt(PING, NONCE)[24:]
    nok = hx(box.shared_key()) == EXPECT_SHARED and hx(npkt) == EXPECT_PACKET
    nok = nok and Box(b, a.public_key).decrypt(npkt[62:], npkt[38:62]) == PING
    print("pynacl:", "ok" if nok else "MISMATCH")
    return 0 if ok and nok else 1


sys.exit(main())
