/* raft-sim: runs seeds of the deterministic cluster simulator. */
/*
 * Each seed picks a cluster size (3, 4, 5 or 7 voters, plus 2 spare servers
 * that membership changes may add), the network's loss, duplication and
 * delays, the disks' speed, the garbage rate, the workload mix and the core's
 * options. A run is a fault phase of --steps events (crashes, restarts,
 * partitions, slow disks, garbage, proposals, reads, transfers, membership
 * changes, snapshots), then a liveness phase: everything heals and a fresh
 * proposal must commit on a majority within 30 election timeouts. The
 * safety checks run after every event (observe.c, check.c). Same seed, same
 * run: `--seed S --trace` prints every event and every core decision.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#define U(x) ((unsigned long long)(x))

static void usage(void)
{
    fprintf(stderr,
            "usage: raft-sim --seeds N --first-seed S [--nodes K] "
            "[--steps M] [--long-seeds L]\n"
            "       raft-sim --seed S [--nodes K] [--steps M] [--trace]\n"
            "       raft-sim --self-test\n"
            "  --lenient-reads: trace (do not fail on) a read answered twice\n"
            "  --safety-only:   skip the liveness phase (for exploring)\n"
            "  --keep-going:    run every seed, one line per violation\n"
            "  --long-seeds L: run L seeds instead of N when RAFTFS_LONG=1\n"
            "                  (with --seeds 0: skip, exit 77, otherwise)\n"
            "  --lease on|off:  lease reads in every seed (default: 3 of 4)\n"
            "  --skew-ppm P:    clocks run up to P ppm fast or slow (default:\n"
            "                   per seed, 0 or up to 40000)\n"
            "  --lease-drift D: the cores' clock_drift_permille (default "
            "100)\n"
            "  --confirm-window W: the cores' confirm_window in ms (default:\n"
            "                   per seed, 0, heartbeat, up to an election "
            "timeout)\n");
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- --self-test: the checker must be able to fail ---- */

static int expect(bool held, const struct sim_check *c, const char *what)
{
    if (held || !c->failed) {
        printf("self-test FAILED: %s was not reported\n", what);
        return 1;
    }
    printf("self-test ok: %s -> \"%s\"\n", what, c->why);
    return 0;
}

static int synthetic_tests(void)
{
    int bad = 0;
    struct sim_check c;

    sim_check_init(&c); /* a node that votes twice makes two leaders */
    sim_check_leader(&c, 4, 1);
    bad += expect(sim_check_leader(&c, 4, 2), &c, "two leaders in one term");
    sim_check_close(&c);

    sim_check_init(&c);
    sim_check_log_entry(&c, 1, 5, 2, 0xaa, 2);
    bad += expect(sim_check_log_entry(&c, 2, 5, 2, 0xbb, 2), &c,
                  "same index/term, different data");
    sim_check_close(&c);

    sim_check_init(&c);
    sim_check_log_entry(&c, 1, 5, 3, 0xaa, 2);
    bad += expect(sim_check_log_entry(&c, 2, 5, 3, 0xaa, 1), &c,
                  "same index/term, different prefix");
    sim_check_close(&c);

    sim_check_init(&c);
    sim_check_applied(&c, 1, 1, 1, 0x1, -1, 0, 1);
    bad += expect(sim_check_applied(&c, 2, 1, 1, 0x2, -1, 0, 1), &c,
                  "two nodes apply different entries at one index");
    sim_check_close(&c);

    sim_check_init(&c);
    sim_check_committed(&c, 1, 3, 2, 0x1, 2);
    bad += expect(sim_check_committed(&c, 2, 3, 4, 0x9, 4), &c,
                  "a committed entry replaced");
    sim_check_close(&c);

    sim_check_init(&c); /* a stale read: key 0 written at 1 (v7), 2 (v8) */
    sim_check_applied(&c, 1, 1, 1, 0x1, 0, 7, 1);
    sim_check_applied(&c, 1, 2, 1, 0x2, 0, 8, 1);
    struct sim_read rd = {.ctx = 1, .key = 0, .lo = 2, .index = 2};
    bad += expect(sim_check_read(&c, 1, &rd, 7, 2), &c,
                  "a read returning an overwritten value");
    sim_check_close(&c);

    sim_check_init(&c);
    sim_check_applied(&c, 1, 1, 1, 0x1, 0, 7, 1);
    sim_check_applied(&c, 1, 2, 1, 0x2, 0, 8, 1);
    rd = (struct sim_read){.ctx = 2, .key = 0, .lo = 2, .index = 1};
    bad += expect(sim_check_read(&c, 1, &rd, 8, 2), &c,
                  "a read index below what was committed");
    sim_check_close(&c);

    sim_check_init(&c);
    struct sim_read ok = {.ctx = 3, .key = 0, .lo = 1, .index = 1};
    sim_check_applied(&c, 1, 1, 1, 0x1, 0, 7, 1);
    sim_check_applied(&c, 1, 2, 1, 0x2, 0, 8, 1);
    if (!sim_check_read(&c, 1, &ok, 8, 2) || c.failed) {
        printf("self-test FAILED: a valid read was reported: %s\n", c.why);
        bad++;
    }
    sim_check_close(&c);
    return bad;
}

/* A deliberately broken driver must be caught within a few seeds. */
static int broken_driver(enum sim_break brk, const char *what)
{
    for (uint64_t seed = 1; seed <= 2000; seed++) {
        struct sim s;
        sim_init(&s, seed, 3, 3000, NULL, brk);
        s.p.w_crash = 30;
        s.safety_only = true; /* a safety check must catch it */
        bool ok = sim_run(&s);
        if (!ok) {
            printf("self-test ok: %s caught at seed %llu -> \"%s\"\n", what,
                   U(seed), s.chk.why);
            sim_close(&s);
            return 0;
        }
        sim_close(&s);
    }
    printf("self-test FAILED: %s never caught in 2000 seeds\n", what);
    return 1;
}

/* Leases with clocks drifting far beyond the margin the cores assume (rates
 * 0.4 to 1.6, no margin at all) must be caught: a leader serves a read
 * from its lease after a majority stopped honoring it. */
static int broken_lease(void)
{
    struct sim_knobs k = {.lease = SIM_LEASE_ON, .skew_ppm = 600000,
                          .lease_drift = 0, .confirm_window = -1};
    for (uint64_t seed = 1; seed <= 2000; seed++) {
        struct sim s;
        sim_init_knobs(&s, seed, 3, 3000, NULL, SIM_BREAK_NONE, &k);
        s.p.w_read = 80;
        s.p.w_partition = 40;
        s.p.w_heal = 20;
        s.p.w_crash = 0;
        s.p.w_change = 0;
        s.p.w_transfer = 0;
        s.safety_only = true;
        bool ok = sim_run(&s);
        if (!ok) {
            printf("self-test ok: leases with clocks 60%% off caught at "
                   "seed %llu -> \"%s\"\n", U(seed), s.chk.why);
            sim_close(&s);
            return 0;
        }
        sim_close(&s);
    }
    printf("self-test FAILED: leases with clocks 60%% off never caught in "
           "2000 seeds\n");
    return 1;
}

static int self_test(void)
{
    int bad = synthetic_tests();
    bad += broken_lease();
    bad += broken_driver(SIM_BREAK_ACK_BEFORE_PERSIST,
                         "a driver acknowledging before persisting");
    bad += broken_driver(SIM_BREAK_DROP_PERSISTED,
                         "a store losing a persisted entry");
    bad += broken_driver(SIM_BREAK_FORGET_VOTE,
                         "a node that votes twice in a term");
    printf("self-test: %s\n", bad ? "FAILED" : "passed");
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    uint64_t seeds = 1, first = 1, steps = 3000, long_seeds = 0;
    unsigned nodes = 0;
    bool trace = false, single = false, quiet = false, lenient = false;
    bool safety_only = false, keep_going = false;
    struct sim_knobs knobs = {.lease = SIM_LEASE_SEED, .skew_ppm = -1,
                              .lease_drift = -1, .confirm_window = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--trace") == 0) {
            trace = true;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--lenient-reads") == 0) {
            lenient = true;
        } else if (strcmp(a, "--safety-only") == 0) {
            safety_only = true;
        } else if (strcmp(a, "--keep-going") == 0) {
            keep_going = true;
        } else if (strcmp(a, "--self-test") == 0) {
            return self_test();
        } else if (v == NULL) {
            usage();
            return 2;
        } else if (strcmp(a, "--seeds") == 0) {
            seeds = strtoull(v, NULL, 0), i++;
        } else if (strcmp(a, "--first-seed") == 0) {
            first = strtoull(v, NULL, 0), i++;
        } else if (strcmp(a, "--seed") == 0) {
            first = strtoull(v, NULL, 0), seeds = 1, single = true, i++;
        } else if (strcmp(a, "--nodes") == 0) {
            nodes = (unsigned)strtoul(v, NULL, 0), i++;
        } else if (strcmp(a, "--steps") == 0) {
            steps = strtoull(v, NULL, 0), i++;
        } else if (strcmp(a, "--lease") == 0) {
            if (strcmp(v, "on") == 0) {
                knobs.lease = SIM_LEASE_ON;
            } else if (strcmp(v, "off") == 0) {
                knobs.lease = SIM_LEASE_OFF;
            } else {
                usage();
                return 2;
            }
            i++;
        } else if (strcmp(a, "--skew-ppm") == 0) {
            knobs.skew_ppm = (int)strtoul(v, NULL, 0), i++;
        } else if (strcmp(a, "--lease-drift") == 0) {
            knobs.lease_drift = (int)strtoul(v, NULL, 0), i++;
        } else if (strcmp(a, "--confirm-window") == 0) {
            knobs.confirm_window = (long)strtoul(v, NULL, 0), i++;
        } else if (strcmp(a, "--long-seeds") == 0) {
            long_seeds = strtoull(v, NULL, 0), i++;
        } else {
            usage();
            return 2;
        }
    }
    if (nodes != 0 && (nodes < 1 || nodes + SIM_SPARES > SIM_MAX_SLOTS)) {
        fprintf(stderr, "raft-sim: --nodes must be 1..%d\n",
                SIM_MAX_SLOTS - SIM_SPARES);
        return 2;
    }
    const char *lenv = getenv("RAFTFS_LONG");
    if (long_seeds > 0) {
        if (lenv != NULL && strcmp(lenv, "1") == 0) {
            seeds = long_seeds;
        } else if (seeds == 0) {
            printf("raft-sim: long mode needs RAFTFS_LONG=1: skipped\n");
            return 77;
        }
    }
    double t0 = wall();
    uint64_t committed = 0, events = 0, msgs = 0, crashes = 0, reads = 0,
             installs = 0, changes = 0, transfers = 0, garbage = 0,
             violations = 0, lease_reads = 0, round_reads = 0, rounds = 0,
             lease_seeds = 0, window_reads = 0;
    for (uint64_t k = 0; k < seeds; k++) {
        uint64_t seed = first + k;
        struct sim s;
        sim_init_knobs(&s, seed, nodes, steps, trace ? stdout : NULL,
                       SIM_BREAK_NONE, &knobs);
        s.lenient_reads = lenient;
        s.safety_only = safety_only;
        bool ok = !s.chk.failed && sim_run(&s);
        committed += s.chk.n_commands;
        events += s.steps;
        msgs += s.n_msgs;
        crashes += s.n_crashes;
        reads += s.n_reads_ok;
        installs += s.n_installs;
        changes += s.n_changes;
        transfers += s.n_transfers;
        garbage += s.n_garbage;
        if (!ok) {
            char nopt[32] = "";
            if (nodes != 0) {
                snprintf(nopt, sizeof(nopt), " --nodes %u", nodes);
            }
            printf("VIOLATION seed=%llu nodes=%u step=%llu t=%llu: %s\n"
                   "  replay: raft-sim --seed %llu%s --steps %llu --trace\n",
                   U(seed), s.n_voters, U(s.steps), U(s.now), s.chk.why,
                   U(seed), nopt, U(steps));
            fflush(stdout);
            violations++;
            if (!keep_going) {
                sim_close(&s);
                seeds = k + 1;
                break;
            }
        }
        lease_seeds += s.p.lease_reads;
        sim_close(&s);
        lease_reads += s.reads.lease_reads;
        round_reads += s.reads.round_reads;
        rounds += s.reads.rounds;
        window_reads += s.reads.window_reads;
    }
    double dt = wall() - t0;
    if (!single || !quiet || violations) {
        fprintf(trace ? stderr : stdout,
                "raft-sim: %llu seeds from %llu (%s nodes), %llu violations, "
                "%llu committed entries, %llu events, %llu messages, %llu "
                "crashes, %llu reads, %llu snapshot installs, %llu membership "
                "changes, %llu transfers, %llu garbage messages, %.2fs wall, "
                "%.0f committed entries per wall second\n",
                U(seeds), U(first), nodes ? "fixed" : "3/4/5/7", U(violations),
                U(committed),
                U(events), U(msgs), U(crashes), U(reads), U(installs),
                U(changes), U(transfers), U(garbage), dt,
                dt > 0 ? (double)committed / dt : 0.0);
        fprintf(trace ? stderr : stdout,
                "raft-sim: leases on in %llu of %llu seeds; leader read "
                "answers: %llu under a lease, %llu confirm reads from the "
                "window, %llu after %llu heartbeat rounds\n",
                U(lease_seeds), U(seeds), U(lease_reads), U(window_reads),
                U(round_reads), U(rounds));
    }
    return violations ? 1 : 0;
}
