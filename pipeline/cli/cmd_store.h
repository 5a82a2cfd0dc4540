/*
 * cmd_store.h - the store commands of the agentfactory tool: ls, inspect,
 * verify, export, import (cmd_store.c). Same contract as the commands in
 * cli.h: argv[0] is the command name, the return value is the exit code
 * (0 success, 1 findings or refusal, 2 usage or internal error).
 */
#ifndef AF_CMD_STORE_H
#define AF_CMD_STORE_H

/** `agentfactory ls --store DIR [--json]`: list the stored artifacts. */
int cmd_ls(int argc, char **argv);

/** `agentfactory inspect --store DIR [--keyring FILE] [--json] NAME[@VERSION]`. */
int cmd_inspect(int argc, char **argv);

/** `agentfactory verify --store DIR --keyring FILE [--json]`: verify every artifact. */
int cmd_verify(int argc, char **argv);

/** `agentfactory export --store DIR --out FILE [NAME[@VERSION]...]`: write a bundle. */
int cmd_export(int argc, char **argv);

/** `agentfactory import --store DIR --keyring FILE BUNDLE`: verify, then import a bundle. */
int cmd_import(int argc, char **argv);

#endif
