/* A program that knows evsendfile only as an installed package: it sends
 * its own source file over a socketpair and checks the bytes. */
#include <evsendfile.h>
#include <event2/event.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int status = 1;

static void done(sf_transfer_t *t, int st, uint64_t sent, void *arg) {
    (void)t;
    (void)arg;
    printf("status=%s body_sent=%llu\n", sf_err_name(st), (unsigned long long)sent);
    status = st;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 2;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    struct event_base *base = event_base_new();
    sf_region_t region = {-1, argv[1], 0, 100};
    int rc = sf_send_async(base, sv[0], &region, NULL, done, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "sf_send_async: %s\n", sf_err_text(rc));
        return 1;
    }
    event_base_dispatch(base);
    char got[100], want[100];
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(want, 1, sizeof want, f) != sizeof want) return 2;
    fclose(f);
    if (read(sv[1], got, sizeof got) != (ssize_t)sizeof got || memcmp(got, want, sizeof got) != 0) return 1;
    event_base_free(base);
    printf("version %s ok\n", sf_version_text());
    return status == 0 ? 0 : 1;
}
