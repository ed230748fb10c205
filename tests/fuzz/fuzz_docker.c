/* libFuzzer driver: the Docker reply decoders and the event splitter on
 * arbitrary bytes. Nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>

#include "docker_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_line(void *ud, const char *line, size_t len)
{
    docker_event ev;
    (void)ud;
    docker_decode_event(line, len, &ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char err[256];
    container *c = NULL;
    if (docker_decode_inspect(s, size, &c, err, sizeof(err)) == 0)
        container_free(c);
    char **ids = NULL;
    size_t n = 0;
    if (docker_decode_list(s, size, &ids, &n, err, sizeof(err)) == 0)
        docker_free_ids(ids, n);
    char api[16], min[16];
    docker_decode_version(s, size, api, sizeof(api), min, sizeof(min));
    docker_splitter sp = {0};
    /* Feed in two uneven pieces so chunk boundaries are exercised too. */
    size_t half = size / 3;
    docker_splitter_feed(&sp, s, half, on_line, NULL);
    docker_splitter_feed(&sp, s + half, size - half, on_line, NULL);
    docker_splitter_free(&sp);
    return 0;
}
