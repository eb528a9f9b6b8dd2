/* vaultd's process hardening: no network (an empty network namespace and a
 * seccomp filter that refuses every socket family but AF_UNIX), an
 * unprivileged user, and the uid lists that peers are checked against. */
#include "vault/vaultd/vaultd.h"
#include <errno.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define VD_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define VD_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

bool vd_unshare_network(void)
{
    return unshare(CLONE_NEWNET) == 0;
}

bool vd_seccomp_unix_only(char *err, size_t errlen)
{
#ifndef VD_AUDIT_ARCH
    snprintf(err, errlen, "seccomp filter not built for this architecture");
    return false;
#else
    /* Any other architecture's syscall numbers (e.g. the x32 ABI) are killed
     * outright rather than mis-filtered. */
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, VD_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1), /* x32 */
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#endif
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EAFNOSUPPORT & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* every other syscall */
    };
    struct sock_fprog fp = {.len = (unsigned short)PC_ARRAY_LEN(prog), .filter = prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp) != 0) {
        snprintf(err, errlen, "seccomp: %s", strerror(errno));
        return false;
    }
    return true;
#endif
}

bool vd_drop_privileges(const char *user, char *err, size_t errlen)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "run.user: no such user: %s", user);
        return false;
    }
    /* Guarded memory is mlock'd; an unprivileged user's default limit
     * (8 MiB) is below what a busy vault holds. Raise it while we still can. */
    struct rlimit ml = {256u << 20, 256u << 20};
    if (setrlimit(RLIMIT_MEMLOCK, &ml) != 0)
        log_info("cannot raise RLIMIT_MEMLOCK (%s); guarded memory beyond the limit is not locked",
                 strerror(errno));
    if (initgroups(user, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "cannot switch to user %s: %s", user, strerror(errno));
        return false;
    }
    if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        snprintf(err, errlen, "privileges could be regained after the switch to %s", user);
        return false;
    }
    return true;
}

bool vd_parse_uids(const char *list, uid_t *out, int max, int *n, char *err, size_t errlen)
{
    *n = 0;
    char *copy = strdup(list ? list : "");
    char *save = NULL;
    bool ok = copy != NULL;
    for (char *tok = ok ? strtok_r(copy, ", ", &save) : NULL; tok && ok;
         tok = strtok_r(NULL, ", ", &save)) {
        char *end;
        long v = strtol(tok, &end, 10);
        uid_t uid;
        if (*end == '\0' && end != tok && v >= 0 && v < 0x7fffffff) {
            uid = (uid_t)v;
        } else {
            struct passwd *pw = getpwnam(tok);
            if (!pw) {
                snprintf(err, errlen, "unknown user in uid list: %s", tok);
                ok = false;
                break;
            }
            uid = pw->pw_uid;
        }
        if (*n == max) {
            snprintf(err, errlen, "uid list longer than %d entries", max);
            ok = false;
            break;
        }
        out[(*n)++] = uid;
    }
    free(copy);
    return ok;
}
