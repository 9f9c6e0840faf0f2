/* test_peer.c -- the body's method follows the peer (src/peer.cpp): TCP
 * peers on this host (loopback v4, v6, v4-mapped, the host's own non-loopback
 * address) take the copy path; Unix sockets and remote peers keep sendfile;
 * SF_FORCE_SENDFILE, SF_NO_SENDFILE and env EVSENDFILE_NO_SENDFILE /
 * EVSENDFILE_FORCE_SENDFILE override;
 * getpeername failing keeps sendfile.  sf_peer_flags gives the same choice
 * once per connection, and transfers given its result ask nothing.  The method is read off the seam's
 * counters (sendfile calls against pread calls), never off timings.  A
 * remote peer is simulated by the seam's getpeername hook. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

#define HEAD "HTTP/1.1 200 OK\r\n\r\n"
#define BODY (256 * KiB + 5)

enum method { SENDFILE, COPY, SMALL };

static int teardown(void **state) {
    (void)state;
    seam_uninstall();
    files_cleanup();
    return 0;
}

/* Sends `count` bytes of a patterned file from `s` to `r` (both closed
 * here), checks every byte, and says which method moved the body. */
static enum method send_and_observe(int s, int r, uint64_t count, unsigned flags) {
    int fd = make_pattern_file(count + 11, NULL);
    struct iovec hv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, NULL, NULL);
    o.flags = flags;
    sf_region_t reg = {fd, NULL, 11, count};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, count);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 11, count, NULL));
    reader_free(&rd);
    close(s);
    close(r);
    close(fd);
    if (seam.sendfile.calls > 0) {
        assert_int_equal(seam.pread.calls, 0);
        assert_int_equal(seam.sendfile.bytes, count);
        return SENDFILE;
    }
    assert_true(seam.pread.calls >= 1);
    return count <= SF_SMALL_BODY_MAX ? SMALL : COPY;
}

/* A connected pair to `addr` (any family; port 0 is filled in). */
static void pair_to(struct sockaddr_storage *addr, socklen_t alen, int *sender, int *receiver) {
    int ls = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    assert_int_equal(bind(ls, (struct sockaddr *)addr, alen), 0);
    assert_int_equal(listen(ls, 1), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)addr, &alen), 0);
    int c = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)addr, alen), 0);
    int s = accept(ls, NULL, NULL);
    assert_true(s >= 0);
    close(ls);
    set_nonblocking(s, 1);
    *sender = s;
    *receiver = c;
}

static enum method over_tcp4(unsigned flags) {
    int s, r;
    tcp_pair(&s, &r);
    seam_install();
    return send_and_observe(s, r, BODY, flags);
}

static enum method over_unix(unsigned flags) {
    int s, r;
    socketpair_nb(&s, &r);
    seam_install();
    return send_and_observe(s, r, BODY, flags);
}

/* ------------------------------------------------------- each peer kind */

static void test_loopback_v4_copies(void **state) {
    (void)state;
    assert_int_equal(over_tcp4(0), COPY);
    assert_int_equal(seam.getpeername.calls, 1); /* asked once per job */
    assert_int_equal(seam.getsockname.calls, 0); /* a loopback peer needs no more */
}

static void test_loopback_v6_copies(void **state) {
    (void)state;
    int s, r;
    tcp6_pair(&s, &r);
    seam_install();
    assert_int_equal(send_and_observe(s, r, BODY, 0), COPY);
    assert_int_equal(seam.getpeername.calls, 1);
    assert_int_equal(seam.getsockname.calls, 0);
}

/* An IPv6 socket talking to 127.0.0.1 sees the peer as ::ffff:127.0.0.1. */
static void test_loopback_v4_mapped_copies(void **state) {
    (void)state;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    a6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6->sin6_addr), 1);
    int s, r;
    pair_to(&ss, sizeof *a6, &s, &r);
    seam_install();
    assert_int_equal(send_and_observe(s, r, BODY, 0), COPY);
    assert_int_equal(seam.getsockname.calls, 0); /* known loopback, not by comparison */
}

static void test_unix_socket_keeps_sendfile(void **state) {
    (void)state;
    assert_int_equal(over_unix(0), SENDFILE);
    assert_int_equal(seam.getpeername.calls, 1);
}

/* The host's own non-loopback address: the connection runs over lo too. */
static void own_address_case(int family) {
    struct ifaddrs *ifs = NULL;
    assert_int_equal(getifaddrs(&ifs), 0);
    struct sockaddr_storage ss;
    socklen_t alen = 0;
    for (struct ifaddrs *i = ifs; i && !alen; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != family || (i->ifa_flags & IFF_LOOPBACK) ||
            !(i->ifa_flags & IFF_UP))
            continue;
        if (family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr))
            continue; /* needs a scope id; a global address says the same */
        alen = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        memset(&ss, 0, sizeof ss);
        memcpy(&ss, i->ifa_addr, alen);
    }
    freeifaddrs(ifs);
    if (!alen) skip(); /* no such address on this machine */
    int s, r;
    pair_to(&ss, alen, &s, &r);
    seam_install();
    assert_int_equal(send_and_observe(s, r, BODY, 0), COPY);
    assert_int_equal(seam.getpeername.calls, 1);
    assert_int_equal(seam.getsockname.calls, 1); /* not loopback: compared with our own address */
}

static void test_own_address_v4_copies(void **state) {
    (void)state;
    own_address_case(AF_INET);
}

static void test_own_address_v6_copies(void **state) {
    (void)state;
    own_address_case(AF_INET6);
}

/* --------------------------------------------- a remote peer, simulated */

static int g_remote_family;

static int remote_peer(int fd, struct sockaddr *addr, socklen_t *len) {
    (void)fd;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t n;
    if (g_remote_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(40000);
        inet_pton(AF_INET, "198.51.100.7", &a->sin_addr);
        n = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(40000);
        inet_pton(AF_INET6, "2001:db8::7", &a->sin6_addr);
        n = sizeof *a;
    }
    memcpy(addr, &ss, *len < n ? *len : n);
    *len = n;
    return 0;
}

static void test_remote_v4_keeps_sendfile(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    seam_install();
    g_remote_family = AF_INET;
    seam.getpeername_hook = remote_peer;
    assert_int_equal(send_and_observe(s, r, BODY, 0), SENDFILE);
    assert_int_equal(seam.getpeername.calls, 1);
    assert_int_equal(seam.getsockname.calls, 1);
}

static void test_remote_v6_keeps_sendfile(void **state) {
    (void)state;
    int s, r;
    tcp6_pair(&s, &r);
    seam_install();
    g_remote_family = AF_INET6;
    seam.getpeername_hook = remote_peer;
    assert_int_equal(send_and_observe(s, r, BODY, 0), SENDFILE);
}

/* ------------------------------------------------------------ overrides */

static void test_force_sendfile_on_loopback(void **state) {
    (void)state;
    assert_int_equal(over_tcp4(SF_FORCE_SENDFILE), SENDFILE);
    assert_int_equal(seam.getpeername.calls, 0); /* nothing to decide */
}

static void test_no_sendfile_wins(void **state) {
    (void)state;
    assert_int_equal(over_unix(SF_NO_SENDFILE), COPY);
    assert_int_equal(over_unix(SF_NO_SENDFILE | SF_FORCE_SENDFILE), COPY);
    assert_int_equal(over_tcp4(SF_NO_SENDFILE | SF_FORCE_SENDFILE), COPY);
}

/* EVSENDFILE_NO_SENDFILE is read when the library loads: CTest runs this
 * binary again as core_peer_env with it set, this test only. */
static void test_env_no_sendfile_wins(void **state) {
    (void)state;
    const char *v = getenv("EVSENDFILE_NO_SENDFILE");
    if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0) skip(); /* core_peer_env runs it */
    assert_int_equal(over_unix(0), COPY);
    assert_int_equal(over_unix(SF_FORCE_SENDFILE), COPY);
    assert_int_equal(over_tcp4(SF_FORCE_SENDFILE), COPY);
    int s, r;
    socketpair_nb(&s, &r);
    assert_int_equal(sf_peer_flags(s, 0), SF_NO_SENDFILE);
    close(s);
    close(r);
}

/* EVSENDFILE_FORCE_SENDFILE=1 (read at load) is SF_FORCE_SENDFILE for every
 * transfer: CTest runs this binary as core_peer_force_env, this test only. */
static void test_env_force_sendfile(void **state) {
    (void)state;
    const char *v = getenv("EVSENDFILE_FORCE_SENDFILE");
    if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0) skip(); /* core_peer_force_env runs it */
    assert_int_equal(over_tcp4(0), SENDFILE);
    assert_int_equal(seam.getpeername.calls, 0);
    assert_int_equal(over_tcp4(SF_NO_SENDFILE), COPY); /* SF_NO_SENDFILE still wins */
    int s, r;
    tcp_pair(&s, &r);
    assert_int_equal(sf_peer_flags(s, 0), SF_FORCE_SENDFILE);
    close(s);
    close(r);
}

/* Whether zero-copy CAN serve the socket: the per-peer choice is not asked. */
static void test_can_use_unchanged(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    assert_int_equal(sf_can_use(s, 0), 1);
    assert_int_equal(sf_can_use(s, SF_FORCE_SENDFILE), 1);
    assert_int_equal(sf_can_use(s, SF_NO_SENDFILE), 0);
    close(s);
    close(r);
}

/* ------------------------------------------ sf_peer_flags: once per socket */

/* What sf_peer_flags answers on `s`, and a transfer given that answer: it
 * moves the body by the same method as one that decides itself, and asks
 * nothing.  Closes s and r. */
static enum method peer_flags_then_send(int s, int r, unsigned flags, unsigned want_added) {
    seam_install();
    int f = sf_peer_flags(s, flags);
    assert_int_equal(f, (int)(flags | want_added));
    int asked = seam.getpeername.calls;
    seam_install(); /* counts from zero again */
    enum method m = send_and_observe(s, r, BODY, (unsigned)f);
    assert_int_equal(seam.getpeername.calls, 0);
    assert_int_equal(seam.getsockname.calls, 0);
    assert_int_equal(asked, 1);
    return m;
}

static void test_peer_flags_loopback_says_copy(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    assert_int_equal(peer_flags_then_send(s, r, SF_TRUSTED, SF_NO_SENDFILE), COPY);
    tcp6_pair(&s, &r);
    assert_int_equal(peer_flags_then_send(s, r, 0, SF_NO_SENDFILE), COPY);
}

static void test_peer_flags_unix_says_sendfile(void **state) {
    (void)state;
    int s, r;
    socketpair_nb(&s, &r);
    assert_int_equal(peer_flags_then_send(s, r, 0, SF_FORCE_SENDFILE), SENDFILE);
}

static void test_peer_flags_remote_says_sendfile(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    seam_install();
    g_remote_family = AF_INET;
    seam.getpeername_hook = remote_peer;
    int f = sf_peer_flags(s, 0);
    assert_int_equal(f, SF_FORCE_SENDFILE);
    assert_int_equal(seam.getpeername.calls, 1);
    assert_int_equal(seam.getsockname.calls, 1); /* compared with our own address */
    seam_install(); /* counts from zero again */
    assert_int_equal(send_and_observe(s, r, BODY, (unsigned)f), SENDFILE);
    assert_int_equal(seam.getpeername.calls + seam.getsockname.calls, 0);
}

/* A method the caller fixed comes back as it is: nothing to ask. */
static void test_peer_flags_keeps_a_fixed_choice(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    seam_install();
    assert_int_equal(sf_peer_flags(s, SF_NO_SENDFILE), SF_NO_SENDFILE);
    assert_int_equal(sf_peer_flags(s, SF_FORCE_SENDFILE | SF_TRUSTED), SF_FORCE_SENDFILE | SF_TRUSTED);
    assert_int_equal(sf_peer_flags(s, SF_NO_SENDFILE | SF_FORCE_SENDFILE), SF_NO_SENDFILE | SF_FORCE_SENDFILE);
    assert_int_equal(sf_peer_flags(s, SF_TLS), SF_TLS | SF_FORCE_SENDFILE); /* kTLS keeps sendfile */
    assert_int_equal(seam.getpeername.calls, 0);
    close(s);
    close(r);
}

/* No peer to ask about: the errno, negated, and nothing else happens. */
static void test_peer_flags_errors(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    close(r);
    close(s);
    assert_int_equal(sf_peer_flags(s, 0), -EBADF);
    int fd = make_pattern_file(10, NULL);
    assert_int_equal(sf_peer_flags(fd, 0), -ENOTSOCK);
    close(fd);
    int lone = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(sf_peer_flags(lone, 0), -ENOTCONN);
    close(lone);
    tcp_pair(&s, &r);
    seam_install();
    seam.getpeername.fault = (seam_fault_t){.err = ENOBUFS, .first = 1};
    assert_int_equal(sf_peer_flags(s, 0), -ENOBUFS);
    g_remote_family = AF_INET;
    seam.getpeername_hook = remote_peer;
    seam.getsockname.fault = (seam_fault_t){.err = ENOBUFS, .first = 1};
    assert_int_equal(sf_peer_flags(s, 0), -ENOBUFS);
    close(s);
    close(r);
}

/* ------------------------------------------------- failures and cost */

/* getpeername failing: the peer's place is unknown, sendfile as before. */
static void test_getpeername_failure_keeps_sendfile(void **state) {
    (void)state;
    static const int errs[] = {ENOTCONN, ENOBUFS, EBADF};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        int s, r;
        tcp_pair(&s, &r);
        seam_install();
        seam.getpeername.fault = (seam_fault_t){.err = errs[i], .first = 1};
        assert_int_equal(send_and_observe(s, r, BODY, 0), SENDFILE);
        assert_int_equal(seam.getpeername.injected, 1);
    }
}

/* getsockname failing for a non-loopback peer: sendfile too. */
static void test_getsockname_failure_keeps_sendfile(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    seam_install();
    g_remote_family = AF_INET;
    seam.getpeername_hook = remote_peer;
    seam.getsockname.fault = (seam_fault_t){.err = ENOBUFS, .first = 1};
    assert_int_equal(send_and_observe(s, r, BODY, 0), SENDFILE);
    assert_int_equal(seam.getsockname.injected, 1);
}

/* A small body never asks: it goes in one writev whoever the peer is. */
static void test_small_body_does_not_ask(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    seam_install();
    assert_int_equal(send_and_observe(s, r, SF_SMALL_BODY_MAX, 0), SMALL);
    assert_int_equal(seam.getpeername.calls, 0);
}

/* Just over the small path, over loopback: the copy path already. */
static void test_just_over_small_copies_on_loopback(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    seam_install();
    assert_int_equal(send_and_observe(s, r, SF_SMALL_BODY_MAX + 1, 0), COPY);
}

/* The stepping API decides in sf_job_new, the same way. */
static void test_stepping_api_decides_too(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    int fd = make_pattern_file(BODY, NULL);
    seam_install();
    sf_region_t reg = {fd, NULL, 0, BODY};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, NULL, &job), 0);
    assert_int_equal(seam.getpeername.calls, 1);
    reader_t rd = {.fd = r};
    reader_start(&rd);
    int st;
    while ((st = sf_job_step(job)) != SF_STEP_DONE) {
        assert_true(st > 0);
        usleep(1000);
    }
    sf_job_free(job);
    shutdown(s, SHUT_WR);
    reader_join(&rd);
    assert_int_equal(rd.total, BODY);
    assert_int_equal(seam.sendfile.calls, 0);
    assert_true(seam.pread.calls >= 1);
    reader_free(&rd);
    close(s);
    close(r);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_loopback_v4_copies, teardown),
        cmocka_unit_test_teardown(test_loopback_v6_copies, teardown),
        cmocka_unit_test_teardown(test_loopback_v4_mapped_copies, teardown),
        cmocka_unit_test_teardown(test_unix_socket_keeps_sendfile, teardown),
        cmocka_unit_test_teardown(test_own_address_v4_copies, teardown),
        cmocka_unit_test_teardown(test_own_address_v6_copies, teardown),
        cmocka_unit_test_teardown(test_remote_v4_keeps_sendfile, teardown),
        cmocka_unit_test_teardown(test_remote_v6_keeps_sendfile, teardown),
        cmocka_unit_test_teardown(test_force_sendfile_on_loopback, teardown),
        cmocka_unit_test_teardown(test_no_sendfile_wins, teardown),
        cmocka_unit_test_teardown(test_env_no_sendfile_wins, teardown),
        cmocka_unit_test_teardown(test_env_force_sendfile, teardown),
        cmocka_unit_test_teardown(test_can_use_unchanged, teardown),
        cmocka_unit_test_teardown(test_peer_flags_loopback_says_copy, teardown),
        cmocka_unit_test_teardown(test_peer_flags_unix_says_sendfile, teardown),
        cmocka_unit_test_teardown(test_peer_flags_remote_says_sendfile, teardown),
        cmocka_unit_test_teardown(test_peer_flags_keeps_a_fixed_choice, teardown),
        cmocka_unit_test_teardown(test_peer_flags_errors, teardown),
        cmocka_unit_test_teardown(test_getpeername_failure_keeps_sendfile, teardown),
        cmocka_unit_test_teardown(test_getsockname_failure_keeps_sendfile, teardown),
        cmocka_unit_test_teardown(test_small_body_does_not_ask, teardown),
        cmocka_unit_test_teardown(test_just_over_small_copies_on_loopback, teardown),
        cmocka_unit_test_teardown(test_stepping_api_decides_too, teardown),
    };
    if (getenv("EVSENDFILE_NO_SENDFILE") != NULL) cmocka_set_test_filter("test_env_no_sendfile_wins");
    else if (getenv("EVSENDFILE_FORCE_SENDFILE") != NULL) cmocka_set_test_filter("test_env_force_sendfile");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
