/* The integration-test harness (see harness.h). */
#include "tests/harness/harness.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char workdir[700];
static char pgbase[1024];
static char secrets[1024];
static char template_db[128] = "portcullis_tmpl";
static char test_name[128];

static void mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    if (ftw->level > 0)
        remove(path);
    return 0;
}

void h_init(const char *name)
{
    if (sodium_init() < 0)
        abort();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    json_object_seed(0);
    signal(SIGPIPE, SIG_IGN);
    snprintf(test_name, sizeof test_name, "%s", name);
    snprintf(workdir, sizeof workdir, "%s/%s", BUILD_DIR, name);
    mkdirs(workdir);
    nftw(workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* fresh logs for this run */
    log_setup(name, LOG_WARN, 2);
    const char *dir = getenv("PORTCULLIS_TEST_PG");
    if (!dir)
        return;
    char envf[1200];
    snprintf(envf, sizeof envf, "%s/env", dir);
    FILE *f = fopen(envf, "r");
    if (!f) {
        fprintf(stderr, "harness: %s missing; run through ctest (pg.setup fixture)\n", envf);
        exit(2);
    }
    char line[1200];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "PGBASE=", 7))
            snprintf(pgbase, sizeof pgbase, "%s", line + 7);
        else if (!strncmp(line, "SECRETS=", 8))
            snprintf(secrets, sizeof secrets, "%s", line + 8);
        else if (!strncmp(line, "TEMPLATE=", 9))
            snprintf(template_db, sizeof template_db, "%s", line + 9);
    }
    fclose(f);
}

const char *h_workdir(void)
{
    return workdir;
}

const char *h_pgbase(void)
{
    return pgbase;
}

const char *h_secrets(void)
{
    return secrets;
}

/* ------------------------------------------------------------ databases */

char *h_conninfo(const char *db, const char *role)
{
    return str_printf("host=%s/sock dbname=%s user=portcullis_%s", pgbase, db, role);
}

const char *h_password_file(const char *role)
{
    static __thread char path[1200];
    snprintf(path, sizeof path, "%s/db_%s", secrets, role);
    return path;
}

PGconn *h_db_connect(const char *db, const char *role)
{
    char *ci = h_conninfo(db, role);
    char *pw = file_read_all(h_password_file(role), 4096, NULL);
    if (pw)
        pw[strcspn(pw, "\n")] = '\0';
    const char *keys[] = {"dbname", "password", NULL};
    const char *vals[] = {ci, pw, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    free(ci);
    free(pw);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "harness: connect %s as %s: %s", db, role, PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

static char *vsql(const char *db, const char *fmt, va_list ap)
{
    char *q = NULL;
    if (vasprintf(&q, fmt, ap) < 0)
        return NULL;
    PGconn *pg = h_db_connect(db, "admin");
    char *out = NULL;
    if (pg) {
        PGresult *r = PQexec(pg, q);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0 &&
            !PQgetisnull(r, 0, 0))
            out = strdup(PQgetvalue(r, 0, 0));
        else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
            fprintf(stderr, "harness: SQL failed: %s: %s", q, PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(pg);
    }
    free(q);
    return out;
}

char *h_sql(const char *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = vsql(db, fmt, ap);
    va_end(ap);
    return out;
}

long h_sql_long(const char *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = vsql(db, fmt, ap);
    va_end(ap);
    long v = out ? strtol(out, NULL, 10) : -1;
    free(out);
    return v;
}

char *h_db_create(void)
{
    unsigned char rnd[4];
    randombytes_buf(rnd, sizeof rnd);
    char *name = str_printf("t_%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    PGconn *pg = h_db_connect("postgres", "admin");
    ck_assert_msg(pg != NULL, "cannot reach the fixture PostgreSQL");
    char q[256];
    snprintf(q, sizeof q, "CREATE DATABASE %s TEMPLATE %s", name, template_db);
    for (int i = 0; i < 100; i++) {
        PGresult *r = PQexec(pg, q);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok && i == 99)
            fprintf(stderr, "harness: %s: %s", q, PQresultErrorMessage(r));
        PQclear(r);
        if (ok)
            break;
        usleep(100 * 1000); /* another test is copying the template */
    }
    PQfinish(pg);
    return name;
}

void h_db_drop(const char *db)
{
    PGconn *pg = h_db_connect("postgres", "admin");
    if (!pg)
        return;
    char q[256];
    snprintf(q, sizeof q, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    PQclear(PQexec(pg, q));
    PQfinish(pg);
}

/* ------------------------------------------------------------ processes */

h_proc_t *h_proc_start(const char *name, char *const argv[], char *const envp[])
{
    h_proc_t *p = calloc(1, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->log, sizeof p->log, "%s/%s.out", workdir, name);
    p->pid = fork();
    if (p->pid == 0) {
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, 0);
            close(devnull);
        }
        /* die with the test that started us, whatever way it ends */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execve(argv[0], argv, envp ? envp : environ);
        _exit(127);
    }
    return p;
}

bool h_proc_alive(h_proc_t *p)
{
    int st;
    return p && p->pid > 0 && waitpid(p->pid, &st, WNOHANG) == 0;
}

int h_proc_stop(h_proc_t *p, int sig, int timeout_ms)
{
    if (!p || p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    int st = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (r < 0) {
            p->pid = 0;
            return -1;
        }
        usleep(10 * 1000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    return -1;
}

int h_wait_port_file(const char *path, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        char *s = file_read_all(path, 64, NULL);
        if (s) {
            int port = atoi(s);
            free(s);
            if (port > 0)
                return port;
        }
        usleep(20 * 1000);
    }
    return -1;
}

int h_run(char **out, char *const argv[])
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        /* Without a reader, stdout goes nowhere: a daemon the command
         * leaves behind (pg_ctl start) must not hold our pipe open. */
        int devnull = open("/dev/null", O_WRONLY);
        dup2(out ? fds[1] : devnull, 1);
        if (!out)
            dup2(devnull, 2);
        close(devnull);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fds[0], buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void h_secret_file(const char *path)
{
    if (access(path, F_OK) == 0)
        return;
    unsigned char k[32];
    char hex[65];
    randombytes_buf(k, sizeof k);
    sodium_bin2hex(hex, sizeof hex, k, sizeof k);
    ck_assert_int_eq(file_write_atomic(path, hex, 64, 0600), 0);
}

/* ------------------------------------------------------------- gatewayd */

static char *pepper_path(const char *db)
{
    return str_printf("%s/%s.pepper", workdir, db);
}

h_gateway_t *h_gateway_start(const char *db, const char *tag, const char *extra_json)
{
    h_gateway_t *g = calloc(1, sizeof *g);
    snprintf(g->db, sizeof g->db, "%s", db);
    snprintf(g->config, sizeof g->config, "%s/%s.json", workdir, tag);
    snprintf(g->port_file, sizeof g->port_file, "%s/%s.port", workdir, tag);
    unlink(g->port_file);
    char *pep = pepper_path(db);
    h_secret_file(pep);
    char *ci = h_conninfo(db, "gateway");
    char *logf = str_printf("%s/%s.log", workdir, tag);
    json_t *cfg = json_pack(
        "{s:{s:s, s:i, s:s}, s:{s:s, s:s, s:i}, s:{s:s}, s:{s:s, s:s}, s:{s:i}, s:{s:b}}", "listen",
        "address", "127.0.0.1", "port", 0, "port_file", g->port_file, "database", "conninfo", ci,
        "password_file", h_password_file("gateway"), "pool_size", 16, "auth", "api_key_pepper_file",
        pep, "log", "level", "info", "file", logf, "shutdown", "grace_seconds", 10, "outbound",
        "allow_loopback_http", 1); /* the sandboxes */
    if (extra_json) {
        json_error_t je;
        json_t *extra = json_loads(extra_json, 0, &je);
        ck_assert_msg(extra != NULL, "bad extra config: %s", je.text);
        json_object_update_recursive(cfg, extra);
        json_decref(extra);
    }
    ck_assert_int_eq(json_dump_file(cfg, g->config, JSON_INDENT(2)), 0);
    json_decref(cfg);
    free(pep);
    free(ci);
    free(logf);
    /* PC_GATEWAYD_WRAPPER="valgrind --log-file=..." runs gatewayd under a
     * debugging tool (one word or a few, split on spaces). */
    char *argv[16] = {GATEWAYD_BIN, "--config", g->config, NULL};
    char *wrap = getenv("PC_GATEWAYD_WRAPPER") ? strdup(getenv("PC_GATEWAYD_WRAPPER")) : NULL;
    if (wrap) {
        int n = 0;
        char *save = NULL;
        for (char *w = strtok_r(wrap, " ", &save); w && n < 12; w = strtok_r(NULL, " ", &save))
            argv[n++] = w;
        argv[n++] = GATEWAYD_BIN;
        argv[n++] = "--config";
        argv[n++] = g->config;
        argv[n] = NULL;
    }
    g->proc = h_proc_start(tag, argv, NULL);
    g->port = h_wait_port_file(g->port_file, 15000);
    ck_assert_msg(g->port > 0, "gatewayd (%s) did not start; see %s", tag, g->proc->log);
    snprintf(g->url, sizeof g->url, "http://127.0.0.1:%d", g->port);
    for (int i = 0; i < 500; i++) {
        h_resp_t r = h_get(g, "/healthz", NULL);
        long st = r.status;
        h_resp_free(&r);
        if (st == 200)
            return g;
        usleep(10 * 1000);
    }
    ck_abort_msg("gatewayd (%s) never answered /healthz", tag);
    return g;
}

int h_gateway_stop(h_gateway_t *g, int sig)
{
    if (!g)
        return -1;
    int rc = h_proc_stop(g->proc, sig, 20000);
    free(g->proc);
    free(g);
    return rc;
}

int h_gatewayctl(const char *db, char **out, const char *const args[])
{
    char *ci = h_conninfo(db, "gateway");
    char *ai = h_conninfo(db, "admin");
    char *pep = pepper_path(db);
    h_secret_file(pep);
    char gwpw[1200], adminpw[1200];
    snprintf(gwpw, sizeof gwpw, "%s", h_password_file("gateway"));
    snprintf(adminpw, sizeof adminpw, "%s", h_password_file("admin"));
    char *argv[32] = {GATEWAYCTL_BIN,
                      "--db",
                      ci,
                      "--db-password-file",
                      gwpw,
                      "--api-key-pepper-file",
                      pep,
                      "--migrate-db",
                      ai,
                      "--migrate-password-file",
                      NULL};
    argv[10] = adminpw;
    int n = 11;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    int rc = h_run(out, argv);
    free(ci);
    free(ai);
    free(pep);
    return rc;
}

h_merchant_t h_merchant_create(const char *db, const char *name)
{
    h_merchant_t m = {0};
    char *out = NULL;
    const char *args[] = {"merchant", "create", name, "--json", NULL};
    int rc = h_gatewayctl(db, &out, args);
    ck_assert_msg(rc == 0, "gatewayctl merchant create failed (%d)", rc);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "gatewayctl output is not JSON: %s", out);
    snprintf(m.id, sizeof m.id, "%s", h_json_str(j, "merchant.id"));
    snprintf(m.pk, sizeof m.pk, "%s", h_json_str(j, "keys.pk"));
    snprintf(m.sk, sizeof m.sk, "%s", h_json_str(j, "keys.sk"));
    snprintf(m.ak, sizeof m.ak, "%s", h_json_str(j, "keys.ak"));
    json_decref(j);
    free(out);
    return m;
}

/* ------------------------------------------------------------ sandboxes */

h_sandbox_t *h_sandbox_start(const char *name, const char *tag, const char *const extra_args[])
{
    h_sandbox_t *s = calloc(1, sizeof *s);
    char bin[1024], pf[1024], cpf[1024];
    snprintf(bin, sizeof bin, "%s/sandbox-%s", SANDBOX_BIN_DIR, name);
    snprintf(pf, sizeof pf, "%s/%s.port", workdir, tag);
    snprintf(cpf, sizeof cpf, "%s/%s.control-port", workdir, tag);
    unlink(pf);
    unlink(cpf);
    char *argv[40] = {bin, "--port", "0", "--port-file", pf, "--control-port", "0",
                      "--control-port-file", cpf};
    int n = 9;
    for (int i = 0; extra_args && extra_args[i] && n < 39; i++)
        argv[n++] = (char *)extra_args[i];
    argv[n] = NULL;
    s->proc = h_proc_start(tag, argv, NULL);
    s->port = h_wait_port_file(pf, 15000);
    s->control_port = h_wait_port_file(cpf, 15000);
    ck_assert_msg(s->port > 0 && s->control_port > 0, "sandbox %s did not start; see %s", name,
                  s->proc->log);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    snprintf(s->control_url, sizeof s->control_url, "http://127.0.0.1:%d", s->control_port);
    return s;
}

int h_sandbox_stop(h_sandbox_t *s)
{
    if (!s)
        return -1;
    int rc = h_proc_stop(s->proc, SIGTERM, 20000);
    free(s->proc);
    free(s);
    return rc;
}

void h_sandbox_faults(const h_sandbox_t *s, const char *json)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/faults", s->control_url);
    h_resp_t r = h_http("POST", url, NULL, json, NULL);
    ck_assert_msg(r.status == 200, "setting faults %s failed: %ld %s", json, r.status, r.body);
    h_resp_free(&r);
    usleep(150 * 1000); /* "down" and "none" move the API listener asynchronously */
}

json_t *h_sandbox_charges(const h_sandbox_t *s)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_sandbox/charges", s->control_url);
    h_resp_t r = h_http("GET", url, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    json_t *j = json_incref(r.json);
    h_resp_free(&r);
    return j;
}

/* ----------------------------------------------------------------- HTTP */

typedef struct {
    char *buf;
    size_t len;
} hbuf_t;

static size_t hbuf_write(char *p, size_t sz, size_t n, void *ud)
{
    hbuf_t *b = ud;
    size_t add = sz * n;
    char *nb = realloc(b->buf, b->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, p, add);
    b->buf = nb;
    b->len += add;
    b->buf[b->len] = '\0';
    return add;
}

h_resp_t h_http(const char *method, const char *url, const char *key, const char *body,
                const char *const *headers)
{
    h_resp_t r = {0};
    CURL *h = curl_easy_init();
    hbuf_t b = {0}, hd = {0};
    struct curl_slist *sl = NULL;
    char auth[256];
    bool has_ct = false;
    for (const char *const *p = headers; p && *p; p++) {
        sl = curl_slist_append(sl, *p);
        if (!strncasecmp(*p, "Content-Type:", 13))
            has_ct = true;
    }
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        sl = curl_slist_append(sl, auth);
    }
    if (body && !has_ct)
        sl = curl_slist_append(sl, "Content-Type: application/json");
    sl = curl_slist_append(sl, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, hbuf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, hbuf_write);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(h);
    r.net = cc == CURLE_OK ? HTTPC_OK : HTTPC_BROKEN;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(sl);
    curl_easy_cleanup(h);
    r.body = b.buf ? b.buf : strdup("");
    r.headers = hd.buf ? hd.buf : strdup("");
    r.json = json_loads(r.body, 0, NULL);
    return r;
}

h_resp_t h_get(const h_gateway_t *g, const char *path, const char *key)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", g->url, path);
    return h_http("GET", url, key, NULL, NULL);
}

h_resp_t h_post(const h_gateway_t *g, const char *path, const char *key, const char *body)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", g->url, path);
    return h_http("POST", url, key, body, NULL);
}

void h_resp_free(h_resp_t *r)
{
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

char *h_resp_header(const h_resp_t *r, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            return strndup(v, (size_t)(p + ll - v));
        }
        p = eol ? eol + 2 : p + ll;
    }
    return NULL;
}

static const json_t *json_path(const json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save)) {
        if (json_is_array(j))
            j = json_array_get(j, (size_t)atoi(tok));
        else
            j = json_object_get(j, tok);
    }
    return j;
}

const char *h_json_str(const json_t *j, const char *path)
{
    const json_t *v = json_path(j, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

json_int_t h_json_int(const json_t *j, const char *path)
{
    const json_t *v = json_path(j, path);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

void h_assert_error(const h_resp_t *r, long status, err_code_t code)
{
    ck_assert_msg(r->status == status, "expected HTTP %ld, got %ld: %s", status, r->status,
                  r->body);
    ck_assert_msg(r->json != NULL, "error body is not JSON: %s", r->body);
    const char *type = h_json_str(r->json, "error.type");
    const char *c = h_json_str(r->json, "error.code");
    const char *msg = h_json_str(r->json, "error.message");
    ck_assert_msg(type && !strcmp(type, err_type(code)), "expected type %s: %s", err_type(code),
                  r->body);
    ck_assert_msg(c && !strcmp(c, err_code_str(code)), "expected code %s: %s",
                  err_code_str(code), r->body);
    ck_assert_msg(msg && *msg, "error without message: %s", r->body);
}

char *h_raw_tcp(int port, const void *data, size_t len, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return NULL;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    size_t cap = 8192, got = 0;
    char *buf = malloc(cap);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (poll(&pfd, 1, timeout_ms) > 0) {
        if (got + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + got, cap - got - 1, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memmem(buf, got, "\r\n\r\n", 4)) {
            /* one response is enough; give the body a moment */
            timeout_ms = 200;
        }
    }
    buf[got] = '\0';
    close(fd);
    return buf;
}

TCase *h_tcase(const char *name, int timeout_s)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout_s);
    return tc;
}

int h_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    char xml[1200];
    snprintf(xml, sizeof xml, "%s/%s.results.xml", workdir, test_name);
    srunner_set_xml(sr, xml);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

/* ------------------------------------------------------------- vaultd */
#ifdef VAULTD_BIN

static void vault_paths(h_vault_t *v, const char *db, const char *tag)
{
    snprintf(v->db, sizeof v->db, "%s", db);
    snprintf(v->tag, sizeof v->tag, "%s", tag);
    snprintf(v->config, sizeof v->config, "%s/%s.json", workdir, tag);
    snprintf(v->kek, sizeof v->kek, "%s/%s.kek", workdir, db); /* one vault per database */
    snprintf(v->ready_file, sizeof v->ready_file, "%s/%s.ready", workdir, tag);
    snprintf(v->log, sizeof v->log, "%s/%s.log", workdir, tag);
    /* sun_path holds 107 bytes; a deep build directory gets a /tmp socket */
    if (snprintf(v->socket, sizeof v->socket, "%s/%s.sock", workdir, tag) >=
        (int)sizeof v->socket - 1)
        snprintf(v->socket, sizeof v->socket, "/tmp/pcv-%d-%s.sock", (int)getpid(), tag);
}

static void vault_write_config(h_vault_t *v, const char *extra_json)
{
    char *ci = h_conninfo(v->db, "vault");
    char tlsport[1100];
    snprintf(tlsport, sizeof tlsport, "%s/%s.tls-port", workdir, v->tag);
    unlink(tlsport);
    json_t *cfg = json_pack(
        "{s:{s:s, s:s, s:s}, s:s, s:{s:s, s:s, s:i}, s:{s:s}, s:{s:s, s:s}, s:{s:s}}", "socket",
        "path", v->socket, "allow_uids", "0", "admin_uids", "0", "kek_file", v->kek, "database",
        "conninfo", ci, "password_file", h_password_file("vault"), "pool_size", 8, "run",
        "ready_file", v->ready_file, "log", "level", "info", "file", v->log, "tls", "port_file",
        tlsport);
    if (extra_json) {
        json_error_t je;
        json_t *extra = json_loads(extra_json, 0, &je);
        ck_assert_msg(extra != NULL, "bad extra vault config: %s", je.text);
        json_object_update_recursive(cfg, extra);
        json_decref(extra);
    }
    ck_assert_int_eq(json_dump_file(cfg, v->config, JSON_INDENT(2)), 0);
    json_decref(cfg);
    free(ci);
}

/* 0 once serving, the exit code if it died first, -1 on a timeout. */
static int vault_wait(h_vault_t *v)
{
    char tlsport[1100];
    snprintf(tlsport, sizeof tlsport, "%s/%s.tls-port", workdir, v->tag);
    for (int waited = 0; waited < 20000; waited += 20) {
        if (h_wait_port_file(v->ready_file, 0) > 0) {
            v->tls_port = h_wait_port_file(tlsport, 0);
            if (v->tls_port < 0)
                v->tls_port = 0;
            return 0;
        }
        int st;
        if (waitpid(v->proc->pid, &st, WNOHANG) == v->proc->pid) {
            v->proc->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(20 * 1000);
    }
    return -1;
}

static int vault_spawn(h_vault_t *v)
{
    unlink(v->ready_file);
    char *argv[] = {VAULTD_BIN, "--config", v->config, NULL};
    v->proc = h_proc_start(v->tag, argv, NULL);
    return vault_wait(v);
}

int h_vault_try_start(const char *db, const char *tag, const char *extra_json, h_vault_t **out)
{
    h_vault_t *v = calloc(1, sizeof *v);
    vault_paths(v, db, tag);
    if (access(v->kek, F_OK) != 0)
        h_secret_file(v->kek);
    vault_write_config(v, extra_json);
    int rc = vault_spawn(v);
    if (rc == 0) {
        *out = v;
        return 0;
    }
    if (rc < 0)
        h_proc_stop(v->proc, SIGKILL, 1000);
    free(v->proc);
    free(v);
    *out = NULL;
    return rc;
}

h_vault_t *h_vault_start(const char *db, const char *tag, const char *extra_json)
{
    h_vault_t *v = NULL;
    int rc = h_vault_try_start(db, tag, extra_json, &v);
    ck_assert_msg(rc == 0, "vaultd (%s) did not start (%d); see %s/%s.out", tag, rc, workdir,
                  tag);
    return v;
}

int h_vault_stop(h_vault_t *v, int sig)
{
    if (!v)
        return -1;
    int rc = h_proc_stop(v->proc, sig, 20000);
    free(v->proc);
    free(v);
    return rc;
}

void h_vault_restart(h_vault_t *v)
{
    int rc = h_proc_stop(v->proc, SIGTERM, 20000);
    ck_assert_msg(rc == 0, "vaultd (%s) did not stop cleanly: %d", v->tag, rc);
    free(v->proc);
    rc = vault_spawn(v);
    ck_assert_msg(rc == 0, "vaultd (%s) did not restart (%d)", v->tag, rc);
}

char *h_vault_gateway_json(const h_vault_t *v)
{
    return str_printf("{\"vault\":{\"socket\":\"%s\"}}", v->socket);
}

int h_vaultctl(const h_vault_t *v, char **out, const char *const args[])
{
    char *argv[32] = {VAULTCTL_BIN, "--socket", (char *)v->socket};
    int n = 3;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return h_run(out, argv);
}

#endif
