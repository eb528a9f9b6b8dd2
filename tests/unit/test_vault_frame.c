/* Unit: the vault's frame parser on malformed input (truncations, bad
 * lengths, unknown and duplicate tags, overlong fields, trailing bytes,
 * random garbage) and the writer's bounds. */
#include "tests/harness/harness.h"
#include "vault/proto.h"
#include <sodium.h>
#include <string.h>

/* Builds a body (no length prefix) from raw bytes. */
static const char *parse(const uint8_t *b, size_t n)
{
    proto_msg_t m;
    return proto_parse(b, n, &m);
}

START_TEST(well_formed_frame_round_trips)
{
    uint8_t buf[PROTO_HDR + PROTO_FRAME_MAX];
    proto_writer_t w;
    proto_begin(&w, buf, sizeof buf, OP_TOKENIZE);
    proto_put_str(&w, T_MERCHANT, "mer_123");
    proto_put_str(&w, T_PAN, "4242424242424242");
    proto_put_u32(&w, T_EXP_MONTH, 12);
    proto_put(&w, T_NAME, "", 0);
    size_t n = proto_end(&w);
    ck_assert_uint_gt(n, PROTO_HDR);
    size_t len;
    ck_assert(proto_frame_len(buf, &len));
    ck_assert_uint_eq(len, n - PROTO_HDR);
    proto_msg_t m;
    ck_assert_ptr_null(proto_parse(buf + PROTO_HDR, len, &m));
    ck_assert_int_eq(m.code, OP_TOKENIZE);
    char s[64];
    uint32_t v;
    ck_assert(proto_get_str(&m, T_MERCHANT, s, sizeof s));
    ck_assert_str_eq(s, "mer_123");
    ck_assert(proto_get_u32(&m, T_EXP_MONTH, &v));
    ck_assert_uint_eq(v, 12);
    ck_assert(m.f[T_NAME].present);
    ck_assert_uint_eq(m.f[T_NAME].len, 0);
    ck_assert(!m.f[T_CVC].present);
    ck_assert(!proto_get_str(&m, T_CVC, s, sizeof s));
}
END_TEST

START_TEST(malformed_bodies_are_refused)
{
    /* header only is fine; anything shorter is not */
    ck_assert_ptr_null(parse((const uint8_t[]){1, OP_PING}, 2));
    ck_assert_ptr_nonnull(parse((const uint8_t[]){1}, 1));
    ck_assert_ptr_nonnull(parse((const uint8_t[]){0}, 0));
    /* unknown protocol version */
    ck_assert_ptr_nonnull(parse((const uint8_t[]){2, OP_PING}, 2));
    ck_assert_ptr_nonnull(parse((const uint8_t[]){0, OP_PING}, 2));
    /* truncated field headers */
    ck_assert_ptr_nonnull(parse((const uint8_t[]){1, OP_PING, T_TOKEN}, 3));
    ck_assert_ptr_nonnull(parse((const uint8_t[]){1, OP_PING, T_TOKEN, 0}, 4));
    /* a field running past the end */
    ck_assert_ptr_nonnull(parse((const uint8_t[]){1, OP_PING, T_TOKEN, 0, 5, 'a', 'b'}, 7));
    ck_assert_ptr_nonnull(parse((const uint8_t[]){1, OP_PING, T_TOKEN, 0xff, 0xff, 'a'}, 6));
    /* unknown tags: 0, past the end of the table */
    ck_assert_ptr_nonnull(parse((const uint8_t[]){1, OP_PING, 0, 0, 0}, 5));
    ck_assert_ptr_nonnull(parse((const uint8_t[]){1, OP_PING, T__MAX, 0, 0}, 5));
    ck_assert_ptr_nonnull(parse((const uint8_t[]){1, OP_PING, 0xff, 0, 0}, 5));
    /* a duplicated field */
    ck_assert_ptr_nonnull(
        parse((const uint8_t[]){1, OP_PING, T_TOKEN, 0, 1, 'a', T_TOKEN, 0, 1, 'b'}, 10));
    /* a field over its own limit: a 33-byte PAN, a 65-byte merchant */
    uint8_t big[3 + 2 + 65];
    big[0] = 1;
    big[1] = OP_TOKENIZE;
    big[2] = T_PAN;
    big[3] = 0;
    big[4] = 33;
    memset(big + 5, '4', 33);
    ck_assert_ptr_nonnull(parse(big, 5 + 33));
    big[2] = T_MERCHANT;
    big[4] = 65;
    memset(big + 5, 'm', 65);
    ck_assert_ptr_nonnull(parse(big, 5 + 65));
    big[4] = 64;
    ck_assert_ptr_null(parse(big, 5 + 64)); /* at the limit: fine */
}
END_TEST

START_TEST(length_prefix_limits)
{
    size_t len;
    ck_assert(!proto_frame_len((const uint8_t[]){0, 0, 0, 0}, &len));
    ck_assert(!proto_frame_len((const uint8_t[]){0, 0, 0, 1}, &len));
    ck_assert(proto_frame_len((const uint8_t[]){0, 0, 0, 2}, &len));
    ck_assert(proto_frame_len((const uint8_t[]){0, 0, PROTO_FRAME_MAX >> 8, PROTO_FRAME_MAX & 0xff},
                              &len));
    ck_assert_uint_eq(len, PROTO_FRAME_MAX);
    uint32_t over = PROTO_FRAME_MAX + 1;
    ck_assert(!proto_frame_len(
        (const uint8_t[]){over >> 24, (over >> 16) & 0xff, (over >> 8) & 0xff, over & 0xff}, &len));
    ck_assert(!proto_frame_len((const uint8_t[]){0xff, 0xff, 0xff, 0xff}, &len));
    ck_assert(!proto_frame_len((const uint8_t[]){0x80, 0, 0, 2}, &len));
}
END_TEST

START_TEST(strings_with_nul_or_control_bytes_are_refused)
{
    proto_msg_t m;
    const uint8_t nul[] = {1, OP_PING, T_TOKEN, 0, 3, 't', 0, 'k'};
    ck_assert_ptr_null(proto_parse(nul, sizeof nul, &m));
    char s[16];
    ck_assert(!proto_get_str(&m, T_TOKEN, s, sizeof s));
    const uint8_t ctl[] = {1, OP_PING, T_TOKEN, 0, 3, 't', '\n', 'k'};
    ck_assert_ptr_null(proto_parse(ctl, sizeof ctl, &m));
    ck_assert(!proto_get_str(&m, T_TOKEN, s, sizeof s));
    const uint8_t ok[] = {1, OP_PING, T_TOKEN, 0, 3, 't', 'o', 'k'};
    ck_assert_ptr_null(proto_parse(ok, sizeof ok, &m));
    ck_assert(!proto_get_str(&m, T_TOKEN, s, 3)); /* no room for the NUL */
    ck_assert(proto_get_str(&m, T_TOKEN, s, 4));
    /* an integer field must be exactly 4 bytes */
    const uint8_t shortint[] = {1, OP_PING, T_VERSION, 0, 2, 0, 1};
    uint32_t v;
    ck_assert_ptr_null(proto_parse(shortint, sizeof shortint, &m));
    ck_assert(!proto_get_u32(&m, T_VERSION, &v));
}
END_TEST

START_TEST(writer_refuses_to_overflow)
{
    static uint8_t buf[PROTO_HDR + PROTO_FRAME_MAX];
    static uint8_t data[8192];
    proto_writer_t w;
    proto_begin(&w, buf, sizeof buf, OP_STATUS);
    proto_put(&w, T_JSON, data, sizeof data);
    proto_put(&w, T_SEALED, data, sizeof data); /* together over the frame limit */
    ck_assert_uint_eq(proto_end(&w), 0);
    proto_begin(&w, buf, 8, OP_PING);
    proto_put_str(&w, T_TOKEN, "tok_abc");
    ck_assert_uint_eq(proto_end(&w), 0);
}
END_TEST

/* Random bytes and random mutations of a valid frame: the parser never
 * reads outside the buffer (ASan watches) and whatever it accepts obeys the
 * per-field limits. */
START_TEST(garbage_never_escapes_the_bounds)
{
    uint8_t valid[256];
    proto_writer_t w;
    proto_begin(&w, valid, sizeof valid, OP_DETOKENIZE);
    proto_put_str(&w, T_MERCHANT, "mer_1");
    proto_put_str(&w, T_TOKEN, "tok_abcdefghijklmnopqrstuv");
    proto_put_str(&w, T_PURPOSE, "authorize");
    size_t vn = proto_end(&w) - PROTO_HDR;
    int accepted = 0;
    for (int i = 0; i < 200000; i++) {
        size_t n = 1 + randombytes_uniform(96);
        uint8_t *b = malloc(n); /* exact size: any overread trips ASan */
        if (i % 2) {
            randombytes_buf(b, n);
            b[0] = 1;
        } else {
            n = vn;
            b = realloc(b, n);
            memcpy(b, valid + PROTO_HDR, n);
            for (int k = 0; k < 1 + (int)randombytes_uniform(3); k++)
                b[randombytes_uniform((uint32_t)n)] ^= (uint8_t)(1 + randombytes_uniform(255));
        }
        proto_msg_t m;
        if (!proto_parse(b, n, &m)) {
            accepted++;
            for (int t = 0; t < T__MAX; t++)
                if (m.f[t].present)
                    ck_assert(m.f[t].p >= b && m.f[t].p + m.f[t].len <= b + n);
        }
        free(b);
    }
    ck_assert_int_gt(accepted, 0); /* the fuzz reached the accepting paths too */
}
END_TEST

int main(void)
{
    h_init("test_vault_frame");
    Suite *s = suite_create("vault_frame");
    TCase *tc = h_tcase("frame", 120);
    tcase_add_test(tc, well_formed_frame_round_trips);
    tcase_add_test(tc, malformed_bodies_are_refused);
    tcase_add_test(tc, length_prefix_limits);
    tcase_add_test(tc, strings_with_nul_or_control_bytes_are_refused);
    tcase_add_test(tc, writer_refuses_to_overflow);
    tcase_add_test(tc, garbage_never_escapes_the_bounds);
    suite_add_tcase(s, tc);
    return h_run_suite(s);
}
