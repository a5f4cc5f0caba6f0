// The statistics for C programs: mallinfo2, mallinfo, malloc_info,
// malloc_stats and swiftmalloc_stats_print, checked against a known pattern
// of allocations. Run preloaded, under any front end:
//
//   c_stats
//
// Allocates 1000 blocks of 100 bytes, 10 of 64 KiB and 2 of 4 MiB, then:
// mallinfo2().uordblks grew by at least their usable sizes, hblkhd covers the
// two 4 MiB blocks (hblks >= 2), arena > 0; malloc_info(0, f) is well-formed
// XML with a <size> line for the 100-byte blocks' class counting >= 1000,
// malloc_info(1, f) fails with EINVAL; malloc_stats() (stderr redirected to
// a file) lists that class with >= 1000 in use and names the front end;
// swiftmalloc_stats_print(f) writes the same text. After the frees,
// uordblks is back near where it started.
// <malloc.h> and <swiftmalloc.h> together: the names must not clash.
// Prints "c_stats ok frontend: NAME" at the end; exits 1 on a failed check
// (each printed as "FAIL ..." on stdout).
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <swiftmalloc.h>

static int failures;

#define CHECK(cond, ...)                                             \
    do {                                                             \
        if (!(cond)) {                                               \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);              \
            printf(__VA_ARGS__);                                     \
            putchar('\n');                                           \
            fflush(stdout);                                          \
            failures++;                                              \
        }                                                            \
    } while (0)

enum { SMALL = 1000, SMALL_SIZE = 100, MID = 10, MID_SIZE = 64 << 10, BIG = 2, BIG_SIZE = 4 << 20 };

// Reports go to files with static buffers: no malloc from stdio while the
// figures are compared.
static char bufA[1 << 16], bufB[1 << 16];
static char textA[1 << 17], textB[1 << 17];

static FILE *scratchFile(char *buffer, size_t size) {
    FILE *f = tmpfile();
    if (!f) { printf("FAIL: tmpfile: %s\n", strerror(errno)); exit(1); }
    setvbuf(f, buffer, _IOFBF, size);
    return f;
}

// Reads what fd holds from offset 0 into text (NUL-terminated).
static size_t readAll(int fd, char *text, size_t size) {
    size_t n = 0;
    ssize_t r;
    lseek(fd, 0, SEEK_SET);
    while (n + 1 < size && (r = pread(fd, text + n, size - 1 - n, (off_t)n)) > 0) n += (size_t)r;
    text[n] = 0;
    return n;
}

static size_t readStream(FILE *f, char *text, size_t size) {
    fflush(f);
    return readAll(fileno(f), text, size);
}

// An attribute's number in a tag ("count" in `<size ... count="12"/>`), or -1.
static long long attribute(const char *tag, const char *end, const char *name) {
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *p = strstr(tag, key);
    if (!p || p > end) return -1;
    return strtoll(p + strlen(key), NULL, 10);
}

// Well-formed for this grammar: tags nest and close in order, attributes are
// name="value", text between tags is whitespace only. Returns NULL or a
// problem.
static const char *xmlProblem(const char *xml) {
    const char *stack[32];
    size_t depth = 0, lens[32];
    const char *p = xml;
    int root = 0;
    while (*p) {
        if (*p == ' ' || *p == '\n' || *p == '\t') { p++; continue; }
        if (*p != '<') return "text outside tags";
        const char *close = strchr(p, '>');
        if (!close) return "unterminated tag";
        if (p[1] == '/') {
            const char *name = p + 2;
            size_t len = (size_t)(close - name);
            if (depth == 0 || lens[depth - 1] != len || strncmp(stack[depth - 1], name, len) != 0)
                return "closing tag does not match";
            depth--;
        } else {
            const char *name = p + 1;
            size_t len = strcspn(name, " />");
            if (len == 0) return "empty tag name";
            if (depth == 0 && root++) return "more than one root element";
            // Attributes: name="value" pairs.
            const char *a = name + len;
            int selfClosing = close[-1] == '/';
            const char *attrEnd = selfClosing ? close - 1 : close;
            while (a < attrEnd) {
                if (*a == ' ') { a++; continue; }
                const char *eq = memchr(a, '=', (size_t)(attrEnd - a));
                if (!eq || eq[1] != '"') return "attribute without =\"";
                const char *q = memchr(eq + 2, '"', (size_t)(attrEnd - eq - 2));
                if (!q) return "unterminated attribute";
                a = q + 1;
            }
            if (!selfClosing) {
                if (depth == 32) return "too deep";
                stack[depth] = name;
                lens[depth++] = len;
            }
        }
        p = close + 1;
    }
    return depth == 0 && root == 1 ? NULL : "unclosed elements";
}

// The class table row of `size` in malloc_stats text: in use, or -1.
static long long inUseOfSize(const char *text, size_t size) {
    const char *p = strstr(text, " class ");
    if (!p) return -1;
    p = strchr(p, '\n');
    while (p && p[1] && p[1] != '\n') {
        unsigned long long cls, sz, inUse, cached, spans;
        if (sscanf(p + 1, "%llu %llu %llu %llu %llu", &cls, &sz, &inUse, &cached, &spans) == 5 && sz == size)
            return (long long)inUse;
        p = strchr(p + 1, '\n');
    }
    return -1;
}

int main(void) {
    typedef int (*print_fn)(FILE *);
    typedef const char *(*name_fn)(void);
    print_fn statsPrint = (print_fn)dlsym(RTLD_DEFAULT, "swiftmalloc_stats_print");
    name_fn frontendName = (name_fn)dlsym(RTLD_DEFAULT, "swiftmalloc_frontend_name");
    if (!statsPrint || !frontendName) {
        printf("FAIL: not preloaded (no swiftmalloc_stats_print)\n");
        return 1;
    }
    const char *frontend = frontendName();
    FILE *a = scratchFile(bufA, sizeof bufA), *b = scratchFile(bufB, sizeof bufB);

    struct mallinfo2 before = mallinfo2();
    static void *small[SMALL], *mid[MID], *big[BIG];
    size_t usable = 0;
    for (int i = 0; i < SMALL; i++) { small[i] = malloc(SMALL_SIZE); memset(small[i], 1, SMALL_SIZE); usable += malloc_usable_size(small[i]); }
    for (int i = 0; i < MID; i++) { mid[i] = malloc(MID_SIZE); memset(mid[i], 2, MID_SIZE); usable += malloc_usable_size(mid[i]); }
    for (int i = 0; i < BIG; i++) { big[i] = malloc(BIG_SIZE); memset(big[i], 3, 4096); usable += malloc_usable_size(big[i]); }
    size_t classSize = malloc_usable_size(small[0]);
    struct mallinfo2 during = mallinfo2();

    CHECK(during.uordblks >= before.uordblks + usable, "uordblks %zu -> %zu, usable sizes %zu", before.uordblks,
          during.uordblks, usable);
    CHECK(during.hblkhd >= (size_t)BIG * BIG_SIZE, "hblkhd %zu < %d", during.hblkhd, BIG * BIG_SIZE);
    CHECK(during.hblks >= BIG, "hblks %zu", during.hblks);
    CHECK(during.arena > 0, "arena 0");
    CHECK(during.arena >= (size_t)MID * MID_SIZE, "arena %zu below the 64 KiB blocks", during.arena);
    CHECK(during.usmblks == 0, "usmblks %zu", during.usmblks);
    struct mallinfo old = mallinfo();
    CHECK(old.uordblks > 0 && (size_t)old.uordblks <= during.uordblks + (1 << 20), "mallinfo uordblks %d", old.uordblks);
    CHECK(old.hblkhd >= BIG * BIG_SIZE, "mallinfo hblkhd %d", old.hblkhd);

    // malloc_info: well-formed, glibc's shape, the class of the 100-byte blocks.
    CHECK(malloc_info(0, a) == 0, "malloc_info(0) failed: %s", strerror(errno));
    readStream(a, textA, sizeof textA);
    const char *problem = xmlProblem(textA);
    CHECK(problem == NULL, "malloc_info XML: %s:\n%s", problem, textA);
    CHECK(strncmp(textA, "<malloc version=\"1\">", 20) == 0, "no <malloc version=\"1\"> first:\n%.200s", textA);
    const char *required[] = {"<heap nr=\"0\">", "<sizes>", "</sizes>", "<total type=\"fast\"", "<total type=\"rest\"",
                              "<total type=\"mmap\"", "<system type=\"current\"", "<system type=\"max\"",
                              "<aspace type=\"total\"", "<aspace type=\"mprotect\"", "</heap>", "</malloc>"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        CHECK(strstr(textA, required[i]) != NULL, "malloc_info has no %s", required[i]);
    long long count = -1;
    for (const char *tag = strstr(textA, "<size from="); tag; tag = strstr(tag + 1, "<size from=")) {
        const char *end = strchr(tag, '>');
        long long from = attribute(tag, end, "from"), to = attribute(tag, end, "to");
        if (from >= 0 && (size_t)from <= classSize && (size_t)to >= classSize) {
            count = attribute(tag, end, "count");
            CHECK(attribute(tag, end, "total") == count * (long long)to, "total != count * size");
        }
    }
    CHECK(count >= SMALL, "malloc_info: class of %zu bytes counts %lld:\n%s", classSize, count, textA);
    errno = 0;
    CHECK(malloc_info(1, a) == -1 && errno == EINVAL, "malloc_info(1): errno %d", errno);

    // malloc_stats to stderr (redirected), then swiftmalloc_stats_print: the
    // same text, unless something allocated in between (a library thread):
    // then try again.
    int same = 0;
    for (int attempt = 0; attempt < 5 && !same; attempt++) {
        fflush(stderr);
        int saved = dup(2);
        if (ftruncate(fileno(a), 0) != 0 || lseek(fileno(a), 0, SEEK_SET) != 0) { printf("FAIL: truncate\n"); return 1; }
        dup2(fileno(a), 2);
        malloc_stats();
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        rewind(b);
        if (ftruncate(fileno(b), 0) != 0) { printf("FAIL: truncate\n"); return 1; }
        CHECK(statsPrint(b) == 0, "swiftmalloc_stats_print failed");
        readAll(fileno(a), textA, sizeof textA);
        readStream(b, textB, sizeof textB);
        same = strcmp(textA, textB) == 0;
    }
    CHECK(same, "malloc_stats and swiftmalloc_stats_print differ:\n%s\n----\n%s", textA, textB);
    char line[64];
    snprintf(line, sizeof line, "front end: %s", frontend);
    CHECK(strstr(textA, line) != NULL, "malloc_stats does not say \"%s\":\n%s", line, textA);
    long long inUse = inUseOfSize(textA, classSize);
    CHECK(inUse >= SMALL, "malloc_stats: class of %zu bytes has %lld in use:\n%s", classSize, inUse, textA);
    CHECK(strstr(textA, "hits ") && strstr(textA, "misses ") && strstr(textA, "rseq aborts "), "no hits/misses/aborts");
    CHECK(strstr(textA, "mapped bytes") && strstr(textA, "resident bytes") && strstr(textA, "in-use bytes"),
          "no mapped/resident/in-use bytes:\n%s", textA);
    errno = 0;
    CHECK(statsPrint(NULL) == -1 && errno == EINVAL, "swiftmalloc_stats_print(NULL)");

    for (int i = 0; i < SMALL; i++) free(small[i]);
    for (int i = 0; i < MID; i++) free(mid[i]);
    for (int i = 0; i < BIG; i++) free(big[i]);
    struct mallinfo2 after = mallinfo2();
    CHECK(after.uordblks <= before.uordblks + (256 << 10), "uordblks after the frees %zu (before %zu)",
          after.uordblks, before.uordblks);
    CHECK(after.hblkhd + (size_t)BIG * BIG_SIZE <= during.hblkhd, "hblkhd after the frees %zu (during %zu)",
          after.hblkhd, during.hblkhd);
    CHECK(after.fordblks > 0, "nothing free after the frees");

    fclose(a);
    fclose(b);
    if (failures) return 1;
    printf("c_stats ok frontend: %s\n", frontend);
    return 0;
}
