/*
 * source.c - following a channel from an OCI registry (rt/source.h).
 *
 * Invariants:
 *  - the follower is a separate process: LMDB forbids opening one
 *    environment twice in a process, and the serving process keeps its
 *    read-only handle; the follower's writes are single transactions, so a
 *    follower killed mid-pull leaves the store as it was;
 *  - an unchanged channel costs one HEAD per poll (the digest is compared
 *    with the last one pulled, or the last one refused: a refused digest is
 *    not fetched again until the tag moves);
 *  - reports are single lines under PIPE_BUF, written whole; the serving side
 *    never blocks on the follower.
 */
#include "rt/source.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/oci.h"
#include "art/release.h"
#include "art/store.h"
#include "art/util.h"
#include "rt/log.h"
#include "rt/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DETAIL_MAX 900

struct rt_source {
	pid_t child;
	int rfd;
	pthread_t reader;
	bool reader_started;
	FILE *log;
};

/* The last report (the serving side). */
static pthread_mutex_t status_mu = PTHREAD_MUTEX_INITIALIZER;
static bool status_on;
static char status_url[300], status_channel[64], status_state[16] = "starting";
static char status_detail[DETAIL_MAX + 1];
static unsigned long long status_release, status_polls, status_pulls;

bool rt_source_describe(char *out, size_t cap)
{
	static char url[sizeof(status_url) * 6 + 1], detail[sizeof(status_detail) * 6 + 1];
	bool on;

	pthread_mutex_lock(&status_mu);
	on = status_on;
	if (on) {
		url[rt_log_escape(url, status_url, strlen(status_url), sizeof(status_url))] = '\0';
		detail[rt_log_escape(detail, status_detail, strlen(status_detail),
				     sizeof(status_detail))] = '\0';
		snprintf(out, cap, "{\"url\":\"%s\",\"channel\":\"%s\",\"state\":\"%s\","
			 "\"release\":%llu,\"polls\":%llu,\"pulls\":%llu,\"detail\":\"%s\"}", url,
			 status_channel, status_state, status_release, status_polls, status_pulls,
			 detail);
	}
	pthread_mutex_unlock(&status_mu);
	return on;
}

/* ---- the follower (child process) ---------------------------------------- */

static void report(int fd, const char *state, unsigned long long polls, unsigned long long pulls,
		   unsigned long long release, const char *detail)
{
	char line[DETAIL_MAX + 128];
	size_t i, n;

	n = (size_t)snprintf(line, sizeof(line), "%s %llu %llu %llu %.*s", state, polls, pulls,
			     release, DETAIL_MAX, detail ? detail : "");
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	for (i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	if (write(fd, line, n) < 0) {
		/* the serving process is gone: nothing to report to */
	}
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Spreads the polls of many replicas (xorshift32: not for secrets). */
static uint32_t next_jitter(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void ignore_signal(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static bool transient(int rc)
{
	return rc == AF_EIO || rc == AF_ENOMEM || rc == AF_EINTERNAL;
}

static void follow(const rt_source_opts *o, int wfd, pid_t parent)
{
	art_store *s = NULL;
	art_oci_client *c = NULL;
	art_keyring *kr = NULL;
	art_oci_opts oo = o->oci;
	art_oci_pull_opts po;
	art_oci_stats st;
	char tag[80], digest[72], last[72] = "", refused[72] = "", detail[DETAIL_MAX + 1] = "";
	const char *state = "starting";
	unsigned long long polls = 0, pulls = 0, release = 0;
	uint32_t jitter;
	bool exists;
	int rc;

	oo.progress = NULL;
	snprintf(tag, sizeof(tag), "channel-%s", o->channel);
	if (art_store_open(&s, o->store_dir, ART_STORE_CREATE) < 0 ||
	    art_oci_client_new(&c, o->url, &oo) < 0) {
		report(wfd, "refused", 0, 0, 0, art_error_last());
		_exit(2);
	}
	jitter = (uint32_t)getpid() ^ (uint32_t)time(NULL) ^ 0x9e3779b9u;
	for (;;) {
		polls++;
		rc = art_oci_manifest_head(c, tag, digest, &exists);
		if (rc < 0) {
			state = "unreachable";
			snprintf(detail, sizeof(detail), "%s", art_error_last());
		} else if (!exists) {
			state = "unreachable";
			snprintf(detail, sizeof(detail), "registry %s: %s/%s has no tag %s (push the "
				 "channel)", art_oci_client_ref(c)->host, art_oci_client_ref(c)->host,
				 art_oci_client_ref(c)->repo, tag);
		} else if (digest[0] && !strcmp(digest, last)) {
			state = "ok";
			detail[0] = '\0';
		} else if (digest[0] && !strcmp(digest, refused)) {
			/* still the refused tag: keep serving, say so */
			state = "refused";
		} else {
			art_keyring_free(kr);
			kr = NULL;
			memset(&po, 0, sizeof(po));
			po.channel = o->channel;
			po.min_threshold = o->min_threshold;
			po.expect_digest = digest;
			rc = art_keyring_load(&kr, o->keyring_path);
			if (rc == 0)
				rc = art_oci_pull(&st, c, s, kr, art_time_now(), &po);
			if (rc == 0) {
				state = "ok";
				detail[0] = '\0';
				snprintf(last, sizeof(last), "%s", digest);
				refused[0] = '\0';
				release = st.release;
				if (!st.up_to_date) {
					pulls++;
					rt_log_printf(o->log, "info", "source_pulled", NULL,
						      "pulled release %llu of channel %s from %s (%llu "
						      "blobs, %llu bytes, %llu requests)",
						      (unsigned long long)st.release, o->channel,
						      o->url, (unsigned long long)st.blobs_down,
						      (unsigned long long)st.bytes_down,
						      (unsigned long long)st.requests);
				}
			} else {
				state = transient(rc) ? "unreachable" : "refused";
				snprintf(detail, sizeof(detail), "%s", art_error_last());
				if (!transient(rc))
					snprintf(refused, sizeof(refused), "%s", digest);
			}
		}
		report(wfd, state, polls, pulls, release, detail);
		sleep_ms(o->interval_ms + (o->jitter_ms ? next_jitter(&jitter) % o->jitter_ms : 0));
		/* the server is gone (reparented). Not "getppid() == 1": in a
		 * container the server itself is PID 1 of its PID namespace */
		if (getppid() != parent)
			_exit(0);
	}
}

/* ---- the serving side ---------------------------------------------------- */

/* The next space-separated unsigned decimal at *s; *s moves past it. */
static int report_number(const char **s, unsigned long long *out)
{
	char *end;

	while (**s == ' ')
		(*s)++;
	if (**s < '0' || **s > '9')
		return -1;
	errno = 0;
	*out = strtoull(*s, &end, 10);
	if (errno || (*end != ' ' && *end != '\0'))
		return -1;
	*s = end;
	return 0;
}

/*
 * A follower's line "STATE POLLS PULLS RELEASE DETAIL" (report()): state
 * into state[cap], the numbers, and *off = where the detail starts (0 when
 * there is none).
 */
static int parse_report(const char *line, char *state, size_t cap, unsigned long long *polls,
			unsigned long long *pulls, unsigned long long *release, int *off)
{
	const char *s = line, *sp = strchr(line, ' ');

	if (!sp || sp == line || (size_t)(sp - line) >= cap)
		return -1;
	memcpy(state, line, (size_t)(sp - line));
	state[sp - line] = '\0';
	s = sp;
	if (report_number(&s, polls) < 0 || report_number(&s, pulls) < 0 ||
	    report_number(&s, release) < 0)
		return -1;
	while (*s == ' ')
		s++;
	*off = *s ? (int)(s - line) : 0;
	return 0;
}

static void *reader_main(void *arg)
{
	rt_source *src = arg;
	FILE *in = fdopen(src->rfd, "r");
	char line[DETAIL_MAX + 160], state[16], prev[16] = "starting";
	unsigned long long polls, pulls, release, last_polls = 0, last_pulls = 0;
	int off;

	if (!in)
		return NULL;
	while (fgets(line, sizeof(line), in)) {
		char *nl = strchr(line, '\n');

		if (nl)
			*nl = '\0';
		if (parse_report(line, state, sizeof(state), &polls, &pulls, &release, &off) < 0)
			continue;
		for (; last_polls < polls; last_polls++)
			rt_metrics_inc(RT_M_SOURCE_POLLS);
		for (; last_pulls < pulls; last_pulls++)
			rt_metrics_inc(RT_M_SOURCE_PULLS);
		if (strcmp(state, "ok") != 0 && strcmp(state, prev) != 0)
			rt_metrics_inc_label(RT_M_SOURCE_ERRORS, state);
		pthread_mutex_lock(&status_mu);
		snprintf(status_state, sizeof(status_state), "%s", state);
		snprintf(status_detail, sizeof(status_detail), "%s", off > 0 ? line + off : "");
		status_polls = polls;
		status_pulls = pulls;
		if (release)
			status_release = release;
		pthread_mutex_unlock(&status_mu);
		if (strcmp(state, prev) != 0) {
			if (!strcmp(state, "ok"))
				rt_log_printf(src->log, "info", "source_ok", NULL,
					      "registry source %s: channel %s in sync (release %llu)",
					      status_url, status_channel, release);
			else
				rt_log_printf(src->log, "error",
					      !strcmp(state, "refused") ? "source_refused"
									: "source_unreachable",
					      NULL, "registry source %s: %s; keeps serving the last "
					      "verified release", status_url, off > 0 ? line + off : "");
			snprintf(prev, sizeof(prev), "%s", state);
		}
	}
	fclose(in);
	return NULL;
}

int rt_source_start(rt_source **out, const rt_source_opts *o)
{
	art_oci_ref ref;
	art_store *s = NULL;
	rt_source *src;
	rt_source_opts oo = *o;
	int fds[2], rc;
	pid_t pid, parent;

	*out = NULL;
	if ((rc = art_oci_ref_parse(&ref, o->url)) < 0)
		return rc;
	if (!art_channel_name_valid(o->channel))
		return art_error_set(AF_EINVAL, "--source needs --channel C (a valid channel name)");
	if (oo.interval_ms == 0)
		oo.interval_ms = 5000;
	if (oo.jitter_ms == 0)
		oo.jitter_ms = oo.interval_ms / 10;
	/* the serving side opens the store read-only: it must exist */
	if ((rc = art_store_open(&s, o->store_dir, ART_STORE_CREATE)) < 0)
		return rc;
	art_store_close(s);
	if (!(src = calloc(1, sizeof(*src))))
		return art_error_set(AF_ENOMEM, "out of memory");
	src->log = o->log;
	if (pipe(fds) != 0) {
		free(src);
		return art_error_set(AF_EIO, "pipe: %s", strerror(errno));
	}
	fflush(NULL);
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		free(src);
		return art_error_set(AF_EIO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		sigset_t none;

		close(fds[0]);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent) /* died before the prctl */
			_exit(0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* SIGTERM keeps the disposition it had: the server never handles
		 * it (its main thread blocks it and sigwait()s), so it is the
		 * default action, except in a coverage build, whose handler
		 * writes the counters first (tests/unit/coverage_flush.c). */
		ignore_signal(SIGINT); /* the parent drains first, then stops us */
		ignore_signal(SIGPIPE);
		follow(&oo, fds[1], parent);
		_exit(0);
	}
	close(fds[1]);
	src->child = pid;
	src->rfd = fds[0];
	pthread_mutex_lock(&status_mu);
	status_on = true;
	snprintf(status_url, sizeof(status_url), "%s", o->url);
	snprintf(status_channel, sizeof(status_channel), "%s", o->channel);
	pthread_mutex_unlock(&status_mu);
	{
		/* the reader must never take the signals the serving side sigwait()s for */
		sigset_t all, old;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		src->reader_started = pthread_create(&src->reader, NULL, reader_main, src) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	*out = src;
	if (!src->reader_started) {
		rt_source_stop(src);
		*out = NULL;
		return art_error_set(AF_EIO, "cannot start the registry source reader");
	}
	return 0;
}

void rt_source_stop(rt_source *src)
{
	if (!src)
		return;
	if (src->child > 0) {
		kill(src->child, SIGTERM);
		waitpid(src->child, NULL, 0);
	}
	if (src->reader_started)
		pthread_join(src->reader, NULL); /* EOF once the child is gone */
	else
		close(src->rfd);
	pthread_mutex_lock(&status_mu);
	status_on = false;
	pthread_mutex_unlock(&status_mu);
	free(src);
}
