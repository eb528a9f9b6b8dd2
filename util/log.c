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

static bool luhn_ok(const char *d, size_t n)
{
    int sum = 0;
    bool alt = false;
    for (size_t i = n; i-- > 0;) {
        int v = d[i] - '0';
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

size_t log_mask_pans(char *s, size_t len)
{
    size_t masked = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] < '0' || s[i] > '9') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && s[j] >= '0' && s[j] <= '9')
            j++;
        size_t n = j - i;
        if (n >= 13 && n <= 19 && luhn_ok(s + i, n)) {
            for (size_t k = i + 6; k < j - 4; k++)
                s[k] = '*';
            masked++;
        }
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
    /* room for the newline written in place of the terminator */
    char *buf = realloc(line, strlen(line) + 2);
    if (!buf) {
        free(line);
        return;
    }
    write_line(buf);
    free(buf);
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
