#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""derp-metacert.py HEXKEY OUT.crt [SERIAL]: Tailscale's DERP "meta cert"
(derpserver.initMetacert): a self-signed ed25519 certificate whose subject
CN is "derpkey" + the server's public key in hex and whose serial number is
the protocol version (2), valid for 30 days either side of now. Appended to
a TLS server's chain, it tells clients the server's key before the DERP
handshake. Made with python3-cryptography: OpenSSL's req caps a CN at 64
characters and this one has 71."""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

hexkey, out = sys.argv[1], sys.argv[2]
serial = int(sys.argv[3]) if len(sys.argv) > 3 else 2
key = ed25519.Ed25519PrivateKey.generate()
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "derpkey" + hexkey)])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, None))
with open(out, "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
