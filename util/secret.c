/* Secrets in sodium_malloc'd memory (guard pages, mlock'd, wiped on free),
 * read only from files that nobody but the owner can read. */
#include "util/util.h"
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX (64 * 1024)

secret_t *secret_from_bytes(const void *data, size_t len)
{
    secret_t *s = sodium_malloc(sizeof *s);
    if (!s)
        return NULL;
    s->data = sodium_malloc(len + 1);
    if (!s->data) {
        sodium_free(s);
        return NULL;
    }
    memcpy(s->data, data, len);
    s->data[len] = '\0';
    s->len = len;
    return s;
}

secret_t *secret_read_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen, "%s: readable by group or others (mode %04o); chmod 600 it",
                 path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return NULL;
    }
    if (st.st_size > SECRET_MAX) {
        snprintf(err, errlen, "%s: larger than %d bytes", path, SECRET_MAX);
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st.st_size;
    secret_t *s = sodium_malloc(sizeof *s);
    unsigned char *buf = sodium_malloc(cap + 1);
    if (!s || !buf) {
        snprintf(err, errlen, "%s: out of guarded memory", path);
        if (s)
            sodium_free(s);
        if (buf)
            sodium_free(buf);
        close(fd);
        return NULL;
    }
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "%s: empty", path);
        sodium_free(buf);
        sodium_free(s);
        return NULL;
    }
    s->data = buf;
    s->len = n;
    return s;
}

void secret_free(secret_t *s)
{
    if (!s)
        return;
    sodium_free(s->data); /* sodium_free wipes before unmapping */
    sodium_free(s);
}

const char *secret_str(const secret_t *s)
{
    return s ? (const char *)s->data : NULL;
}
