/* libFuzzer driver: dns_answer on arbitrary packets against a small zone. The
 * answer must fit the buffer and, when given, carry the query's id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

static dns_zone *zone;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (zone == NULL) {
        zone = dns_zone_new("loop.test", 5);
        dns_record recs[] = {{"web.myapp.loop.test", 0x7f000002},
                             {"pg.loop.test", 0x7f000003},
                             {"web-1.myapp.loop.test", 0x7f000002}};
        dns_zone_set(zone, recs, 3);
    }
    uint8_t out[4096];
    size_t n = dns_answer(zone, data, size, out, sizeof(out), 512);
    if (n > sizeof(out))
        abort();
    if (n >= 2 && size >= 2 && memcmp(out, data, 2) != 0)
        abort();
    n = dns_answer(zone, data, size, out, sizeof(out), 0);
    if (n > sizeof(out))
        abort();
    return 0;
}
