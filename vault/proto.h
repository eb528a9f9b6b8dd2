/* vault/proto: the wire format between vaultd and its clients, private to
 * vault/. A frame is a 4-byte big-endian length and a body of at most
 * PROTO_FRAME_MAX bytes: version, code (an operation in a request, a status
 * in a reply), then tagged fields (tag u8, length u16be, bytes).
 *
 * Trade-off: a hand-rolled TLV instead of JSON, so that a card number is
 * parsed in place in the connection's guarded buffer and never copied into
 * a JSON library's heap. The parser is strict: known tags only, each at most
 * once, each within its own length bound, nothing left over. */
#ifndef PORTCULLIS_VAULT_PROTO_H
#define PORTCULLIS_VAULT_PROTO_H

#include "util/util.h"

#define PROTO_VERSION   1
#define PROTO_FRAME_MAX 16384 /* body bytes; a bigger length prefix closes the connection */
#define PROTO_HDR       4

typedef enum {
    OP_PING = 1,
    OP_TOKENIZE,
    OP_DETOKENIZE,
    OP_CARD_INFO,
    OP_SEAL,
    OP_UNSEAL,
    OP_ROTATE,
    OP_REWRAP,
    OP_RETIRE,
    OP_STATUS,
    OP__MAX
} proto_op_t;

/* Reply codes: 0..7 are vault_status_t; the rest are protocol-level. */
enum {
    PST_BAD_FRAME = 16, /* malformed body; the connection stays usable */
    PST_TOO_LARGE = 17, /* length prefix over the limit; the connection is closed */
    PST_BUSY = 18,      /* connection limit reached */
};

typedef enum {
    T_MERCHANT = 1,
    T_TOKEN,
    T_PAN,
    T_EXP_MONTH,
    T_EXP_YEAR,
    T_CVC,
    T_NAME,
    T_PURPOSE,
    T_CONTEXT,
    T_DATA,
    T_SEALED,
    T_BRAND,
    T_BIN,
    T_LAST4,
    T_FINGERPRINT,
    T_HAS_CVC,
    T_VERSION,
    T_COUNT,
    T_REMAINING,
    T_JSON,
    T_MESSAGE,
    T_BATCH,
    T__MAX
} proto_tag_t;

typedef struct {
    const uint8_t *p;
    uint16_t len;
    bool present;
} proto_field_t;

typedef struct {
    uint8_t code;
    proto_field_t f[T__MAX];
} proto_msg_t;

/* Parses a frame body (without the length prefix) in place: fields point
 * into `buf`. Returns NULL when well-formed, else a reason. */
const char *proto_parse(const uint8_t *buf, size_t len, proto_msg_t *out) PC_WUR;
/* Length prefix → body length; false when over PROTO_FRAME_MAX or zero. */
bool proto_frame_len(const uint8_t hdr[PROTO_HDR], size_t *len) PC_WUR;

/* Field accessors. A string field is copied NUL-terminated into `out`
 * (false if absent, too long, or holding a NUL or control byte). */
bool proto_get_str(const proto_msg_t *m, proto_tag_t t, char *out, size_t cap) PC_WUR;
bool proto_get_u32(const proto_msg_t *m, proto_tag_t t, uint32_t *out) PC_WUR;
/* A malloc'd, NUL-terminated copy of a string field (NULL if absent or
 * holding a NUL). Fields are not NUL-terminated in the frame. */
char *proto_dup_str(const proto_msg_t *m, proto_tag_t t) PC_WUR;

/* Builds a frame (prefix included) into a caller buffer. */
typedef struct {
    uint8_t *buf;
    size_t cap, len;
    bool overflow;
} proto_writer_t;

void proto_begin(proto_writer_t *w, uint8_t *buf, size_t cap, uint8_t code);
void proto_put(proto_writer_t *w, proto_tag_t t, const void *data, size_t len);
void proto_put_str(proto_writer_t *w, proto_tag_t t, const char *s);
void proto_put_u32(proto_writer_t *w, proto_tag_t t, uint32_t v);
/* Writes the length prefix; returns the frame size or 0 on overflow. */
size_t proto_end(proto_writer_t *w) PC_WUR;

#endif
