/*
 * fuzz_url.c - http_fetch's strict URL parser (rt_url_parse), checked
 * against libcurl's own URL parser (curl_url), which is what finally
 * connects: the host and port the allow-list was checked against must be
 * the ones curl connects to.
 *
 * For every URL rt_url_parse accepts:
 *  1. the URL as fetched (rt_url_format, what http_fetch gives
 *     CURLOPT_URL) parses with curl_url, and curl sees the same scheme,
 *     host (case-insensitively; IPv6 literals compared as addresses), port
 *     and path + query;
 *  2. when curl_url also accepts the original text, it sees the same host
 *     and port there too (a parser differential on the raw text is how
 *     allow-lists get bypassed: "http://a.example\@b.example/" and friends);
 *  3. the formatted URL parses again with rt_url_parse to the same fields.
 * Also runs rt_host_entry_normalize and rt_url_allowed on the input.
 */
#include "fuzz.h"

#include "rt/tools.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Same host: case-insensitive, a trailing dot ignored, IPv6 as addresses. */
static bool same_host(const char *ours, const char *curls)
{
	size_t a = strlen(ours), b = strlen(curls);
	unsigned char x[16], y[16];
	char bx[64], by[64];

	if (b > 1 && curls[b - 1] == '.')
		b--;
	if (a == b && strncasecmp(ours, curls, a) == 0)
		return true;
	if (ours[0] == '[' && curls[0] == '[' && a < sizeof(bx) && b < sizeof(by)) {
		memcpy(bx, ours + 1, a - 2);
		bx[a - 2] = '\0';
		memcpy(by, curls + 1, b - 2);
		by[b - 2] = '\0';
		return inet_pton(AF_INET6, bx, x) == 1 && inet_pton(AF_INET6, by, y) == 1 &&
		       memcmp(x, y, 16) == 0;
	}
	return false;
}

/* curl's view of url (NUL-terminated); false when curl refuses it. */
static bool curl_view(const char *url, unsigned flags, char **scheme, char **host, long *port,
		      char **path, char **query)
{
	CURLU *h = curl_url();
	char *p = NULL;
	bool ok;

	FUZZ_CHECK(h != NULL, "curl_url");
	*scheme = *host = *path = *query = NULL;
	ok = curl_url_set(h, CURLUPART_URL, url, flags) == CURLUE_OK &&
	     curl_url_get(h, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
	     curl_url_get(h, CURLUPART_HOST, host, 0) == CURLUE_OK &&
	     curl_url_get(h, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	     curl_url_get(h, CURLUPART_PATH, path, 0) == CURLUE_OK;
	if (ok && curl_url_get(h, CURLUPART_QUERY, query, 0) != CURLUE_OK)
		*query = NULL;
	*port = p ? strtol(p, NULL, 10) : -1;
	curl_free(p);
	curl_url_cleanup(h);
	return ok;
}

static void curl_view_free(char *scheme, char *host, char *path, char *query)
{
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	curl_free(query);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const hosts[] = { "example.org", "*.example.net", "127.0.0.1",
					     "[::1]", "localhost" };
	char formatted[RT_URL_MAX + 64], entry[256], *text, *scheme, *host, *path, *query;
	char full_path[RT_URL_MAX + 2];
	rt_url u, again;
	long port;
	int len;

	text = malloc(size + 1);
	FUZZ_CHECK(text != NULL, "malloc");
	memcpy(text, data, size);
	text[size] = '\0';
	(void)rt_host_entry_normalize(entry, sizeof(entry), text);
	if (rt_url_parse(&u, (const char *)data, size) != 0)
		goto done;
	(void)rt_url_allowed(&u, hosts, sizeof(hosts) / sizeof(hosts[0]));
	FUZZ_CHECK(strcmp(u.scheme, "http") == 0 || strcmp(u.scheme, "https") == 0, "scheme %s",
		   u.scheme);
	FUZZ_CHECK(u.path[0] == '/', "path '%s' does not start with /", u.path);
	len = rt_url_format(&u, formatted, sizeof(formatted));
	FUZZ_CHECK(len > 0 && (size_t)len < sizeof(formatted), "an accepted URL does not format");

	/* 3. ours again */
	FUZZ_CHECK(rt_url_parse(&again, formatted, (size_t)len) == 0, "'%s' (from '%s') refused",
		   formatted, text);
	FUZZ_CHECK(strcmp(again.host, u.host) == 0 && again.port == u.port &&
			   strcmp(again.path, u.path) == 0 && strcmp(again.scheme, u.scheme) == 0,
		   "'%s' reparses differently", formatted);

	/* 1. what curl is given */
	FUZZ_CHECK(curl_view(formatted, CURLU_PATH_AS_IS, &scheme, &host, &port, &path, &query),
		   "curl refuses the URL as fetched: '%s' (from '%s')", formatted, text);
	snprintf(full_path, sizeof(full_path), "%s%s%s", path, query ? "?" : "", query ? query : "");
	FUZZ_CHECK(strcasecmp(scheme, u.scheme) == 0, "scheme %s vs curl %s", u.scheme, scheme);
	FUZZ_CHECK(same_host(u.host, host), "host '%s' vs curl '%s' for '%s'", u.host, host,
		   formatted);
	FUZZ_CHECK(port == u.port, "port %u vs curl %ld for '%s'", u.port, port, formatted);
	/* curl drops an empty query ("/?" is "/" to it): the same request line. */
	FUZZ_CHECK(strcmp(full_path, u.path) == 0 ||
			   (strlen(u.path) == strlen(full_path) + 1 &&
			    u.path[strlen(full_path)] == '?' &&
			    strncmp(full_path, u.path, strlen(full_path)) == 0),
		   "path '%s' vs curl '%s' for '%s'", u.path, full_path, formatted);
	curl_view_free(scheme, host, path, query);

	/* 2. the raw text, when curl takes it at all */
	if (curl_view(text, CURLU_PATH_AS_IS, &scheme, &host, &port, &path, &query)) {
		FUZZ_CHECK(same_host(u.host, host), "raw '%s': host '%s' vs curl '%s'", text, u.host,
			   host);
		FUZZ_CHECK(port == u.port, "raw '%s': port %u vs curl %ld", text, u.port, port);
	}
	curl_view_free(scheme, host, path, query);
done:
	free(text);
	return 0;
}
