/* Knows libevsendfile_evhttp only as an installed package (pkg-config
 * evsendfile-evhttp): links, loads, and refuses a NULL request. */
#include <errno.h>
#include <evsendfile_evhttp.h>
#include <stdio.h>

int main(void) {
    sf_region_t region = {-1, "/dev/null", 0, SF_COUNT_TO_EOF};
    int rc = sf_evhttp_send_file(NULL, 200, NULL, &region, NULL, NULL, NULL);
    printf("evsendfile %s, sf_evhttp_send_file(NULL) = %s\n", sf_version_text(), sf_err_name(rc));
    return rc == -EINVAL ? 0 : 1;
}
