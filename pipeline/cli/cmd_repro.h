/*
 * cmd_repro.h - `agentfactory verify-reproducible` (cmd_repro.c).
 */
#ifndef AF_CMD_REPRO_H
#define AF_CMD_REPRO_H

/** Rebuild a revision and compare digests with a reference store or bundle. */
int cmd_verify_reproducible(int argc, char **argv);

#endif
