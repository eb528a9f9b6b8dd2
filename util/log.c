/* JSON-line logging. Each line is built whole and written with one write(2),
 * so lines from many threads never interleave. Card-number-like digit runs
 * are masked before writing: a defence in depth, not a licence to log bodies. */
#include "util/util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_service = "portcullis";
static log_level_t log_min = LOG_INFO;
static int log_fd = 2;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_setup(const char *service, log_level_t min_level, int fd)
{
    log_service = service;
    log_min = min_level;
    log_fd = fd;
}

bool log_level_parse(const char *s, log_level_t *out)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return true;
        }
    return false;
}

/* Luhn over the digits at s[pos[0..n)]. */
static bool luhn_ok(const char *s, const size_t *pos, size_t n)
{
    int sum = 0;
    bool alt = false;
    for (size_t i = n; i-- > 0;) {
        int v = s[pos[i]] - '0';
        if (alt) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
        alt = !alt;
    }
    return sum % 10 == 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

#define MASK_RUN_MAX 64

/* The width of a separator at s[j] that may stand between two digits of a
 * card number as people and forms write it: a space, a dash, or a space
 * URL-encoded ('+', "%20"); 0 if none. Dots are not taken: an IPv4 address
 * would read as a 12-digit run. */
static size_t separator(const char *s, size_t len, size_t j)
{
    if (s[j] == ' ' || s[j] == '-' || s[j] == '+')
        return 1;
    return j + 2 < len && s[j] == '%' && s[j + 1] == '2' && s[j + 2] == '0' ? 3 : 0;
}

/* Reads a run of digits starting at s[i], where one separator may stand
 * between two digits ("4242 4242 ...", "4242-4242-...", "4242+4242..."); records
 * the digits' positions (up to MASK_RUN_MAX) and returns the index after it. */
static size_t digit_run(const char *s, size_t len, size_t i, size_t *pos, size_t *n)
{
    size_t j = i, w;
    *n = 0;
    while (j < len) {
        if (is_digit(s[j])) {
            if (*n < MASK_RUN_MAX)
                pos[*n] = j;
            (*n)++;
            j++;
        } else if (j > i && (w = separator(s, len, j)) && j + w < len && is_digit(s[j + w])) {
            j += w;
        } else {
            break;
        }
    }
    return j;
}

/* Masks digits a + 6 .. a + w - 4 of the run (a PAN's middle). */
static void mask_window(char *s, const size_t *pos, size_t a, size_t w)
{
    for (size_t k = a + 6; k < a + w - 4; k++)
        s[pos[k]] = '*';
}

/* A run of 12-19 digits is masked when it is Luhn-valid as a whole, written
 * with separators or not. A longer run (a PAN glued to an expiry date or to
 * other digits) is masked at every Luhn-valid window of 12-19 digits: greedy,
 * but such runs carry nothing worth keeping. Shorter runs are never touched,
 * nor whole runs that fail Luhn, so provider references stay searchable. */
size_t log_mask_pans(char *s, size_t len)
{
    size_t masked = 0, pos[MASK_RUN_MAX];
    for (size_t i = 0; i < len;) {
        if (!is_digit(s[i])) {
            i++;
            continue;
        }
        size_t n;
        size_t j = digit_run(s, len, i, pos, &n);
        bool hit = false;
        if (n >= 12 && n <= 19) {
            hit = luhn_ok(s, pos, n);
            if (hit)
                mask_window(s, pos, 0, n);
        } else if (n > 19) {
            /* beyond the positions kept, scan again from the last 18 kept
             * digits on, so a number straddling the limit is still seen */
            if (n > MASK_RUN_MAX) {
                n = MASK_RUN_MAX;
                j = pos[MASK_RUN_MAX - 18];
            }
            for (size_t a = 0; a + 12 <= n; a++)
                for (size_t w = 12; w <= 19 && a + w <= n; w++)
                    if (luhn_ok(s, pos + a, w)) {
                        mask_window(s, pos, a, w);
                        hit = true;
                    }
        }
        masked += hit;
        i = j;
    }
    return masked;
}

static void write_line(char *line)
{
    size_t len = strlen(line);
    log_mask_pans(line, len);
    line[len] = '\n';
    const char *p = line;
    size_t left = len + 1;
    while (left > 0) {
        ssize_t w = write(log_fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    line[len] = '\0';
}

void log_json(log_level_t lvl, const char *msg, json_t *fields)
{
    if (lvl < log_min) {
        json_decref(fields);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64], stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when, sizeof when, "%s.%03dZ", stamp, (int)(ts.tv_nsec / 1000000) % 1000);

    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(when));
    json_object_set_new(o, "level", json_string(level_names[lvl]));
    json_object_set_new(o, "service", json_string(log_service));
    json_object_set_new(o, "msg", json_string(msg ? msg : ""));
    if (fields)
        json_object_update_missing(o, fields);
    json_decref(fields);
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!line)
        return;
    /* masked before the realloc, which may leave the old block behind;
     * room for the newline written in place of the terminator */
    log_mask_pans(line, strlen(line));
    char *buf = wipe_realloc(line, strlen(line) + 2);
    if (!buf) {
        wipe_free(line);
        return;
    }
    write_line(buf);
    wipe_free(buf);
}

void log_msg(log_level_t lvl, const char *fmt, ...)
{
    if (lvl < log_min)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_json(lvl, msg, NULL);
}
