/* The vault wire format: strict in-place TLV parsing and frame building. */
#include "vault/proto.h"
#include <stdlib.h>
#include <string.h>

/* Largest length each tag may carry; 0 = tag unused on the wire. */
static const uint16_t tag_max[T__MAX] = {
    [T_MERCHANT] = 64, [T_TOKEN] = 64,  [T_PAN] = 32,     [T_EXP_MONTH] = 4, [T_EXP_YEAR] = 4,
    [T_CVC] = 8,       [T_NAME] = 127,  [T_PURPOSE] = 32, [T_CONTEXT] = 128, [T_DATA] = 4096,
    [T_SEALED] = 8192, [T_BRAND] = 15,  [T_BIN] = 8,      [T_LAST4] = 4,     [T_FINGERPRINT] = 79,
    [T_HAS_CVC] = 1,   [T_VERSION] = 4, [T_COUNT] = 4,    [T_REMAINING] = 4, [T_JSON] = 8192,
    [T_MESSAGE] = 200, [T_BATCH] = 4,
};

bool proto_frame_len(const uint8_t hdr[PROTO_HDR], size_t *len)
{
    uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    *len = n;
    return n >= 2 && n <= PROTO_FRAME_MAX;
}

const char *proto_parse(const uint8_t *buf, size_t len, proto_msg_t *out)
{
    memset(out, 0, sizeof *out);
    if (len < 2)
        return "frame shorter than its header";
    if (len > PROTO_FRAME_MAX)
        return "frame too large";
    if (buf[0] != PROTO_VERSION)
        return "unsupported protocol version";
    out->code = buf[1];
    size_t off = 2;
    while (off < len) {
        if (len - off < 3)
            return "truncated field header";
        uint8_t tag = buf[off];
        uint16_t flen = (uint16_t)(buf[off + 1] << 8 | buf[off + 2]);
        off += 3;
        if (tag == 0 || tag >= T__MAX || tag_max[tag] == 0)
            return "unknown field tag";
        if (out->f[tag].present)
            return "duplicate field";
        if (flen > tag_max[tag])
            return "field longer than allowed";
        if (flen > len - off)
            return "field runs past the end of the frame";
        out->f[tag] = (proto_field_t){.p = buf + off, .len = flen, .present = true};
        off += flen;
    }
    return NULL;
}

bool proto_get_str(const proto_msg_t *m, proto_tag_t t, char *out, size_t cap)
{
    const proto_field_t *f = &m->f[t];
    if (!f->present || (size_t)f->len + 1 > cap)
        return false;
    for (uint16_t i = 0; i < f->len; i++)
        if (f->p[i] < 0x20 || f->p[i] == 0x7f)
            return false;
    memcpy(out, f->p, f->len);
    out[f->len] = '\0';
    return true;
}

bool proto_get_u32(const proto_msg_t *m, proto_tag_t t, uint32_t *out)
{
    const proto_field_t *f = &m->f[t];
    if (!f->present || f->len != 4)
        return false;
    *out = (uint32_t)f->p[0] << 24 | (uint32_t)f->p[1] << 16 | (uint32_t)f->p[2] << 8 | f->p[3];
    return true;
}

char *proto_dup_str(const proto_msg_t *m, proto_tag_t t)
{
    const proto_field_t *f = &m->f[t];
    if (!f->present || memchr(f->p, '\0', f->len))
        return NULL;
    char *s = malloc((size_t)f->len + 1);
    if (s) {
        memcpy(s, f->p, f->len);
        s[f->len] = '\0';
    }
    return s;
}

void proto_begin(proto_writer_t *w, uint8_t *buf, size_t cap, uint8_t code)
{
    w->buf = buf;
    w->cap = cap < PROTO_HDR + PROTO_FRAME_MAX ? cap : PROTO_HDR + PROTO_FRAME_MAX;
    w->len = PROTO_HDR;
    w->overflow = w->cap < PROTO_HDR + 2;
    if (!w->overflow) {
        buf[PROTO_HDR] = PROTO_VERSION;
        buf[PROTO_HDR + 1] = code;
        w->len += 2;
    }
}

void proto_put(proto_writer_t *w, proto_tag_t t, const void *data, size_t len)
{
    if (w->overflow || len > 0xffff || w->cap - w->len < 3 + len) {
        w->overflow = true;
        return;
    }
    w->buf[w->len] = (uint8_t)t;
    w->buf[w->len + 1] = (uint8_t)(len >> 8);
    w->buf[w->len + 2] = (uint8_t)len;
    if (len)
        memcpy(w->buf + w->len + 3, data, len);
    w->len += 3 + len;
}

void proto_put_str(proto_writer_t *w, proto_tag_t t, const char *s)
{
    proto_put(w, t, s, strlen(s));
}

void proto_put_u32(proto_writer_t *w, proto_tag_t t, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    proto_put(w, t, b, 4);
}

size_t proto_end(proto_writer_t *w)
{
    if (w->overflow)
        return 0;
    size_t body = w->len - PROTO_HDR;
    w->buf[0] = (uint8_t)(body >> 24);
    w->buf[1] = (uint8_t)(body >> 16);
    w->buf[2] = (uint8_t)(body >> 8);
    w->buf[3] = (uint8_t)body;
    return w->len;
}
