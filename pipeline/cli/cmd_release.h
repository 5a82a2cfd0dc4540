/*
 * cmd_release.h - the release commands of the agentfactory tool (cmd_release.c):
 * release, promote, rollback, channel, status, audit. Same contract as the
 * commands in cli.h: argv[0] is the command name, the return value is the
 * exit code (0 success, 1 refused or a finding, 2 usage or I/O error).
 * docs/releases.md describes the records, the rules and every command.
 */
#ifndef AF_CMD_RELEASE_H
#define AF_CMD_RELEASE_H

/** `agentfactory release create --store DIR --key KEY [--expires D] [--json] NAME@VERSION...|--all|--from N`. */
int cmd_release(int argc, char **argv);

/** `agentfactory promote --store DIR --key KEY... --channel C --release N [--json]`. */
int cmd_promote(int argc, char **argv);

/** `agentfactory rollback --store DIR --key KEY... --channel C [--to N] [--json]`. */
int cmd_rollback(int argc, char **argv);

/** `agentfactory channel set-threshold|history ...`: a channel's threshold and records. */
int cmd_channel(int argc, char **argv);

/** `agentfactory status --store DIR [--keyring FILE] [--json]`: channels and releases. */
int cmd_status(int argc, char **argv);

/** `agentfactory audit log|verify|checkpoint --store DIR ...`: the audit log. */
int cmd_audit(int argc, char **argv);

#endif
