/* SPDX-License-Identifier: MIT */
/*
 * TLS for DERP through OpenSSL, on non-blocking sockets driven by an
 * event loop: contexts for a server (certificate files, or a self-signed
 * ECDSA P-256 certificate made once and kept) and a client (system CAs,
 * a CA file, Tailscale's "sha256-raw:" pin of the DER certificate, or no
 * verification), and connections whose handshake, read and write return
 * "would block" with the direction to wait for.
 */
#ifndef MK_TLS_H
#define MK_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MK_TLS_PIN_LEN	32

/* What a call that would block is waiting for (epoll events). */
#define MK_TLS_WANT_READ	1
#define MK_TLS_WANT_WRITE	2

struct mk_tls_ctx;
struct mk_tls;

/* A server context from PEM files (chain and key). 0, or -1 with *why. */
int mk_tls_server_files(struct mk_tls_ctx **out, const char *cert,
    const char *key, const char **why);
/*
 * A server context with a self-signed certificate for name (an IP address
 * becomes an IP subjectAltName, anything else a DNS one; NULL: none). With
 * dir, the certificate and its key are read from dir/tls.crt and
 * dir/tls.key, or made and written there (0600) when both are missing, so
 * that a restart keeps the certificate and pins stay valid. dir NULL: a
 * fresh certificate in memory. *made tells whether it was new.
 */
int mk_tls_server_selfsigned(struct mk_tls_ctx **out, const char *dir,
    const char *name, bool *made, const char **why);
/*
 * A client context. pin (32 bytes) accepts exactly the certificate whose
 * DER hashes to it, whatever its name or issuer, as Tailscale's CertName
 * "sha256-raw:" does; else cafile (NULL: the system's CAs) with the name
 * checked; insecure checks nothing.
 */
int mk_tls_client_ctx(struct mk_tls_ctx **out, const char *cafile,
    const uint8_t *pin, bool insecure, const char **why);
void mk_tls_ctx_free(struct mk_tls_ctx *c);
/* SHA-256 of the server certificate's DER (the pin). 0 or -1. */
int mk_tls_ctx_pin(const struct mk_tls_ctx *c, uint8_t out[MK_TLS_PIN_LEN]);

/*
 * Whether the context's certificate is valid for name (a DNS name or an IP
 * address) by its subjectAltName, as Go's VerifyHostname decides, which
 * Tailscale's clients apply even to a pinned certificate.
 */
bool mk_tls_ctx_matches(const struct mk_tls_ctx *c, const char *name);

/* "sha256-raw:<64 hex>" into 32 bytes. 0 or -1. */
int mk_tls_pin_parse(uint8_t out[MK_TLS_PIN_LEN], const char *s);

/*
 * A connection on a connected non-blocking socket (not owned: the caller
 * closes fd). host: the client's server name, for SNI (names only) and
 * verification; NULL on the server. 0, or -1 with *why.
 */
int mk_tls_new(struct mk_tls **out, struct mk_tls_ctx *c, int fd,
    const char *host, const char **why);
void mk_tls_free(struct mk_tls *t);

/*
 * Drive the handshake: 1 done, 0 would block (mk_tls_want says on what),
 * -1 failed with *why (verification, protocol, pin mismatch...).
 */
int mk_tls_handshake(struct mk_tls *t, const char **why);
/*
 * Read or write like read(2)/write(2): bytes moved; 0 from read at the
 * end of the stream; -1 with errno EAGAIN (see mk_tls_want) or another
 * errno (EPROTO for a TLS error, with *why).
 */
ssize_t mk_tls_read(struct mk_tls *t, void *buf, size_t len,
    const char **why);
ssize_t mk_tls_write(struct mk_tls *t, const void *buf, size_t len,
    const char **why);
/* The events the last call that would block waits for. */
int mk_tls_want(const struct mk_tls *t);
/* Decrypted bytes waiting inside the library (epoll cannot see them). */
bool mk_tls_pending(const struct mk_tls *t);
/* "TLSv1.3" */
const char *mk_tls_version(const struct mk_tls *t);

/*
 * The DERP server's public key from a Tailscale "meta cert" in the peer's
 * chain (TLS 1.3 only), after the handshake: 0, or -1 when there is none.
 * Only a key learned this way lets a client fast-start.
 */
int mk_tls_peer_derp_key(const struct mk_tls *t, uint8_t out[32]);

#endif
