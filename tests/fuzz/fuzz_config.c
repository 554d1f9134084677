/*
 * fuzz_config.c - parleyd.conf parsing.
 */
#include "config.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pd_config_t cfg;
    char err[512];
    pd_config_defaults(&cfg);
    if (pd_config_parse(&cfg, (const char *)data, size, "fuzz.conf", err,
                        sizeof(err))
        == 0)
        (void)pd_config_finish(&cfg);
    else if (memchr(err, '\0', sizeof(err)) == NULL)
        abort();
    return 0;
}
