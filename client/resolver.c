/* loophole resolve-install / resolve-uninstall: ask the daemon (which runs
 * as root) to add or remove the system resolver entry. The daemon checks
 * our credentials; a 403 becomes "run sudo loophole ...". */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "protocol.h"

static int resolve(const cli_ctx *ctx, int argc, char **argv, bool install)
{
    const char *cmd = install ? "resolve-install" : "resolve-uninstall";
    if (argc > 1) {
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
            printf("usage: loophole %s\n", cmd);
            return CLI_OK;
        }
        fprintf(stderr, "loophole: %s takes no arguments\n", cmd);
        return CLI_USAGE;
    }
    httpc_response r;
    int rc = cli_call(ctx, install ? "POST" : "DELETE", LH_API_RESOLVER, cmd, &r);
    if (rc != CLI_OK)
        return rc;
    httpc_response_free(&r);

    /* Say where, from the status (best effort: the change itself is done). */
    char where[600] = "";
    if (httpc_request(ctx->sock, "GET", LH_API_STATUS, 5000, &r) == 0 && r.status == 200 &&
        r.body.data) {
        yajl_val root = NULL;
        (void)cli_parse_json(r.body.data, r.body.len, &root, NULL, 0);
        const char *path = json_str(root, "resolver", "path", NULL);
        const char *dom = json_str(root, "dns", "domain", NULL);
        if (path && dom)
            snprintf(where, sizeof(where), " for %s (%s)", dom, path);
        json_free(root);
    }
    httpc_response_free(&r);
    printf("loophole: %s the resolver entry%s\n", install ? "installed" : "removed", where);
    return CLI_OK;
}

int cmd_resolve_install(const cli_ctx *ctx, int argc, char **argv)
{
    return resolve(ctx, argc, argv, true);
}

int cmd_resolve_uninstall(const cli_ctx *ctx, int argc, char **argv)
{
    return resolve(ctx, argc, argv, false);
}
