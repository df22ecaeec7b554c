/* Pure quorum arithmetic: majorities and the index a majority has reached. */
#include "core.h"

uint64_t raft__quorum_value(uint64_t *vals, unsigned n)
{
    unsigned i, j;
    /* n <= RAFT_MAX_SERVERS: insertion sort, descending. */
    for (i = 1; i < n; i++) {
        uint64_t v = vals[i];
        for (j = i; j > 0 && vals[j - 1] < v; j--) {
            vals[j] = vals[j - 1];
        }
        vals[j] = v;
    }
    /* A majority is n / 2 + 1 voters; the (n/2 + 1)-th largest value is
     * reached by that many (paper §5.3: "stored on a majority"). */
    return n == 0 ? 0 : vals[n / 2];
}

bool raft__quorum_ok(unsigned granted, unsigned n)
{
    return n > 0 && granted >= n / 2 + 1;
}
