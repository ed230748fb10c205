/* The loophole command: a table of subcommands {name, fn, help}. */
#ifndef LOOPHOLE_CLI_H
#define LOOPHOLE_CLI_H

int cli_main(int argc, char **argv);

#endif
