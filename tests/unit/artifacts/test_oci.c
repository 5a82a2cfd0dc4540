/*
 * test_oci.c - the registry client's pure parts: oci:// references, the
 * name@version -> tag mapping, tag validity, client options (credentials
 * file syntax, half credentials), and a transport failure that names the
 * registry. The protocol itself is tested against a real registry in
 * tests/integration/test_registry*.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/oci.h"
#include "art/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_oci__ref_parse(void **state)
{
	art_oci_ref r;

	(void)state;
	assert_int_equal(art_oci_ref_parse(&r, "oci://127.0.0.1:5000/agents"), 0);
	assert_string_equal(r.host, "127.0.0.1:5000");
	assert_string_equal(r.repo, "agents");
	assert_string_equal(r.tag, "");
	assert_int_equal(art_oci_ref_parse(&r, "oci://registry.example/team/agents:channel-blue"), 0);
	assert_string_equal(r.host, "registry.example");
	assert_string_equal(r.repo, "team/agents");
	assert_string_equal(r.tag, "channel-blue");
	assert_int_equal(art_oci_ref_parse(&r, "oci://[::1]:5000/a.b_c-d"), 0);
	assert_string_equal(r.host, "[::1]:5000");
	/* refused */
	assert_int_equal(art_oci_ref_parse(&r, "docker://h/r"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci://"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci:///repo"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci://host"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci://host/"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci://host/Agents"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci://host/a//b"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci://host/a/"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci://host/-a"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci://host/a:b@c"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci://ho st/a"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, "oci://h/a?x=1"), AF_EINVAL);
	assert_int_equal(art_oci_ref_parse(&r, NULL), AF_EINVAL);
}

static void test_oci__artifact_tag(void **state)
{
	char tag[ART_OCI_TAG_MAX + 1], name[64], version[200];

	(void)state;
	assert_int_equal(art_oci_artifact_tag(tag, "tester", "1.2.0"), 0);
	assert_string_equal(tag, "tester-1.2.0");
	assert_int_equal(art_oci_artifact_tag(tag, "tester", "1.2.0-rc.1+build.7"), 0);
	assert_string_equal(tag, "tester-1.2.0-rc.1_build.7");
	assert_true(art_oci_tag_valid(tag));
	/* not a name@version */
	assert_int_equal(art_oci_artifact_tag(tag, "Tester", "1.0.0"), AF_EINVAL);
	assert_int_equal(art_oci_artifact_tag(tag, "tester", "1.0"), AF_EINVAL);
	/* over 128 characters: no tag */
	memset(name, 'a', 63);
	name[63] = '\0';
	snprintf(version, sizeof(version), "1.0.0-%s", "x123456789x123456789x123456789x123456789x123456789x123456789x1234");
	assert_int_equal(art_oci_artifact_tag(tag, name, version), AF_EINVAL);
	assert_string_equal(tag, "");
}

static void test_oci__tag_valid(void **state)
{
	char long_tag[200];

	(void)state;
	assert_true(art_oci_tag_valid("release-12"));
	assert_true(art_oci_tag_valid("_x"));
	assert_true(art_oci_tag_valid("sha256-abc"));
	assert_false(art_oci_tag_valid(""));
	assert_false(art_oci_tag_valid(NULL));
	assert_false(art_oci_tag_valid("-x"));
	assert_false(art_oci_tag_valid(".x"));
	assert_false(art_oci_tag_valid("a+b"));
	assert_false(art_oci_tag_valid("a/b"));
	memset(long_tag, 'a', 129);
	long_tag[129] = '\0';
	assert_false(art_oci_tag_valid(long_tag));
	long_tag[128] = '\0';
	assert_true(art_oci_tag_valid(long_tag));
}

static void test_oci__client_options(void **state)
{
	art_oci_client *c = NULL;
	art_oci_opts o;
	char dir[] = "/tmp/af-test-oci.XXXXXX", path[300];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	memset(&o, 0, sizeof(o));
	o.username = "u";
	assert_int_equal(art_oci_client_new(&c, "oci://127.0.0.1:1/r", &o), AF_EINVAL);
	assert_null(c);
	/* a credentials file that is not JSON */
	snprintf(path, sizeof(path), "%s/config.json", dir);
	f = fopen(path, "w");
	fputs("{not json", f);
	fclose(f);
	memset(&o, 0, sizeof(o));
	o.auth_file = path;
	assert_int_equal(art_oci_client_new(&c, "oci://127.0.0.1:1/r", &o), AF_ESYNTAX);
	assert_non_null(strstr(art_error_last(), path));
	/* an auth entry for this host that is not base64 of user:password */
	f = fopen(path, "w");
	fputs("{\"auths\":{\"127.0.0.1:1\":{\"auth\":\"bm9jb2xvbg==\"}}}", f);
	fclose(f);
	assert_int_equal(art_oci_client_new(&c, "oci://127.0.0.1:1/r", &o), AF_ESYNTAX);
	/* an entry for another host is ignored; a missing file is fine */
	f = fopen(path, "w");
	fputs("{\"auths\":{\"other:1\":{\"auth\":\"!!\"}}}", f);
	fclose(f);
	assert_int_equal(art_oci_client_new(&c, "oci://127.0.0.1:1/r", &o), 0);
	art_oci_client_free(c);
	c = NULL;
	snprintf(path, sizeof(path), "%s/absent.json", dir);
	assert_int_equal(art_oci_client_new(&c, "oci://127.0.0.1:1/r", &o), 0);
	art_oci_client_free(c);
	unlink(dir);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	rmdir(dir);
}

static void test_oci__unreachable_names_registry(void **state)
{
	art_oci_client *c = NULL;
	art_oci_opts o;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char url[64], digest[72];
	bool exists = true;
	int fd;

	(void)state;
	/* a port that was free a moment ago: nothing listens there */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(url, sizeof(url), "oci://127.0.0.1:%u/agents", ntohs(sa.sin_port));
	memset(&o, 0, sizeof(o));
	o.timeout_s = 2;
	assert_int_equal(art_oci_client_new(&c, url, &o), 0);
	assert_int_equal(art_oci_manifest_head(c, "channel-blue", digest, &exists), AF_EIO);
	assert_false(exists);
	assert_non_null(strstr(art_error_last(), url + 6));
	assert_non_null(strstr(art_error_last(), "channel-blue"));
	assert_true(art_oci_client_stats(c)->requests >= 1);
	art_oci_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci__ref_parse),
		cmocka_unit_test(test_oci__artifact_tag),
		cmocka_unit_test(test_oci__tag_valid),
		cmocka_unit_test(test_oci__client_options),
		cmocka_unit_test(test_oci__unreachable_names_registry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
