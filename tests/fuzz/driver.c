/* driver.c - a plain main() for the fuzz targets when built without
 * libFuzzer: runs LLVMFuzzerTestOneInput once on each file named on the
 * command line (a directory: on each regular file in it), so a corpus or
 * a crash reproducer can be replayed under any compiler and sanitizer. */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* base */
#include "mem.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int main(int argc, char **argv);

/* run_file - feed one file to the target; -1 if it cannot be read */
static int run_file(const char *path)
{
    struct str *buf = str_new(1 << 20);
    char chunk[4096];
    size_t n;
    FILE *fp;

    if ((fp = fopen(path, "rb")) == NULL) {
	perror(path);
	str_free(&buf);
	return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
	if (!str_append(buf, chunk, n))
	    break;
    fclose(fp);
    LLVMFuzzerTestOneInput((const uint8_t *) str_cstr(buf), str_len(buf));
    str_free(&buf);
    return 0;
}

/* run_path - a file, or every regular file in a directory */
static int run_path(const char *path, int *count)
{
    struct stat st;
    struct dirent *de;
    DIR *dir;
    char sub[4096];
    int rc = 0;

    if (stat(path, &st) < 0) {
	perror(path);
	return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
	(*count)++;
	return run_file(path);
    }
    if ((dir = opendir(path)) == NULL) {
	perror(path);
	return -1;
    }
    while ((de = readdir(dir)) != NULL) {
	if (de->d_name[0] == '.')
	    continue;
	if (!fmt_buf(sub, sizeof(sub), "%s/%s", path, de->d_name))
	    continue;
	if (stat(sub, &st) == 0 && S_ISREG(st.st_mode)) {
	    (*count)++;
	    if (run_file(sub) < 0)
		rc = -1;
	}
    }
    closedir(dir);
    return rc;
}

int main(int argc, char **argv)
{
    int i, count = 0, rc = 0;

    if (argc < 2) {
	fprintf(stderr, "usage: %s file-or-directory...\n", argv[0]);
	return 2;
    }
    for (i = 1; i < argc; i++)
	if (run_path(argv[i], &count) < 0)
	    rc = 1;
    printf("%s: ran %d inputs\n", argv[0], count);
    return rc;
}
