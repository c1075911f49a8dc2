// glibc oracle for the getopt package's tests: reads cases from stdin, answers on stdout.
// Every field is "<decimal length> <bytes>\n".
// Case "G": optstring, posixly (0/1), nlong, nlong x (name, has_arg, val), argc, argv...
//   Answer per getopt_long call: "R", ret, optopt, longindex, optarg-set (0/1), optarg,
//   stderr text; then "D", optind, argc, the permuted argv.
// Case "E": errno. Answer: strerror(errno).
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *readfield(void) {
	size_t n;
	if (scanf("%zu", &n) != 1) exit(0);
	if (getchar() != ' ') abort();
	char *s = malloc(n + 1);
	if (n && fread(s, 1, n, stdin) != n) abort();
	s[n] = 0;
	if (getchar() != '\n') abort();
	return s;
}

static long readint(void) { char *s = readfield(); long v = strtol(s, 0, 10); free(s); return v; }

static void put(const char *s, size_t n) {
	printf("%zu ", n);
	fwrite(s, 1, n, stdout);
	putchar('\n');
}
static void puts0(const char *s) { put(s, strlen(s)); }
static void putint(long v) { char b[32]; snprintf(b, sizeof b, "%ld", v); puts0(b); }

int main(void) {
	for (;;) {
		char *mode = readfield();
		if (mode[0] == 'E') {
			puts0(strerror((int)readint()));
		} else {
			char *optstring = readfield();
			if (readint()) setenv("POSIXLY_CORRECT", "1", 1); else unsetenv("POSIXLY_CORRECT");
			long nlong = readint();
			struct option *lo = calloc(nlong + 1, sizeof *lo);
			for (long i = 0; i < nlong; i++) {
				lo[i].name = readfield();
				lo[i].has_arg = (int)readint();
				lo[i].val = (int)readint();
			}
			int argc = (int)readint();
			char **argv = calloc(argc + 1, sizeof *argv);
			for (int i = 0; i < argc; i++) argv[i] = readfield();
			optind = 0;
			opterr = 1;
			for (int calls = 0; calls < 10000; calls++) {
				char *buf = NULL;
				size_t len = 0;
				FILE *saved = stderr;
				stderr = open_memstream(&buf, &len);
				int longindex = -1;
				optarg = NULL;
				optopt = 0;
				int r = getopt_long(argc, argv, optstring, lo, &longindex);
				fclose(stderr);
				stderr = saved;
				if (r == -1) { free(buf); break; }
				puts0("R");
				putint(r < -1 ? r & 0xff : r);
				putint((r != '?' && r != ':') || longindex >= 0 ? 0 : optopt < 0 ? optopt & 0xff : optopt); // optopt means something only after an error (a long option whose val is '?' or ':' succeeded when longindex is set)
				putint(longindex);
				putint(optarg != NULL);
				puts0(optarg ? optarg : "");
				put(buf, len);
				free(buf);
			}
			puts0("D");
			putint(optind);
			putint(argc);
			for (int i = 0; i < argc; i++) puts0(argv[i]);
		}
		fflush(stdout);
	}
}
