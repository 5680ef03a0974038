# SPDX-License-Identifier: MIT
"""bigconf.py PEERS EXTRA: a wg(8) config with PEERS peers, each allowed one
/32 of 10.64.0.0/10, the first also EXTRA /32s of 10.200.0.0/16 (so one
peer's allowed IPs span several netlink messages too). Random keys: any 32
bytes are a public key to WireGuard's configuration."""
import base64
import os
import sys


def key():
    return base64.b64encode(os.urandom(32)).decode()


def main():
    peers, extra = int(sys.argv[1]), int(sys.argv[2])
    out = ["[Interface]", "PrivateKey = " + key(), "ListenPort = 51999", ""]
    for i in range(peers):
        ips = ["10.%d.%d.%d/32" % (64 + (i >> 16), (i >> 8) & 255, i & 255)]
        if i == 0:
            ips += ["10.200.%d.%d/32" % (j >> 8, j & 255) for j in range(extra)]
        out += ["[Peer]", "PublicKey = " + key()]
        # repeated AllowedIPs lines add up; keep each line short
        out += ["AllowedIPs = " + ", ".join(ips[k:k + 100])
                for k in range(0, len(ips), 100)]
        out += [""]
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
