#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "platform.h"
#include "protocol.h"
#include "util.h"

#define REQUEST_TIMEOUT_MS 10000

int cli_parse_json(const char *body, size_t len, yajl_val *out, char *err, size_t errlen)
{
    return json_parse(body, len, HTTPC_MAX_BODY, JSON_MAX_DEPTH, out, err, errlen);
}

const char *cli_default_socket(void)
{
    return platform_control_socket();
}

const char *cli_start_hint(void)
{
    return platform_start_hint();
}

void cli_conn_message(int err, const char *sock, char *out, size_t cap)
{
    switch (err) {
    case -ENOENT:
    case -ECONNREFUSED:
        snprintf(out, cap, "the daemon is not running (start it with: %s)", cli_start_hint());
        break;
    case -EACCES:
    case -EPERM:
        snprintf(out, cap, "cannot connect to %s: permission denied", sock);
        break;
    case -ETIMEDOUT:
        snprintf(out, cap, "the daemon did not answer within %d seconds",
                 REQUEST_TIMEOUT_MS / 1000);
        break;
    case -EPROTO:
    case -ECONNRESET:
    case -EPIPE:
        snprintf(out, cap, "%s did not answer like a loophole daemon", sock);
        break;
    case -ENAMETOOLONG:
        snprintf(out, cap, "the socket path %s is too long", sock);
        break;
    default:
        snprintf(out, cap, "cannot talk to the daemon at %s: %s", sock, err_str(err));
    }
}

/* The "error" string of a {"error": "..."} body, copied into dst; "" when absent. */
static void error_text(const char *body, char *dst, size_t cap)
{
    dst[0] = '\0';
    if (!body || !body[0])
        return;
    yajl_val root;
    if (cli_parse_json(body, strlen(body), &root, NULL, 0) < 0)
        return;
    const char *e = json_str(root, "error", NULL);
    if (e)
        strlcpy_(dst, e, cap);
    json_free(root);
}

void cli_error_message(int status, const char *body, const char *command, char *out, size_t cap)
{
    char err[512];
    error_text(body, err, sizeof(err));
    bool resolver = command && strncmp(command, "resolve-", 8) == 0;
    bool lease = command && strncmp(command, "lease ", 6) == 0;
    /* expose, unexpose and lease pass the person's words on: a 400 is
     * about them (a spec, a lease name, an address outside the pool). */
    bool spec =
        command && (strcmp(command, "expose") == 0 || strcmp(command, "unexpose") == 0 || lease);
    switch (status) {
    case 403:
        if (resolver)
            snprintf(out, cap, "changing the resolver needs root: run sudo loophole %s", command);
        else if (lease)
            snprintf(out, cap, "%s: run sudo loophole %s ...",
                     err[0] ? err : "changing leases needs root or the admin group", command);
        else
            snprintf(out, cap, "permission denied%s%s", err[0] ? ": " : "", err);
        break;
    case 404:
        /* A daemon from before issue 14 has no /v1/leases at all. */
        if (lease && strcmp(err, "no such path") == 0) {
            snprintf(out, cap,
                     "this daemon has no named leases (it is older than this "
                     "loophole): upgrade loopholed");
            break;
        }
        /* fall through */
    case 409:
        snprintf(out, cap, "%s", err[0] ? err : (status == 404 ? "not found" : "conflict"));
        break;
    case 400:
        if (spec && err[0]) {
            snprintf(out, cap, "%s", err);
            break;
        }
        /* fall through */
    case 405:
    case 413:
    case 431:
        /* Our own requests are well-formed: a different daemon version. */
        snprintf(out, cap, "the daemon rejected the request (HTTP %d%s%s); is it another version?",
                 status, err[0] ? ": " : "", err);
        break;
    case 500:
        snprintf(out, cap, "the daemon failed: %s", err[0] ? err : "internal error");
        break;
    default:
        snprintf(out, cap, "unexpected answer from the daemon (HTTP %d%s%s)", status,
                 err[0] ? ": " : "", err);
    }
}

int cli_call(const cli_ctx *ctx, const char *method, const char *target, const char *command,
             httpc_response *resp)
{
    return cli_call_body(ctx, method, target, NULL, command, resp);
}

int cli_call_body(const cli_ctx *ctx, const char *method, const char *target, const char *body,
                  const char *command, httpc_response *resp)
{
    char msg[1024];
    int rc = body ? httpc_request_body(ctx->sock, method, target, body, strlen(body),
                                       REQUEST_TIMEOUT_MS, resp)
                  : httpc_request(ctx->sock, method, target, REQUEST_TIMEOUT_MS, resp);
    if (rc < 0) {
        cli_conn_message(rc, ctx->sock, msg, sizeof(msg));
        fprintf(stderr, "loophole: %s\n", msg);
        httpc_response_free(resp);
        return CLI_FAIL;
    }
    if (resp->status < 200 || resp->status > 299) {
        cli_error_message(resp->status, resp->body.data, command, msg, sizeof(msg));
        fprintf(stderr, "loophole: %s\n", msg);
        httpc_response_free(resp);
        return CLI_FAIL;
    }
    return CLI_OK;
}
