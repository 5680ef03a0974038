/* SPDX-License-Identifier: MIT */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util.h"

struct mk_tls_ctx {
	SSL_CTX		*ssl;
	bool		 server;
	bool		 has_pin;
	bool		 insecure;
	uint8_t		 pin[MK_TLS_PIN_LEN];
};

struct mk_tls {
	SSL			*ssl;
	const struct mk_tls_ctx	*ctx;
	int			 want;
	bool			 done;
};

/* OpenSSL's queued error as one line; static, as *why strings are. */
static const char *
ssl_why(const char *fallback)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return fallback;
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static SSL_CTX *
new_ctx(bool server, const char **why)
{
	SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() :
	    TLS_client_method());

	if (c == NULL) {
		*why = ssl_why("SSL_CTX_new failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	/*
	 * Memory per idle connection is what limits a relay: give the
	 * record buffers back whenever they are empty, keep no session
	 * cache and send no TLS 1.3 tickets nobody will use. Partial writes
	 * let the caller keep its own queue as the only copy of the data.
	 */
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	if (server) {
		SSL_CTX_set_num_tickets(c, 0);
		SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
	}
	return c;
}

static struct mk_tls_ctx *
wrap(SSL_CTX *s, bool server)
{
	struct mk_tls_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		SSL_CTX_free(s);
		return NULL;
	}
	c->ssl = s;
	c->server = server;
	return c;
}

int
mk_tls_server_files(struct mk_tls_ctx **out, const char *cert,
    const char *key, const char **why)
{
	SSL_CTX *s;

	if ((s = new_ctx(true, why)) == NULL)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(s, cert) != 1) {
		*why = ssl_why("cannot load the certificate");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) != 1) {
		*why = ssl_why("cannot load the key");
		goto fail;
	}
	if (SSL_CTX_check_private_key(s) != 1) {
		*why = "the key does not match the certificate";
		goto fail;
	}
	if ((*out = wrap(s, true)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	return 0;
fail:
	SSL_CTX_free(s);
	return -1;
}

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (e == NULL)
		return -1;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok == 1 ? 0 : -1;
}

/* A subjectAltName of one DNS name or IP address, built as ASN.1 rather
 * than from OpenSSL's "DNS:..." configuration syntax, in which a comma in
 * the name would add another entry. */
static int
add_san(X509 *x, const char *name)
{
	unsigned char ip[16];
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *dns = NULL;
	ASN1_OCTET_STRING *addr = NULL;
	int iplen = 0, ok = 0;

	if (inet_pton(AF_INET, name, ip) == 1)
		iplen = 4;
	else if (inet_pton(AF_INET6, name, ip) == 1)
		iplen = 16;
	if (gens == NULL || g == NULL)
		goto out;
	if (iplen > 0) {
		if ((addr = ASN1_OCTET_STRING_new()) == NULL ||
		    ASN1_OCTET_STRING_set(addr, ip, iplen) != 1)
			goto out;
		GENERAL_NAME_set0_value(g, GEN_IPADD, addr);
		addr = NULL;
	} else {
		if ((dns = ASN1_IA5STRING_new()) == NULL ||
		    ASN1_STRING_set(dns, name, -1) != 1)
			goto out;
		GENERAL_NAME_set0_value(g, GEN_DNS, dns);
		dns = NULL;
	}
	if (sk_GENERAL_NAME_push(gens, g) == 0)
		goto out;
	g = NULL;
	ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) == 1;
out:
	ASN1_IA5STRING_free(dns);
	ASN1_OCTET_STRING_free(addr);
	GENERAL_NAME_free(g);
	GENERAL_NAMES_free(gens);
	return ok ? 0 : -1;
}

/* A self-signed ECDSA P-256 certificate, ten years long (a pin, not an
 * expiry, is what clients of a self-signed relay rely on). */
static int
make_cert(const char *name, EVP_PKEY **pkey_out, X509 **x_out,
    const char **why)
{
	EVP_PKEY *pkey;
	X509 *x = NULL;
	X509_NAME *subj;
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	const char *cn = name != NULL ? name : "derpcat";

	if ((pkey = EVP_EC_gen("P-256")) == NULL) {
		*why = ssl_why("cannot make an EC key");
		return -1;
	}
	if ((x = X509_new()) == NULL)
		goto fail;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f;
	if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto fail;
	if (X509_set_version(x, 2) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -24 * 3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600) ==
	    NULL || X509_set_pubkey(x, pkey) != 1)
		goto fail;
	subj = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, subj) != 1)
		goto fail;
	/* Tailscale's clients check the name even against a pinned
	 * certificate (tlsdial's SetConfigExpectedCertHash) */
	if (name != NULL && add_san(x, name) != 0)
		goto fail;
	if (add_ext(x, NID_key_usage, "critical,digitalSignature") != 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") != 0)
		goto fail;
	if (X509_sign(x, pkey, EVP_sha256()) == 0)
		goto fail;
	BN_free(bn);
	*pkey_out = pkey;
	*x_out = x;
	return 0;
fail:
	*why = ssl_why("cannot make a certificate");
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return -1;
}

/* PEM of a certificate or key into a malloc'd buffer. */
static char *
to_pem(X509 *x, EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out = NULL;
	long n;
	int ok;

	if (b == NULL)
		return NULL;
	ok = x != NULL ? PEM_write_bio_X509(b, x) :
	    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	if (ok == 1 && (n = BIO_get_mem_data(b, &p)) > 0 &&
	    (out = malloc((size_t)n)) != NULL) {
		memcpy(out, p, (size_t)n);
		*len = (size_t)n;
	}
	BIO_free(b);
	return out;
}

static int
save_cert(const char *dir, X509 *x, EVP_PKEY *k, const char **why)
{
	char path[PATH_MAX];
	char *pem;
	size_t len = 0;
	int rc;

	/* the key first: a certificate without its key is useless */
	if ((pem = to_pem(NULL, k, &len)) == NULL) {
		*why = "cannot encode the key";
		return -1;
	}
	snprintf(path, sizeof(path), "%s/tls.key", dir);
	rc = mk_file_replace(path, pem, len, 0600);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (rc != 0) {
		*why = "cannot write tls.key";
		return -1;
	}
	if ((pem = to_pem(x, NULL, &len)) == NULL) {
		*why = "cannot encode the certificate";
		return -1;
	}
	snprintf(path, sizeof(path), "%s/tls.crt", dir);
	rc = mk_file_replace(path, pem, len, 0644);
	free(pem);
	if (rc != 0) {
		*why = "cannot write tls.crt";
		return -1;
	}
	return 0;
}

int
mk_tls_server_selfsigned(struct mk_tls_ctx **out, const char *dir,
    const char *name, bool *made, const char **why)
{
	char crt[PATH_MAX], key[PATH_MAX];
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	SSL_CTX *s;
	bool have_crt, have_key;

	*made = false;
	if (dir != NULL) {
		snprintf(crt, sizeof(crt), "%s/tls.crt", dir);
		snprintf(key, sizeof(key), "%s/tls.key", dir);
		have_crt = access(crt, F_OK) == 0;
		have_key = access(key, F_OK) == 0;
		if (have_crt && have_key)
			return mk_tls_server_files(out, crt, key, why);
		if (have_crt != have_key) {
			*why = have_crt ? "tls.crt without tls.key" :
			    "tls.key without tls.crt";
			return -1;
		}
	}
	if (make_cert(name, &k, &x, why) != 0)
		return -1;
	if (dir != NULL && save_cert(dir, x, k, why) != 0)
		goto fail;
	if ((s = new_ctx(true, why)) == NULL)
		goto fail;
	if (SSL_CTX_use_certificate(s, x) != 1 ||
	    SSL_CTX_use_PrivateKey(s, k) != 1) {
		*why = ssl_why("cannot use the certificate");
		SSL_CTX_free(s);
		goto fail;
	}
	X509_free(x);
	EVP_PKEY_free(k);
	if ((*out = wrap(s, true)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	*made = true;
	return 0;
fail:
	X509_free(x);
	EVP_PKEY_free(k);
	return -1;
}

int
mk_tls_client_ctx(struct mk_tls_ctx **out, const char *cafile,
    const uint8_t *pin, bool insecure, const char **why)
{
	SSL_CTX *s;

	if ((s = new_ctx(false, why)) == NULL)
		return -1;
	if (pin == NULL && !insecure) {
		int ok = cafile != NULL ?
		    SSL_CTX_load_verify_locations(s, cafile, NULL) :
		    SSL_CTX_set_default_verify_paths(s);

		if (ok != 1) {
			*why = ssl_why("cannot load the CA certificates");
			SSL_CTX_free(s);
			return -1;
		}
		SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
	} else
		SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
	if ((*out = wrap(s, false)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	(*out)->insecure = insecure;
	if (pin != NULL) {
		(*out)->has_pin = true;
		memcpy((*out)->pin, pin, MK_TLS_PIN_LEN);
	}
	return 0;
}

void
mk_tls_ctx_free(struct mk_tls_ctx *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ssl);
	free(c);
}

static int
cert_hash(X509 *x, uint8_t out[MK_TLS_PIN_LEN])
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);

	if (n <= 0)
		return -1;
	SHA256(der, (size_t)n, out);
	OPENSSL_free(der);
	return 0;
}

int
mk_tls_ctx_pin(const struct mk_tls_ctx *c, uint8_t out[MK_TLS_PIN_LEN])
{
	X509 *x = SSL_CTX_get0_certificate(c->ssl);

	return x == NULL ? -1 : cert_hash(x, out);
}

bool
mk_tls_ctx_matches(const struct mk_tls_ctx *c, const char *name)
{
	X509 *x = SSL_CTX_get0_certificate(c->ssl);
	unsigned char ip[16];

	if (x == NULL)
		return false;
	if (inet_pton(AF_INET, name, ip) == 1 ||
	    inet_pton(AF_INET6, name, ip) == 1)
		return X509_check_ip_asc(x, name, 0) == 1;
	/* as Go's VerifyHostname: the subjectAltName only, never the CN */
	return X509_check_host(x, name, strlen(name),
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1;
}

int
mk_tls_pin_parse(uint8_t out[MK_TLS_PIN_LEN], const char *s)
{
	if (strncmp(s, "sha256-raw:", 11) != 0)
		return -1;
	return mk_hex_decode(out, MK_TLS_PIN_LEN, s + 11, strlen(s + 11));
}

int
mk_tls_new(struct mk_tls **out, struct mk_tls_ctx *c, int fd,
    const char *host, const char **why)
{
	struct mk_tls *t = calloc(1, sizeof(*t));
	unsigned char ip[16];
	bool isip;

	if (t == NULL) {
		*why = "out of memory";
		return -1;
	}
	t->ctx = c;
	if ((t->ssl = SSL_new(c->ssl)) == NULL ||
	    SSL_set_fd(t->ssl, fd) != 1) {
		*why = ssl_why("SSL_new failed");
		goto fail;
	}
	if (c->server) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		isip = host != NULL && (inet_pton(AF_INET, host, ip) == 1 ||
		    inet_pton(AF_INET6, host, ip) == 1);
		if (host != NULL && !isip &&
		    SSL_set_tlsext_host_name(t->ssl, host) != 1) {
			*why = ssl_why("bad server name");
			goto fail;
		}
		if (host != NULL && !c->has_pin && !c->insecure) {
			int ok = isip ? X509_VERIFY_PARAM_set1_ip_asc(
			    SSL_get0_param(t->ssl), host) :
			    SSL_set1_host(t->ssl, host);

			if (ok != 1) {
				*why = ssl_why("bad server name");
				goto fail;
			}
		}
	}
	*out = t;
	return 0;
fail:
	SSL_free(t->ssl);
	free(t);
	return -1;
}

void
mk_tls_free(struct mk_tls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	free(t);
}

/* Map an SSL_get_error result: -1 with errno EAGAIN and want set, or
 * -1 with another errno and *why. */
static int
ssl_fail(struct mk_tls *t, int r, const char **why)
{
	int e = SSL_get_error(t->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		t->want = MK_TLS_WANT_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		t->want = MK_TLS_WANT_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			errno = EPIPE;
		*why = strerror(errno);
		ERR_clear_error();
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		errno = 0;
		*why = "closed";
		return -1;
	default:
		*why = ssl_why("TLS error");
		errno = EPROTO;
		return -1;
	}
}

static int
check_pin(struct mk_tls *t, const char **why)
{
	uint8_t h[MK_TLS_PIN_LEN];
	X509 *x = SSL_get1_peer_certificate(t->ssl);
	int rc;

	if (x == NULL) {
		*why = "the server sent no certificate";
		return -1;
	}
	rc = cert_hash(x, h);
	X509_free(x);
	if (rc != 0 || CRYPTO_memcmp(h, t->ctx->pin, sizeof(h)) != 0) {
		*why = "the server's certificate does not match the pin";
		return -1;
	}
	return 0;
}

int
mk_tls_handshake(struct mk_tls *t, const char **why)
{
	int r;

	if (t->done)
		return 1;
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(t->ssl);
	if (r != 1) {
		if (ssl_fail(t, r, why) != 0 && errno == EAGAIN)
			return 0;
		if (SSL_get_verify_result(t->ssl) != X509_V_OK)
			*why = X509_verify_cert_error_string(
			    SSL_get_verify_result(t->ssl));
		return -1;
	}
	if (!t->ctx->server && t->ctx->has_pin && check_pin(t, why) != 0)
		return -1;
	t->done = true;
	t->want = 0;
	return 1;
}

ssize_t
mk_tls_read(struct mk_tls *t, void *buf, size_t len, const char **why)
{
	size_t n = 0;
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(t->ssl, buf, len, &n);
	if (r == 1)
		return (ssize_t)n;
	if (SSL_get_error(t->ssl, r) == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (ssl_fail(t, r, why) != 0 && errno == 0)
		return 0;
	return -1;
}

ssize_t
mk_tls_write(struct mk_tls *t, const void *buf, size_t len, const char **why)
{
	size_t n = 0;
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_write_ex(t->ssl, buf, len, &n);
	if (r == 1)
		return (ssize_t)n;
	ssl_fail(t, r, why);
	if (errno == 0)
		errno = EPIPE;
	return -1;
}

int
mk_tls_want(const struct mk_tls *t)
{
	return t->want;
}

bool
mk_tls_pending(const struct mk_tls *t)
{
	return SSL_has_pending(t->ssl) == 1;
}

const char *
mk_tls_version(const struct mk_tls *t)
{
	return SSL_get_version(t->ssl);
}

/*
 * Tailscale's "meta cert" (derpserver.initMetacert, derphttp parseMetaCert):
 * an extra self-signed certificate in the server's chain whose subject CN
 * is "derpkey" and the server's public key in hex, with the protocol
 * version as its serial number (at most 8 bits). Looked at only under
 * TLS 1.3, where the chain travels encrypted.
 */
int
mk_tls_peer_derp_key(const struct mk_tls *t, uint8_t out[32])
{
	STACK_OF(X509) *chain;
	char cn[128];
	int i, n;

	if (SSL_version(t->ssl) < TLS1_3_VERSION ||
	    (chain = SSL_get_peer_cert_chain(t->ssl)) == NULL)
		return -1;
	for (i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
		BIGNUM *bn;
		int bits;

		n = X509_NAME_get_text_by_NID(X509_get_subject_name(x),
		    NID_commonName, cn, sizeof(cn));
		if (n != 7 + 64 || strncmp(cn, "derpkey", 7) != 0)
			continue;
		if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) == NULL)
			continue;
		bits = BN_num_bits(bn);
		BN_free(bn);
		if (bits > 8 || bits == 0)
			continue;
		if (mk_hex_decode(out, 32, cn + 7, 64) == 0)
			return 0;
	}
	return -1;
}
