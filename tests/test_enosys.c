/* test_enosys.c -- sendfile failing with ENOSYS is remembered for the rest
 * of the process (a std::atomic in src/job.cpp that nothing resets), so
 * this theme has a process of its own. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

#define HEAD "HEAD-BYTES\r\n"
#define TAIL "\r\nTAIL"

static done_rec_t send_checked(int fd, uint64_t off, uint64_t count) {
    int s, r;
    socketpair_nb(&s, &r);
    small_buffers(s, r, 4096);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    sf_region_t reg = {fd, NULL, off, count};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, count);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, off, count, TAIL));
    reader_free(&rd);
    close(s);
    close(r);
    return d;
}

static void test_enosys_is_remembered(void **state) {
    (void)state;
    int fd = make_pattern_file(2 * MiB, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    assert_int_equal(sf_can_use(s, 0), 1);

    /* ENOSYS after some bytes went out: the rest goes by copy. */
    seam_install();
    seam.sendfile.fault = (seam_fault_t){.err = ENOSYS, .first = 3, .cap = 40000};
    send_checked(fd, 12, 2 * MiB - 12);
    assert_int_equal(seam.sendfile.injected, 1);
    assert_int_equal(seam.sendfile.calls, 3);
    assert_true(seam.pread.calls >= 1);
    assert_int_equal(seam.pread.log[0].off, 12 + seam.sendfile.bytes);

    /* From now on: no sendfile anywhere in this process. */
    assert_int_equal(sf_can_use(s, 0), 0);
    assert_int_equal(sf_peer_flags(s, 0), SF_NO_SENDFILE); /* a Unix socket, which would get sendfile */
    seam_install(); /* fresh counters, no fault */
    send_checked(fd, 0, 2 * MiB);
    assert_int_equal(seam.sendfile.calls, 0);
    assert_true(seam.pread.calls >= 8);

    close(s);
    close(r);
    close(fd);
    seam_uninstall();
    files_cleanup();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enosys_is_remembered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
