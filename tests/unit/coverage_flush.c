/*
 * coverage_flush.c - linked into the test binaries and both CLIs of
 * CONFIG=coverage only, with -Wl,--wrap=_exit, so that processes which do
 * not leave through exit() still write their coverage counters:
 *
 * - a forked child that leaves with _exit() (the crash and multi-process
 *   tests' children, the runtime's registry follower) dumps them first;
 * - a process stopped by SIGTERM while SIGTERM is not blocked (the
 *   follower, stopped by its server; a CLI stopped by a test's clean-up)
 *   dumps them and then dies of SIGTERM as it would have. A process that
 *   blocks SIGTERM and waits for it (the runtime's main thread) or installs
 *   its own handler is unaffected.
 *
 * Nothing of this is in a release build.
 */
#include <signal.h>
#include <stdnoreturn.h>
#include <string.h>

void __gcov_dump(void);
noreturn void __real__exit(int status);
noreturn void __wrap__exit(int status);

noreturn void __wrap__exit(int status)
{
	__gcov_dump();
	__real__exit(status);
}

static void dump_then_die(int sig)
{
	struct sigaction dfl;

	__gcov_dump();
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	raise(sig);
}

__attribute__((constructor)) static void coverage_flush_install(void)
{
	struct sigaction sa, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = dump_then_die;
	sigemptyset(&sa.sa_mask);
	/* only where nobody chose otherwise (an ignored SIGTERM stays ignored) */
	if (sigaction(SIGTERM, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
		sigaction(SIGTERM, &sa, NULL);
}
