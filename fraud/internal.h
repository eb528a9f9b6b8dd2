/* fraud/ private declarations shared by its files: the feature registry, the
 * compiled form of a rules document, and the list matcher. Not included
 * outside fraud/. */
#ifndef PORTCULLIS_FRAUD_INTERNAL_H
#define PORTCULLIS_FRAUD_INTERNAL_H

#include "fraud/fraud.h"
#include <netinet/in.h>
#include <stdatomic.h>

/* ---------------------------------------------------------------- features */

typedef enum { FT_INT = 0, FT_STR, FT_BOOL } ftype_t;

enum {
    F_AMOUNT = 0,
    F_CURRENCY,
    F_AMOUNT_VS_AVERAGE,
    F_CARD_BRAND,
    F_BIN,
    F_CARD_COUNTRY,
    F_CARD_FUNDING,
    F_FINGERPRINT,
    F_EMAIL,
    F_EMAIL_DOMAIN,
    F_IP,
    F_EDGE_COUNTRY,
    F_SHIPPING_COUNTRY,
    F_DEVICE_ID,
    F_HAS_CVC,
    F_CART_TOTAL,
    F_BASKET_VS_USUAL,
    F_CART_MAX_SKU_QTY,
    F_CART_DISTINCT_SKUS,
    F_CART_HIGH_RISK_SKUS,
    F_STATIC_COUNT,
    /* velocity features follow: F_VELOCITY + (key * METRICS + metric) * WINDOWS + window */
    F_VELOCITY = F_STATIC_COUNT,
};

enum { M_ATTEMPTS = 0, M_DECLINES, M_TOKEN_FAILURES, M_DISTINCT_CARDS, M_AMOUNT_SUM, M_COUNT };

#define F_COUNT (F_VELOCITY + FRAUD_NKEYS * M_COUNT * FRAUD_NWINDOWS)

typedef struct {
    int id;
    ftype_t type;
    bool ci; /* strings compare case-insensitively */
} feat_t;

typedef struct {
    bool present;
    int64_t i;
    const char *s;
    bool b;
} fval_t;

/* Resolves a feature name ("amount", "ip.distinct_cards.10m"). */
bool feat_lookup(const char *name, feat_t *out);
const char *feat_name(int id, char *buf, size_t len);
feat_t feat_info(int id);
void feat_value(const fraud_features_t *f, int id, fval_t *v);

/* ---------------------------------------------------------------- rules */

typedef enum { K_CMP = 0, K_ALL, K_ANY, K_NOT } ckind_t;
typedef enum {
    OP_EQ = 0,
    OP_NE,
    OP_GT,
    OP_GTE,
    OP_LT,
    OP_LTE,
    OP_IN,
    OP_NOT_IN,
    OP_STARTS_WITH,
    OP_ENDS_WITH,
    OP_PRESENT,
    OP_ABSENT,
    OP_COUNT
} op_t;

extern const char *const op_names[OP_COUNT];

typedef struct cond {
    ckind_t kind;
    op_t op;
    feat_t feat;
    int ref; /* feature compared against, -1 = a literal */
    struct cond *kids;
    size_t nkids; /* kids, or values of in / not_in */
    int64_t ival;
    bool bval;
    const char *sval;   /* borrowed from the rules' own copy of the document */
    int64_t *ivals;     /* sorted */
    const char **svals; /* sorted with the feature's comparator */
} cond_t;

typedef struct {
    const char *id;
    const char *reason;
    int score;
    fraud_action_t action;
    bool enabled;
    cond_t cond;
} rule_t;

typedef struct {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
    const char *text;
} cidr_t;

enum { L_EMAILS = 0, L_DOMAINS, L_IPS, L_FINGERPRINTS, L_BINS, L_COUNTRIES, L_DEVICES, L_COUNT };
extern const char *const list_names[L_COUNT];

typedef struct {
    const char **s[L_COUNT]; /* sorted (ips: unused, see cidrs) */
    size_t n[L_COUNT];
    cidr_t *cidrs;
} lists_t;

typedef struct arena_chunk arena_chunk_t;

struct fraud_rules {
    atomic_int refs;
    int64_t version;
    json_t *doc; /* private deep copy: every borrowed string points into it */
    int review_threshold, decline_threshold;
    rule_t *rules;
    size_t nrules;
    lists_t block, allow;
    arena_chunk_t *arena;
};

/* Arena allocation for a rules object: everything is freed at once. */
void *rules_alloc(fraud_rules_t *r, size_t size);

/* Lists: parse one "block"/"allow" object; match features against them. */
bool lists_parse(fraud_rules_t *r, const json_t *obj, const char *name, lists_t *out,
                 fraud_rules_error_t *err);
/* Adds one reason per matching list; returns the number of matches. */
int lists_match(const lists_t *l, const char *name, bool allow, const fraud_features_t *f,
                fraud_result_t *out);
bool ip_parse(const char *s, int *family, unsigned char addr[16]);

/* Reasons: keep the strongest FRAUD_MAX_REASONS. */
void result_add(fraud_result_t *out, const fraud_reason_t *cand);
void result_sort(fraud_result_t *out);
/* Makes a detail text safe to return: ASCII only, card-like digit runs masked. */
void detail_sanitize(char *s);

/* Embedded data (generated from fraud/data/ at build time). */
extern const char fraud_data_default_rules[];
extern const char fraud_data_bin_ranges[];

#endif
