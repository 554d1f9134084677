/*
 * fuzz_clients.c - the CURVE client allow-list (curve_clients files).
 */
#include "clients.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    pd_clients_t *list = NULL;
    int rc = pd_clients_parse(&list, (const char *)data, size, "fuzz.keys",
                              err, sizeof(err));
    if (rc == 0 && list != NULL) {
        size_t n = pd_clients_size(list);
        for (size_t i = 0; i < n && i < 4; i++) {
            uint8_t key[32] = { 0 };
            (void)pd_clients_by_key(list, key);
        }
    } else if (rc != 0 && memchr(err, '\0', sizeof(err)) == NULL) {
        abort();
    }
    pd_clients_destroy(&list);
    return 0;
}
