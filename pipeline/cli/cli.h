/*
 * cli.h - shared pieces of the agentfactory command-line tool.
 *
 * Each command is `int cmd_<name>(int argc, char **argv)` where argv[0] is
 * the command name; it parses its own options with getopt_long, prints its
 * own --help, and returns the process exit code:
 *   0  success (all verified, policy-clean)
 *   1  findings: verification failures, policy denials, refused operations
 *   2  usage error or internal error (bad flags, unreadable files, OOM)
 *   3  the store file is damaged (truncated data.mdb): restore it
 */
#ifndef AF_CLI_H
#define AF_CLI_H

#include "art/error.h"
#include "art/keys.h"

#include <jansson.h>
#include <stdio.h>

#define CLI_OK 0
#define CLI_FINDINGS 1
#define CLI_USAGE 2
/* A damaged store file (AF_EDAMAGED: truncated data.mdb): restore it. */
#define CLI_DAMAGED 3

/** CLI_DAMAGED for AF_EDAMAGED, else fallback. */
#define CLI_EXIT_FOR_STORE(rc, fallback) ((rc) == AF_EDAMAGED ? CLI_DAMAGED : (fallback))

int cmd_keygen(int argc, char **argv);
int cmd_trust(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_resolve(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_hooks(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_pull(int argc, char **argv);

/**
 * Print "agentfactory <cmd>: <message>" and a pointer to --help on stderr.
 * @return CLI_USAGE
 */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/**
 * Print "agentfactory <cmd>: <message>" on stderr (no --help pointer).
 * @return code
 */
int cli_fail(int code, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/** flag if non-NULL, else getenv(env) if set and non-empty, else NULL. */
const char *cli_flag_or_env(const char *flag, const char *env);

/**
 * The policy directory to use: flag, else $AF_POLICIES, else the installed
 * data directory, else the policies/ folder of the source tree the binary was
 * built in. Never a folder of the repository being checked.
 */
const char *cli_default_policies(const char *flag);

/**
 * Append an audit entry to the store at store_dir (created if missing) in its
 * own transaction, for actions that are not themselves store writes (check,
 * trust changes). store_dir NULL: $AF_STORE, and if that is unset nothing is
 * recorded. Prints the reason on failure.
 * @param[in] refused  true for a refused attempt
 * @param[in] details  a JSON object, or NULL; the reference is stolen
 * @return 0, or CLI_USAGE when the entry could not be written
 */
int cli_audit(const char *cmd, const char *store_dir, const char *action, const char *actor,
	      const char *subject, int refused, json_t *details);

/** As cli_audit, the entry signed by the actors' private keys (borrowed). */
int cli_audit_signed(const char *cmd, const char *store_dir, const char *action,
		     const char *actor, const char *subject, int refused, json_t *details,
		     const art_key *const *signers, size_t n_signers);

/**
 * Automatic audit checkpoints: when $AF_AUDIT_CHECKPOINTS names a directory,
 * write a checkpoint of the store's audit head signed by key there
 * (<seq>.json and latest.json), after every signed action. store_dir NULL:
 * $AF_STORE. Prints the reason on failure.
 * @return 0 (also when not configured), or CLI_USAGE
 */
int cli_checkpoint(const char *cmd, const char *store_dir, const art_key *key);

#endif
