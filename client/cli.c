#include "cli.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#include "client.h"
#include "protocol.h"
#include "util.h"

#ifndef LOOPHOLE_SBINDIR
#define LOOPHOLE_SBINDIR "/usr/local/sbin"
#endif

typedef struct command {
    const char *name;
    int (*fn)(const cli_ctx *ctx, int argc, char **argv);
    const char *help;
} command;

static int cmd_help(const cli_ctx *ctx, int argc, char **argv);

/* The daemon binary: beside this one (a build tree, or bin/ and sbin/ both
 * on PATH-less installs), then the configured sbin directory. */
static int find_daemon(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = -1;
#ifdef __linux__
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
#elif defined(__APPLE__)
    char raw[PATH_MAX];
    uint32_t sz = sizeof(raw);
    if (_NSGetExecutablePath(raw, &sz) == 0 && realpath(raw, self) != NULL)
        n = (ssize_t)strlen(self);
#endif
    if (n > 0) {
        self[n] = '\0';
        char *dir = dirname(self);
        const char *rel[] = {"loopholed", "../sbin/loopholed"};
        for (size_t i = 0; i < ARRAY_SIZE(rel); i++) {
            snprintf(out, cap, "%s/%s", dir, rel[i]);
            if (access(out, X_OK) == 0)
                return 0;
        }
    }
    snprintf(out, cap, "%s/loopholed", LOOPHOLE_SBINDIR);
    return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

static int cmd_serve(const cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    char path[PATH_MAX];
    if (find_daemon(path, sizeof(path)) < 0) {
        fprintf(stderr, "loophole: cannot find loopholed (looked beside loophole and in %s)\n",
                LOOPHOLE_SBINDIR);
        return 1;
    }
    /* argv[0] is "serve": hand the rest to the daemon unchanged. */
    char **av = xcalloc((size_t)argc + 1, sizeof(char *));
    av[0] = path;
    for (int i = 1; i < argc; i++)
        av[i] = argv[i];
    execv(path, av);
    fprintf(stderr, "loophole: cannot run %s: %s\n", path, err_str(-errno));
    free(av);
    return 1;
}

static int cmd_version(const cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    (void)argc;
    (void)argv;
    printf("loophole %s\n", LOOPHOLE_VERSION);
    return 0;
}

static const command commands[] = {
    {"ls", cmd_ls, "list containers, their names, addresses and ports [-a] [--json] [--watch]"},
    {"status", cmd_status, "show the daemon's state and any problems [--json]"},
    {"expose", cmd_expose, "let a container reach a host port at its localhost: CONTAINER SPEC..."},
    {"unexpose", cmd_unexpose, "undo expose: CONTAINER CPORT[/udp]..."},
    {"lease", cmd_lease, "named addresses outside containers: add NAME [--addr IP], rm NAME, ls"},
    {"doctor", cmd_doctor, "check every link from a name to a container, with fixes"},
    {"resolve-install", cmd_resolve_install, "install the system resolver entry (root)"},
    {"resolve-uninstall", cmd_resolve_uninstall, "remove the system resolver entry (root)"},
    {"serve", cmd_serve, "run the daemon in the foreground (as root: sudo loophole serve)"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "show this help"},
};

static int cmd_help(const cli_ctx *ctx, int argc, char **argv)
{
    /* help COMMAND: that command's own usage (its --help). */
    if (argc > 1 && strcmp(argv[1], "help") != 0) {
        for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
            if (strcmp(commands[i].name, argv[1]) == 0) {
                char *av[] = {argv[1], "--help", NULL};
                return commands[i].fn(ctx, 2, av);
            }
        fprintf(stderr, "loophole: help: unknown command \"%s\" (see loophole help)\n", argv[1]);
        return CLI_USAGE;
    }
    printf("usage: loophole [--socket PATH] <command> [options]\n\n"
           "Every Docker container that publishes ports gets its own loopback address\n"
           "and a DNS name under loop.test. Commands:\n\n");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        printf("  %-18s %s\n", commands[i].name, commands[i].help);
    printf("\nThe daemon's control socket: --socket PATH, else $LOOPHOLE_SOCKET, else %s.\n"
           "See loophole(1).\n",
           cli_default_socket());
    return 0;
}

int cli_main(int argc, char **argv)
{
    /* A daemon that goes away mid-answer must give an error, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    cli_ctx ctx = {.sock = getenv("LOOPHOLE_SOCKET")};
    if (!ctx.sock || !ctx.sock[0])
        ctx.sock = cli_default_socket();
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--socket") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "loophole: --socket needs a path\n");
                return CLI_USAGE;
            }
            ctx.sock = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "--socket=", 9) == 0) {
            ctx.sock = argv[i] + 9;
            i++;
        } else {
            break;
        }
    }
    if (i >= argc)
        return cmd_help(&ctx, 0, NULL);
    const char *name = argv[i];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    if (strcmp(name, "--version") == 0)
        name = "version";
    for (size_t c = 0; c < ARRAY_SIZE(commands); c++)
        if (strcmp(commands[c].name, name) == 0)
            return commands[c].fn(&ctx, argc - i, argv + i);
    fprintf(stderr, "loophole: unknown command \"%s\" (see loophole help)\n", name);
    return CLI_USAGE;
}
