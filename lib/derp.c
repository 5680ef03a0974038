/* SPDX-License-Identifier: MIT */
#include "derp.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static const struct {
	uint8_t		 type;
	const char	*name;
} type_names[] = {
	{ MK_DERP_SERVER_KEY, "ServerKey" },
	{ MK_DERP_CLIENT_INFO, "ClientInfo" },
	{ MK_DERP_SERVER_INFO, "ServerInfo" },
	{ MK_DERP_SEND_PACKET, "SendPacket" },
	{ MK_DERP_RECV_PACKET, "RecvPacket" },
	{ MK_DERP_KEEP_ALIVE, "KeepAlive" },
	{ MK_DERP_NOTE_PREFERRED, "NotePreferred" },
	{ MK_DERP_PEER_GONE, "PeerGone" },
	{ MK_DERP_PEER_PRESENT, "PeerPresent" },
	{ MK_DERP_FORWARD_PACKET, "ForwardPacket" },
	{ MK_DERP_WATCH_CONNS, "WatchConns" },
	{ MK_DERP_CLOSE_PEER, "ClosePeer" },
	{ MK_DERP_PING, "Ping" },
	{ MK_DERP_PONG, "Pong" },
	{ MK_DERP_HEALTH, "Health" },
	{ MK_DERP_RESTARTING, "Restarting" },
};

const char *
mk_derp_type_name(uint8_t type)
{
	size_t i;

	for (i = 0; i < MK_ARRAY_LEN(type_names); i++)
		if (type_names[i].type == type)
			return type_names[i].name;
	return "unknown";
}



int
mk_derp_hdr_get(const uint8_t *buf, size_t len, uint8_t *type,
    uint32_t *flen)
{
	if (len < MK_DERP_HDR_LEN)
		return 0;
	*type = buf[0];
	*flen = mk_get32(buf + 1);
	return 1;
}

void
mk_derp_hdr_put(uint8_t *out, uint8_t type, uint32_t flen)
{
	out[0] = type;
	mk_put32(out + 1, flen);
}

/* ---- parsing ---- */

static int
bad(const char **why, const char *reason)
{
	*why = reason;
	return -1;
}

static int
parse_packet(struct mk_derp_frame *f, const uint8_t *p, size_t len,
    size_t nkeys, const char **why)
{
	if (len < 32 * nkeys)
		return bad(why, "packet frame shorter than its keys");
	if (len - 32 * nkeys > MK_DERP_MAX_PACKET)
		return bad(why, "packet larger than 64 KiB");
	if (nkeys > 0)
		f->key = p;
	if (nkeys > 1)
		f->key2 = p + 32;
	f->data = p + 32 * nkeys;
	f->data_len = len - 32 * nkeys;
	return 0;
}

static void
parse_present(struct mk_derp_frame *f, const uint8_t *p, size_t len)
{
	/* Tolerant, as Go's: the key alone from old servers, then the
	 * address and port, then the flags. */
	f->key = p;
	if (len >= 32 + 18) {
		mk_addr_from_v6(&f->addr, p + 32,
		    (uint16_t)(p[48] << 8 | p[49]));
		mk_addr_unmap(&f->addr);
		if (mk_addr_is_any(&f->addr) && mk_addr_port(&f->addr) == 0)
			f->addr.len = 0;
	}
	if (len >= MK_DERP_PEER_PRESENT_LEN)
		f->flags = p[50];
}

int
mk_derp_frame_parse(struct mk_derp_frame *f, uint8_t type,
    const uint8_t *p, size_t len, int version, const char **why)
{
	memset(f, 0, sizeof(*f));
	f->type = type;
	switch (type) {
	case MK_DERP_SERVER_KEY:
		if (len < MK_DERP_MAGIC_LEN + 32)
			return bad(why, "ServerKey too short");
		if (memcmp(p, MK_DERP_MAGIC, MK_DERP_MAGIC_LEN) != 0)
			return bad(why, "ServerKey without the DERP magic");
		f->key = p + MK_DERP_MAGIC_LEN;
		return 0;
	case MK_DERP_CLIENT_INFO:
		if (len < 32 + MK_DERP_SEAL_OVERHEAD)
			return bad(why, "ClientInfo too short");
		f->key = p;
		f->data = p + 32;
		f->data_len = len - 32;
		return 0;
	case MK_DERP_SERVER_INFO:
		if (len < MK_DERP_SEAL_OVERHEAD)
			return bad(why, "ServerInfo too short");
		f->data = p;
		f->data_len = len;
		return 0;
	case MK_DERP_SEND_PACKET:
		return parse_packet(f, p, len, 1, why);
	case MK_DERP_RECV_PACKET:
		return parse_packet(f, p, len, version >= 2 ? 1 : 0, why);
	case MK_DERP_FORWARD_PACKET:
		return parse_packet(f, p, len, 2, why);
	case MK_DERP_KEEP_ALIVE:
	case MK_DERP_WATCH_CONNS:
		return 0;
	case MK_DERP_NOTE_PREFERRED:
		if (len != 1)
			return bad(why, "NotePreferred is not one byte");
		f->byte = p[0];
		return 0;
	case MK_DERP_PEER_GONE:
		if (len < 32)
			return bad(why, "PeerGone too short");
		f->key = p;
		f->byte = len > 32 ? p[32] : MK_DERP_GONE_DISCONNECTED;
		return 0;
	case MK_DERP_PEER_PRESENT:
		if (len < 32)
			return bad(why, "PeerPresent too short");
		parse_present(f, p, len);
		return 0;
	case MK_DERP_CLOSE_PEER:
		if (len < 32)
			return bad(why, "ClosePeer too short");
		f->key = p;
		return 0;
	case MK_DERP_PING:
	case MK_DERP_PONG:
		if (len < 8)
			return bad(why, "Ping/Pong shorter than 8 bytes");
		memcpy(f->ping, p, 8);
		return 0;
	case MK_DERP_HEALTH:
		f->data = p;
		f->data_len = len;
		return 0;
	case MK_DERP_RESTARTING:
		if (len < 8)
			return bad(why, "Restarting too short");
		f->reconnect_ms = mk_get32(p);
		f->try_for_ms = mk_get32(p + 4);
		return 0;
	default:
		return 1;
	}
}

/* ---- encoders ---- */

size_t
mk_derp_put_server_key(uint8_t out[MK_DERP_SERVER_KEY_LEN],
    const struct mk_key *server_pub)
{
	mk_derp_hdr_put(out, MK_DERP_SERVER_KEY, MK_DERP_MAGIC_LEN + 32);
	memcpy(out + MK_DERP_HDR_LEN, MK_DERP_MAGIC, MK_DERP_MAGIC_LEN);
	memcpy(out + MK_DERP_HDR_LEN + MK_DERP_MAGIC_LEN, server_pub->b, 32);
	return MK_DERP_SERVER_KEY_LEN;
}

static size_t
put_key_hdr(uint8_t *out, uint8_t type, const uint8_t key[32], size_t rest)
{
	mk_derp_hdr_put(out, type, (uint32_t)(32 + rest));
	memcpy(out + MK_DERP_HDR_LEN, key, 32);
	return MK_DERP_PKT_HDR_LEN;
}

size_t
mk_derp_put_send_hdr(uint8_t out[MK_DERP_PKT_HDR_LEN], const uint8_t dst[32],
    size_t pkt_len)
{
	return put_key_hdr(out, MK_DERP_SEND_PACKET, dst, pkt_len);
}

size_t
mk_derp_put_recv_hdr(uint8_t out[MK_DERP_PKT_HDR_LEN], const uint8_t src[32],
    size_t pkt_len)
{
	return put_key_hdr(out, MK_DERP_RECV_PACKET, src, pkt_len);
}

size_t
mk_derp_put_forward_hdr(uint8_t out[MK_DERP_FWD_HDR_LEN],
    const uint8_t src[32], const uint8_t dst[32], size_t pkt_len)
{
	mk_derp_hdr_put(out, MK_DERP_FORWARD_PACKET, (uint32_t)(64 + pkt_len));
	memcpy(out + MK_DERP_HDR_LEN, src, 32);
	memcpy(out + MK_DERP_HDR_LEN + 32, dst, 32);
	return MK_DERP_FWD_HDR_LEN;
}

size_t
mk_derp_put_keepalive(uint8_t out[MK_DERP_HDR_LEN])
{
	mk_derp_hdr_put(out, MK_DERP_KEEP_ALIVE, 0);
	return MK_DERP_HDR_LEN;
}

size_t
mk_derp_put_watch_conns(uint8_t out[MK_DERP_HDR_LEN])
{
	mk_derp_hdr_put(out, MK_DERP_WATCH_CONNS, 0);
	return MK_DERP_HDR_LEN;
}

size_t
mk_derp_put_note_preferred(uint8_t out[MK_DERP_HDR_LEN + 1], bool preferred)
{
	mk_derp_hdr_put(out, MK_DERP_NOTE_PREFERRED, 1);
	out[MK_DERP_HDR_LEN] = preferred ? 1 : 0;
	return MK_DERP_HDR_LEN + 1;
}

size_t
mk_derp_put_peer_gone(uint8_t out[MK_DERP_HDR_LEN + 33], const uint8_t key[32],
    uint8_t reason)
{
	put_key_hdr(out, MK_DERP_PEER_GONE, key, 1);
	out[MK_DERP_PKT_HDR_LEN] = reason;
	return MK_DERP_PKT_HDR_LEN + 1;
}

size_t
mk_derp_put_peer_present(uint8_t out[MK_DERP_HDR_LEN +
    MK_DERP_PEER_PRESENT_LEN], const uint8_t key[32],
    const struct mk_addr *addr, uint8_t flags)
{
	uint8_t *p = out + MK_DERP_PKT_HDR_LEN;
	uint16_t port = 0;

	put_key_hdr(out, MK_DERP_PEER_PRESENT, key, 16 + 2 + 1);
	memset(p, 0, 16);
	if (addr != NULL && mk_addr_family(addr) == AF_INET) {
		/* v4-mapped, as Go's As16 writes it */
		p[10] = p[11] = 0xff;
		memcpy(p + 12, &addr->sin.sin_addr, 4);
		port = mk_addr_port(addr);
	} else if (addr != NULL && mk_addr_family(addr) == AF_INET6) {
		memcpy(p, &addr->sin6.sin6_addr, 16);
		port = mk_addr_port(addr);
	}
	p[16] = (uint8_t)(port >> 8);
	p[17] = (uint8_t)port;
	p[18] = flags;
	return MK_DERP_HDR_LEN + MK_DERP_PEER_PRESENT_LEN;
}

size_t
mk_derp_put_close_peer(uint8_t out[MK_DERP_HDR_LEN + 32], const uint8_t key[32])
{
	return put_key_hdr(out, MK_DERP_CLOSE_PEER, key, 0);
}

static size_t
put8(uint8_t *out, uint8_t type, const uint8_t data[8])
{
	mk_derp_hdr_put(out, type, 8);
	memcpy(out + MK_DERP_HDR_LEN, data, 8);
	return MK_DERP_HDR_LEN + 8;
}

size_t
mk_derp_put_ping(uint8_t out[MK_DERP_HDR_LEN + 8], const uint8_t data[8])
{
	return put8(out, MK_DERP_PING, data);
}

size_t
mk_derp_put_pong(uint8_t out[MK_DERP_HDR_LEN + 8], const uint8_t data[8])
{
	return put8(out, MK_DERP_PONG, data);
}

size_t
mk_derp_put_restarting(uint8_t out[MK_DERP_HDR_LEN + 8], uint32_t reconnect_ms,
    uint32_t try_for_ms)
{
	mk_derp_hdr_put(out, MK_DERP_RESTARTING, 8);
	mk_put32(out + MK_DERP_HDR_LEN, reconnect_ms);
	mk_put32(out + MK_DERP_HDR_LEN + 4, try_for_ms);
	return MK_DERP_HDR_LEN + 8;
}

size_t
mk_derp_put_health(uint8_t *out, size_t cap, const char *text)
{
	size_t n = strlen(text);

	if (cap < MK_DERP_HDR_LEN || n > cap - MK_DERP_HDR_LEN)
		return 0;
	mk_derp_hdr_put(out, MK_DERP_HEALTH, (uint32_t)n);
	memcpy(out + MK_DERP_HDR_LEN, text, n);
	return MK_DERP_HDR_LEN + n;
}

/* ---- sealing ---- */

size_t
mk_derp_seal(uint8_t *out, size_t cap, const struct mk_key *my_priv,
    const struct mk_key *peer_pub, const uint8_t *msg, size_t len,
    const uint8_t *nonce)
{
	if (cap < MK_DERP_SEAL_OVERHEAD || len > cap - MK_DERP_SEAL_OVERHEAD)
		return 0;
	if (nonce != NULL)
		memcpy(out, nonce, MK_DERP_NONCE_LEN);
	else
		randombytes_buf(out, MK_DERP_NONCE_LEN);
	if (crypto_box_easy(out + MK_DERP_NONCE_LEN, msg, len, out,
	    peer_pub->b, my_priv->b) != 0)
		return 0;
	return MK_DERP_SEAL_OVERHEAD + len;
}

long
mk_derp_open(uint8_t *out, size_t cap, const struct mk_key *my_priv,
    const struct mk_key *peer_pub, const uint8_t *in, size_t len)
{
	size_t n;

	if (len < MK_DERP_SEAL_OVERHEAD)
		return -1;
	n = len - MK_DERP_SEAL_OVERHEAD;
	if (n > cap)
		return -1;
	if (crypto_box_open_easy(out, in + MK_DERP_NONCE_LEN,
	    len - MK_DERP_NONCE_LEN, in, peer_pub->b, my_priv->b) != 0)
		return -1;
	return (long)n;
}

size_t
mk_derp_put_client_info(uint8_t *out, size_t cap,
    const struct mk_key *client_priv, const struct mk_key *client_pub,
    const struct mk_key *server_pub, const char *json, size_t json_len,
    const uint8_t *nonce)
{
	size_t body = 32 + MK_DERP_SEAL_OVERHEAD + json_len;

	if (json_len > MK_DERP_MAX_INFO || cap < MK_DERP_HDR_LEN + body)
		return 0;
	mk_derp_hdr_put(out, MK_DERP_CLIENT_INFO, (uint32_t)body);
	memcpy(out + MK_DERP_HDR_LEN, client_pub->b, 32);
	if (mk_derp_seal(out + MK_DERP_PKT_HDR_LEN, cap - MK_DERP_PKT_HDR_LEN,
	    client_priv, server_pub, (const uint8_t *)json, json_len,
	    nonce) == 0)
		return 0;
	return MK_DERP_HDR_LEN + body;
}

size_t
mk_derp_put_server_info(uint8_t *out, size_t cap,
    const struct mk_key *server_priv, const struct mk_key *client_pub,
    const char *json, size_t json_len, const uint8_t *nonce)
{
	size_t body = MK_DERP_SEAL_OVERHEAD + json_len;

	if (json_len > MK_DERP_MAX_INFO || cap < MK_DERP_HDR_LEN + body)
		return 0;
	mk_derp_hdr_put(out, MK_DERP_SERVER_INFO, (uint32_t)body);
	if (mk_derp_seal(out + MK_DERP_HDR_LEN, cap - MK_DERP_HDR_LEN,
	    server_priv, client_pub, (const uint8_t *)json, json_len,
	    nonce) == 0)
		return 0;
	return MK_DERP_HDR_LEN + body;
}

/* ---- JSON ---- */

/* Append to out; false when it does not fit. */
static bool
app(char *out, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n >= cap)
		return false;
	memcpy(out + *len, s, n + 1);
	*len += n;
	return true;
}

/* A JSON string literal with Go's escaping of the characters that need
 * it; app_name is short and rarely set. */
static bool
app_json_str(char *out, size_t cap, size_t *len, const char *s)
{
	char esc[8];
	const unsigned char *c;

	if (!app(out, cap, len, "\""))
		return false;
	for (c = (const unsigned char *)s; *c != '\0'; c++) {
		if (*c < 0x20 || *c == '"' || *c == '\\' || *c == '<' ||
		    *c == '>' || *c == '&')
			snprintf(esc, sizeof(esc), "\\u%04x", *c);
		else {
			esc[0] = (char)*c;
			esc[1] = '\0';
		}
		if (!app(out, cap, len, esc))
			return false;
	}
	return app(out, cap, len, "\"");
}

size_t
mk_derp_client_info_json(const struct mk_derp_client_info *ci, char *out,
    size_t cap)
{
	char buf[80];
	size_t len = 0;
	bool ok = true;

	if (cap == 0)
		return 0;
	out[0] = '\0';
	ok &= app(out, cap, &len, "{");
	if (ci->has_mesh_key) {
		char hex[65];

		mk_hex_encode(hex, ci->mesh_key, 32);
		snprintf(buf, sizeof(buf), "\"meshKey\":\"%s\",", hex);
		ok &= app(out, cap, &len, buf);
	}
	snprintf(buf, sizeof(buf), "\"version\":%d,\"CanAckPings\":%s",
	    ci->version, ci->can_ack_pings ? "true" : "false");
	ok &= app(out, cap, &len, buf);
	if (ci->is_prober)
		ok &= app(out, cap, &len, ",\"IsProber\":true");
	if (ci->app_name[0] != '\0') {
		ok &= app(out, cap, &len, ",\"AppName\":");
		ok &= app_json_str(out, cap, &len, ci->app_name);
	}
	ok &= app(out, cap, &len, "}");
	return ok ? len : 0;
}

size_t
mk_derp_server_info_json(const struct mk_derp_server_info *si, char *out,
    size_t cap)
{
	int n;

	if (si->rate_bytes != 0 || si->burst_bytes != 0)
		n = snprintf(out, cap, "{\"version\":%d,"
		    "\"TokenBucketBytesPerSecond\":%llu,"
		    "\"TokenBucketBytesBurst\":%llu}", si->version,
		    (unsigned long long)si->rate_bytes,
		    (unsigned long long)si->burst_bytes);
	else
		n = snprintf(out, cap, "{\"version\":%d}", si->version);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

int
mk_derp_mesh_key_parse(uint8_t out[32], const char *s, size_t len)
{
	return mk_hex_decode(out, 32, s, len);
}

/* A JSON object; with null_ok, JSON null reads as an empty object, as Go's
 * json.Unmarshal leaves a struct untouched by null. */
static json_t *
load_object(const char *json, size_t len, bool null_ok, const char **why)
{
	json_error_t err;
	json_t *root;

	root = json_loadb(json, len, JSON_DECODE_ANY, &err);
	if (root == NULL) {
		*why = "info is not JSON";
		return NULL;
	}
	if (null_ok && json_is_null(root)) {
		json_decref(root);
		if ((root = json_object()) == NULL)
			*why = "out of memory";
		return root;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		*why = "info is not a JSON object";
		return NULL;
	}
	return root;
}

/* Go's encoding/json: an integer field takes only a number without a
 * fraction that fits. */
static int
get_int(json_t *v, long long min, long long max, long long *out)
{
	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return *out < min || *out > max ? -1 : 0;
}

int
mk_derp_client_info_parse(struct mk_derp_client_info *ci, const char *json,
    size_t len, const char **why)
{
	const char *k;
	json_t *root, *v;
	long long n;
	int rc = -1;

	memset(ci, 0, sizeof(*ci));
	if ((root = load_object(json, len, true, why)) == NULL)
		return -1;
	json_object_foreach(root, k, v) {
		if (json_is_null(v))
			continue;	/* Go: null leaves a field as it is */
		if (strcasecmp(k, "version") == 0) {
			if (get_int(v, 0, 1000000, &n) != 0) {
				*why = "bad version";
				goto out;
			}
			ci->version = (int)n;
		} else if (strcasecmp(k, "meshKey") == 0) {
			if (!json_is_string(v)) {
				*why = "bad meshKey";
				goto out;
			}
			if (json_string_length(v) == 0)
				continue;
			if (mk_derp_mesh_key_parse(ci->mesh_key,
			    json_string_value(v), json_string_length(v)) != 0) {
				*why = "bad meshKey";
				goto out;
			}
			ci->has_mesh_key = true;
		} else if (strcasecmp(k, "CanAckPings") == 0 ||
		    strcasecmp(k, "IsProber") == 0) {
			if (!json_is_boolean(v)) {
				*why = "bad boolean";
				goto out;
			}
			if (strcasecmp(k, "IsProber") == 0)
				ci->is_prober = json_is_true(v);
			else
				ci->can_ack_pings = json_is_true(v);
		} else if (strcasecmp(k, "AppName") == 0) {
			if (!json_is_string(v)) {
				*why = "bad AppName";
				goto out;
			}
			snprintf(ci->app_name, sizeof(ci->app_name), "%s",
			    json_string_value(v));
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int
mk_derp_server_info_parse(struct mk_derp_server_info *si, const char *json,
    size_t len, const char **why)
{
	const char *k;
	json_t *root, *v;
	long long n;
	int rc = -1;

	memset(si, 0, sizeof(*si));
	if ((root = load_object(json, len, false, why)) == NULL)
		return -1;
	json_object_foreach(root, k, v) {
		if (strcasecmp(k, "version") == 0) {
			if (get_int(v, 0, 1000000, &n) != 0) {
				*why = "bad version";
				goto out;
			}
			si->version = (int)n;
		} else if (strcasecmp(k, "TokenBucketBytesPerSecond") == 0 ||
		    strcasecmp(k, "TokenBucketBytesBurst") == 0) {
			if (get_int(v, 0, INT64_MAX, &n) != 0) {
				*why = "bad token bucket";
				goto out;
			}
			if (strcasecmp(k, "TokenBucketBytesBurst") == 0)
				si->burst_bytes = (uint64_t)n;
			else
				si->rate_bytes = (uint64_t)n;
		}
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}
