/* layout.c -- run by build.rs: prints, as Rust constants, what the C compiler
 * says about the public types and constants of evsendfile.h.  The layout test
 * (tests/layout.rs) compares them with the Rust mirrors in src/sys.rs. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/time.h>

#include "evsendfile.h"

#define SIZE(type) printf("pub const SIZEOF_%s: usize = %zu;\n", #type, sizeof(type))
#define ALIGN(type) printf("pub const ALIGNOF_%s: usize = %zu;\n", #type, _Alignof(type))
#define OFFSET(type, field) \
    printf("pub const OFFSETOF_%s_%s: usize = %zu;\n", #type, #field, offsetof(type, field))
#define SIGNED(name) printf("pub const %s: i128 = %lld;\n", #name, (long long)(name))
#define UNSIGNED(name) printf("pub const %s: i128 = %llu;\n", #name, (unsigned long long)(name))

typedef struct iovec iovec;
typedef struct timeval timeval;

int main(void) {
    SIZE(sf_region_t);
    ALIGN(sf_region_t);
    OFFSET(sf_region_t, fd);
    OFFSET(sf_region_t, path);
    OFFSET(sf_region_t, offset);
    OFFSET(sf_region_t, count);

    SIZE(sf_options_t);
    ALIGN(sf_options_t);
    OFFSET(sf_options_t, struct_size);
    OFFSET(sf_options_t, head);
    OFFSET(sf_options_t, head_count);
    OFFSET(sf_options_t, tail);
    OFFSET(sf_options_t, tail_count);
    OFFSET(sf_options_t, max_chunk);
    OFFSET(sf_options_t, idle_timeout_ms);
    OFFSET(sf_options_t, flags);
    OFFSET(sf_options_t, file_size);

    SIZE(iovec);
    OFFSET(iovec, iov_base);
    OFFSET(iovec, iov_len);
    SIZE(timeval);
    OFFSET(timeval, tv_sec);
    OFFSET(timeval, tv_usec);
    SIZE(sf_done_cb);

    SIGNED(SF_VERSION_MAJOR);
    SIGNED(SF_VERSION_MINOR);
    SIGNED(SF_VERSION_PATCH);
    SIGNED(SF_ETRUNCATED);
    SIGNED(SF_ETIMEDOUT);
    SIGNED(SF_EBLOCKING);
    SIGNED(SF_ENOKTLS);
    UNSIGNED(SF_COUNT_TO_EOF);
    UNSIGNED(SF_NO_SENDFILE);
    UNSIGNED(SF_TLS);
    UNSIGNED(SF_NO_CORK);
    UNSIGNED(SF_TRUSTED);
    UNSIGNED(SF_FORCE_SENDFILE);
    UNSIGNED(SF_DISK_INLINE);
    UNSIGNED(SF_SHUT_WR);
    UNSIGNED(SF_KNOWN_SIZE);
    UNSIGNED(SF_DEFAULT_MAX_CHUNK);
    UNSIGNED(SF_SMALL_BODY_MAX);
    UNSIGNED(SF_COPY_BUFFER_SIZE);
    SIGNED(SF_STEP_DONE);
    SIGNED(SF_STEP_WRITE);
    SIGNED(SF_STEP_READ);
    SIGNED(SF_STEP_YIELD);
    SIGNED(SF_STEP_SOURCE);

    /* errno values, so tests need no libc crate */
    SIGNED(EINVAL);
    SIGNED(ENOENT);
    SIGNED(ERANGE);
    SIGNED(EISDIR);
    SIGNED(EPIPE);
    SIGNED(ECONNRESET);
    SIGNED(EBADF);
    SIGNED(ENOTSOCK);
    SIGNED(EPROTOTYPE);
    SIGNED(SIGPIPE);
    return 0;
}
