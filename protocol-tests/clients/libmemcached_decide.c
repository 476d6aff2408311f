/* Rate-limit decisions with libmemcached's plain memcached_get (no rate-limit API).
 *
 *   libmemcached_decide CONFIG COUNT KEY...
 *
 * CONFIG is a libmemcached configuration string, e.g. "--SERVER=127.0.0.1:11211" or
 * "--SERVER=127.0.0.1:11211 --BINARY-PROTOCOL". Each of COUNT rounds gets every KEY once and
 * prints "KEY VALUE", "KEY MISS" or "KEY ERROR reason".
 * Build: cc -o libmemcached_decide libmemcached_decide.c $(pkg-config --cflags --libs libmemcached)
 */
#include <libmemcached/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: libmemcached_decide CONFIG COUNT KEY...\n");
        return 2;
    }
    memcached_st *mc = memcached(argv[1], strlen(argv[1]));
    if (mc == NULL) {
        fprintf(stderr, "bad CONFIG: %s\n", argv[1]);
        return 2;
    }
    int count = atoi(argv[2]);
    for (int i = 0; i < count; i++) {
        for (int k = 3; k < argc; k++) {
            size_t len = 0;
            uint32_t flags = 0;
            memcached_return_t rc;
            char *value = memcached_get(mc, argv[k], strlen(argv[k]), &len, &flags, &rc);
            if (rc == MEMCACHED_SUCCESS) {
                printf("%s %.*s\n", argv[k], (int)len, value);
            } else if (rc == MEMCACHED_NOTFOUND) {
                printf("%s MISS\n", argv[k]);
            } else {
                printf("%s ERROR %s\n", argv[k], memcached_strerror(mc, rc));
            }
            free(value);
        }
    }
    memcached_free(mc);
    return 0;
}
