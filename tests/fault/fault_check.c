/* fault-check: checks a fault-test history file for linearizability. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

/* Exit codes: 0 linearizable, 1 not linearizable, 2 usage or bad input,
 * 3 the search gave up (budget). */
int main(int argc, char **argv)
{
    struct fault_check_opts opts = {0};
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--max-steps") == 0 && i + 1 < argc) {
            opts.max_steps = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--max-cache-mb") == 0 && i + 1 < argc) {
            opts.max_cache_bytes = strtoull(argv[++i], NULL, 10) << 20;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            path = NULL;
            break;
        } else {
            path = argv[i];
        }
    }
    if (path == NULL) {
        fprintf(stderr, "usage: fault-check [--max-steps N] [--max-cache-mb N]"
                        " HISTORY|-\n");
        return 2;
    }
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "fault-check: %s: %s\n", path, strerror(errno));
        return 2;
    }
    struct fault_history h;
    fault_history_init(&h);
    size_t bad_line = 0;
    int rv = fault_history_load(&h, f, &bad_line);
    if (f != stdin) {
        fclose(f);
    }
    if (rv != 0) {
        fprintf(stderr, "fault-check: %s: line %zu: %s\n", path, bad_line,
                rv == -EINVAL ? "malformed" : strerror(-rv));
        fault_history_close(&h);
        return 2;
    }
    struct fault_check_summary sum;
    rv = fault_check_history(&h, &opts, stdout, &sum);
    fault_history_close(&h);
    if (rv < -1) {
        fprintf(stderr, "fault-check: %s\n", strerror(-rv));
        return 2;
    }
    const char *verdict = rv == FAULT_VERDICT_OK    ? "linearizable"
                          : rv == FAULT_VERDICT_BAD ? "NOT LINEARIZABLE"
                                                    : "unknown (search gave up)";
    printf("checker: %zu ops on %zu keys, %llu search steps: %s "
           "(%zu keys bad, %zu unknown)\n",
           sum.ops, sum.keys, (unsigned long long)sum.steps, verdict,
           sum.keys_bad, sum.keys_unknown);
    return rv == FAULT_VERDICT_OK ? 0 : rv == FAULT_VERDICT_BAD ? 1 : 3;
}
