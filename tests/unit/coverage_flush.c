/*
 * coverage_flush.c - linked into the test binaries of CONFIG=coverage only,
 * with -Wl,--wrap=_exit: a forked child that leaves with _exit() (as the
 * crash and multi-process tests' children do) writes its coverage counters
 * first, instead of losing them (exit() would flush; _exit() does not).
 */
#include <stdnoreturn.h>

void __gcov_dump(void);
noreturn void __real__exit(int status);
noreturn void __wrap__exit(int status);

noreturn void __wrap__exit(int status)
{
	__gcov_dump();
	__real__exit(status);
}
