/* The error table compiled from errors.def, and the JSON error body of API.md. */
#include "util/util.h"
#include <string.h>

typedef struct {
    unsigned status;
    const char *type, *code, *message;
} err_row_t;

static const err_row_t rows[ERR__COUNT] = {
#define ERR(sym, st, ty, co, msg) [ERR_##sym] = {st, ty, co, msg},
#include "util/errors.def"
#undef ERR
};

unsigned err_http_status(err_code_t e)
{
    return e < ERR__COUNT ? rows[e].status : 500;
}

const char *err_type(err_code_t e)
{
    return e < ERR__COUNT ? rows[e].type : "api_error";
}

const char *err_code_str(err_code_t e)
{
    return e < ERR__COUNT ? rows[e].code : "internal_error";
}

const char *err_message(err_code_t e)
{
    return e < ERR__COUNT ? rows[e].message : "An internal error occurred.";
}

err_code_t err_by_code(const char *code)
{
    for (int i = 0; code && i < ERR__COUNT; i++)
        if (strcmp(rows[i].code, code) == 0)
            return (err_code_t)i;
    return ERR__COUNT;
}

json_t *err_body(err_code_t e, const char *param, const char *message)
{
    json_t *inner = json_pack("{s:s, s:s, s:s}", "type", err_type(e), "code", err_code_str(e),
                              "message", message ? message : err_message(e));
    if (param)
        json_object_set_new(inner, "param", json_string(param));
    return json_pack("{s:o}", "error", inner);
}
