#include "cli.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#ifndef LOOPHOLE_SBINDIR
#define LOOPHOLE_SBINDIR "/usr/local/sbin"
#endif

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static int cmd_help(int argc, char **argv);

/* The daemon binary: beside this one (a build tree, or bin/ and sbin/ both
 * on PATH-less installs), then the configured sbin directory. */
static int find_daemon(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = -1;
#ifdef __linux__
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
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

static int cmd_serve(int argc, char **argv)
{
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
    fprintf(stderr, "loophole: cannot run %s: %s\n", path, strerror(errno));
    free(av);
    return 1;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("loophole %s\n", LOOPHOLE_VERSION);
    return 0;
}

static const command commands[] = {
    {"serve", cmd_serve, "run the daemon in the foreground (as root: sudo loophole serve)"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "show this help"},
};

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("usage: loophole <command> [options]\n\n"
           "Every Docker container that publishes ports gets its own loopback address\n"
           "and a DNS name under loop.test. Commands:\n\n");
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].help);
    printf("\nSee loophole(1).\n");
    return 0;
}

int cli_main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_help(0, NULL);
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    if (strcmp(name, "--version") == 0)
        name = "version";
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "loophole: unknown command \"%s\" (see loophole help)\n", name);
    return 2;
}
