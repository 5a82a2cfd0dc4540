/*
 * embed.c - access to the guest library sources embedded at build time
 * (the table itself is generated: $(BUILD)/gen/guest_embed.c).
 */
#include "gen/embed.h"

#include "art/error.h"
#include "art/util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int gen_guest_write(const char *dir)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < gen_embedded_count && rc == 0; i++) {
		const gen_embedded_file *f = &gen_embedded_files[i];
		const char *slash = strrchr(f->name, '/');
		char *path = NULL;
		FILE *fp;

		if (slash) {
			char *sub = NULL;

			if (asprintf(&sub, "%s/%.*s", dir, (int)(slash - f->name), f->name) < 0)
				return art_error_set(AF_ENOMEM, "out of memory");
			if (mkdir(sub, 0755) < 0 && errno != EEXIST)
				rc = art_error_set(AF_EIO, "cannot create %s: %s", sub, strerror(errno));
			free(sub);
			if (rc < 0)
				break;
		}
		if (asprintf(&path, "%s/%s", dir, f->name) < 0)
			return art_error_set(AF_ENOMEM, "out of memory");
		fp = fopen(path, "wbe");
		if (!fp) {
			rc = art_error_set(AF_EIO, "cannot write %s: %s", path, strerror(errno));
		} else {
			if (fwrite(f->data, 1, f->len, fp) != f->len)
				rc = art_error_set(AF_EIO, "cannot write %s: %s", path, strerror(errno));
			if (fclose(fp) != 0 && rc == 0)
				rc = art_error_set(AF_EIO, "cannot write %s: %s", path, strerror(errno));
		}
		free(path);
	}
	return rc;
}

void gen_guest_digest(char out[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[32];
	unsigned int dlen = 0;
	size_t i, k;

	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		/* Cannot happen short of OOM; an all-zero id cannot match a real one. */
		memset(out, '0', 64);
		out[64] = '\0';
		EVP_MD_CTX_free(md);
		return;
	}
	for (i = 0; i < gen_embedded_count; i++) {
		const gen_embedded_file *f = &gen_embedded_files[i];
		unsigned char len_le[8];

		for (k = 0; k < 8; k++)
			len_le[k] = (unsigned char)((uint64_t)f->len >> (8 * k));
		EVP_DigestUpdate(md, f->name, strlen(f->name) + 1);
		EVP_DigestUpdate(md, len_le, sizeof(len_le));
		EVP_DigestUpdate(md, f->data, f->len);
	}
	EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	art_hex(out, digest, 32);
}

const gen_embedded_file *gen_guest_file(const char *name)
{
	size_t i;

	for (i = 0; name && i < gen_embedded_count; i++)
		if (strcmp(gen_embedded_files[i].name, name) == 0)
			return &gen_embedded_files[i];
	return NULL;
}
