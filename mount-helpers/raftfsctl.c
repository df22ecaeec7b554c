/* raftfsctl: administer a raftfs cluster and use its keys from the shell. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "raft.h"

/* Exit codes (documented in --help and docs/operations.md). */
enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1,      /* the operation failed: no such key, exists, ... */
    EXIT_USAGE = 2,
    EXIT_UNAVAILABLE = 3, /* no endpoint answered, or no quorum */
};

#define DEFAULT_ENDPOINT "127.0.0.1:7700"

struct ctl {
    const char *endpoints;
    unsigned timeout_ms;
    bool json;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: raftfsctl [--endpoint HOST:PORT[,HOST:PORT...]] [--json]\n"
            "                 [--timeout-ms N] COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  status                         this node: role, term, leader, "
            "commit,\n"
            "                                 applied; on the leader each "
            "peer's lag\n"
            "  members                        list the members\n"
            "  member add ID HOST:PORT [--learner]\n"
            "  member promote ID              learner -> voter (once caught "
            "up)\n"
            "  member remove ID\n"
            "  leader transfer [ID]           hand leadership to ID (or the "
            "best voter)\n"
            "  snapshot                       take a snapshot now\n"
            "  get PATH                       print the value of a key\n"
            "  put PATH [VALUE]               set a key (VALUE or stdin)\n"
            "  rm PATH                        delete a key\n"
            "  ls [PATH]                      list a directory\n"
            "  mkdir PATH                     create a directory\n"
            "\n"
            "The endpoint also comes from RAFTFSCTL_ENDPOINT (default %s);\n"
            "a comma list is tried in order.\n"
            "Exit status: 0 ok, 1 the operation failed, 2 usage error,\n"
            "3 cluster unavailable.\n",
            DEFAULT_ENDPOINT);
}

static const char *status_text(int status)
{
    if (status > -1000 && status < 0) {
        return strerror(-status);
    }
    if (status <= -2000) {
        return net_strerror(status);
    }
    return raft_strerror(status);
}

/* Statuses that mean "the cluster could not do it now", not "no". */
static bool unavailable(int status)
{
    return status == -ETIMEDOUT || status == -EIO ||
           status == RAFT_ERR_NOT_LEADER || status == RAFT_ERR_SHUTDOWN ||
           status == RAFT_ERR_LEADERSHIP_LOST || status == -EAGAIN;
}

static void json_string(const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t i;
    putchar('"');
    for (i = 0; i < len; i++) {
        unsigned char ch = s[i];
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch == '\n') {
            printf("\\n");
        } else if (ch == '\t') {
            printf("\\t");
        } else if (ch < 0x20 || ch >= 0x7f) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}

static const char *role_name(uint8_t role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    default:
        return "unknown";
    }
}

static const char *peer_state_name(uint8_t s)
{
    switch (s) {
    case 1:
        return "probe";
    case 2:
        return "replicate";
    case 3:
        return "snapshot";
    default:
        return "-";
    }
}

static void print_status(const struct ctl *ctl, const struct net_client_resp *r)
{
    const struct net_client_status *s = &r->info;
    size_t i;
    if (ctl->json) {
        printf("{\"id\":%llu,\"role\":\"%s\",\"term\":%llu,\"leader\":%llu,"
               "\"leader_addr\":",
               (unsigned long long)s->id, role_name(s->role),
               (unsigned long long)s->term, (unsigned long long)s->leader);
        json_string(s->leader_addr, strlen(s->leader_addr));
        printf(",\"commit\":%llu,\"applied\":%llu,\"last_index\":%llu,"
               "\"peers\":[",
               (unsigned long long)s->commit, (unsigned long long)s->applied,
               (unsigned long long)s->last_index);
        for (i = 0; i < s->n_peers; i++) {
            const struct net_client_peer *p = &s->peers[i];
            printf("%s{\"id\":%llu,\"match\":%llu,\"next\":%llu,\"lag\":%llu,"
                   "\"state\":\"%s\"}",
                   i > 0 ? "," : "", (unsigned long long)p->id,
                   (unsigned long long)p->match, (unsigned long long)p->next,
                   (unsigned long long)p->lag, peer_state_name(p->state));
        }
        printf("]}\n");
        return;
    }
    printf("id:       %llu\n", (unsigned long long)s->id);
    printf("role:     %s\n", role_name(s->role));
    printf("term:     %llu\n", (unsigned long long)s->term);
    if (s->leader != 0) {
        printf("leader:   %llu%s%s\n", (unsigned long long)s->leader,
               s->leader_addr[0] ? " at " : "", s->leader_addr);
    } else {
        printf("leader:   none\n");
    }
    printf("commit:   %llu\n", (unsigned long long)s->commit);
    printf("applied:  %llu\n", (unsigned long long)s->applied);
    printf("last:     %llu\n", (unsigned long long)s->last_index);
    if (s->n_peers > 0) {
        printf("%-6s %-10s %-10s %-8s %s\n", "PEER", "MATCH", "NEXT", "LAG",
               "STATE");
        for (i = 0; i < s->n_peers; i++) {
            const struct net_client_peer *p = &s->peers[i];
            printf("%-6llu %-10llu %-10llu %-8llu %s\n",
                   (unsigned long long)p->id, (unsigned long long)p->match,
                   (unsigned long long)p->next, (unsigned long long)p->lag,
                   peer_state_name(p->state));
        }
    }
}

static void print_members(const struct ctl *ctl,
                          const struct net_client_resp *r)
{
    size_t i;
    if (ctl->json) {
        printf("[");
        for (i = 0; i < r->n_members; i++) {
            const struct net_client_member *m = &r->members[i];
            printf("%s{\"id\":%llu,\"addr\":", i > 0 ? "," : "",
                   (unsigned long long)m->id);
            json_string(m->addr, strlen(m->addr));
            printf(",\"role\":\"%s\",\"leader\":%s}",
                   m->role == RAFT_LEARNER ? "learner" : "voter",
                   m->is_leader ? "true" : "false");
        }
        printf("]\n");
        return;
    }
    printf("%-6s %-24s %-8s %s\n", "ID", "ADDRESS", "ROLE", "");
    for (i = 0; i < r->n_members; i++) {
        const struct net_client_member *m = &r->members[i];
        printf("%-6llu %-24s %-8s %s\n", (unsigned long long)m->id, m->addr,
               m->role == RAFT_LEARNER ? "learner" : "voter",
               m->is_leader ? "leader" : "");
    }
}

static void print_dir(const struct ctl *ctl, const struct net_client_resp *r)
{
    size_t i;
    if (ctl->json) {
        printf("[");
        for (i = 0; i < r->n_entries; i++) {
            const struct net_client_dirent *d = &r->entries[i];
            printf("%s{\"name\":", i > 0 ? "," : "");
            json_string(d->name, strlen(d->name));
            printf(",\"type\":\"%s\",\"size\":%llu}",
                   d->type == NET_DIRENT_DIR ? "dir" : "file",
                   (unsigned long long)d->size);
        }
        printf("]\n");
        return;
    }
    for (i = 0; i < r->n_entries; i++) {
        const struct net_client_dirent *d = &r->entries[i];
        printf("%s%s\n", d->name, d->type == NET_DIRENT_DIR ? "/" : "");
    }
}

static int parse_id(const char *s, raft_id *out)
{
    char *end;
    unsigned long long v;
    if (s == NULL || *s == '\0' || *s == '-') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0) {
        return -1;
    }
    *out = v;
    return 0;
}

static int read_stdin(struct raft_buf *out)
{
    size_t cap = 4096;
    size_t len = 0;
    char *p = malloc(cap);
    size_t n;
    if (p == NULL) {
        return -1;
    }
    while ((n = fread(p + len, 1, cap - len, stdin)) > 0) {
        len += n;
        if (len == cap) {
            char *q;
            if (cap >= (64u << 20)) {
                free(p);
                return -1;
            }
            q = realloc(p, cap * 2);
            if (q == NULL) {
                free(p);
                return -1;
            }
            p = q;
            cap *= 2;
        }
    }
    if (ferror(stdin)) {
        free(p);
        return -1;
    }
    out->base = p;
    out->len = len;
    return 0;
}

static int set_path(struct net_client_req *req, const char *path)
{
    if (strlen(path) > NET_PATH_MAX) {
        fprintf(stderr, "raftfsctl: path too long (max %d bytes)\n",
                NET_PATH_MAX);
        return -1;
    }
    snprintf(req->path, sizeof req->path, "%s", path);
    return 0;
}

#define NEED(cond, what)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "raftfsctl: %s (see --help)\n", what);             \
            return EXIT_USAGE;                                                 \
        }                                                                      \
    } while (0)

/* Fills req from the command words; returns EXIT_OK or EXIT_USAGE. */
static int build(int argc, char **argv, struct net_client_req *req,
                 bool *owns_value)
{
    const char *cmd = argv[0];
    int i;

    if (strcmp(cmd, "status") == 0) {
        NEED(argc == 1, "status takes no arguments");
        req->op = NET_CLIENT_STATUS;
    } else if (strcmp(cmd, "members") == 0) {
        NEED(argc == 1, "members takes no arguments");
        req->op = NET_CLIENT_MEMBERS;
    } else if (strcmp(cmd, "member") == 0) {
        NEED(argc >= 3, "member add|promote|remove ID ...");
        NEED(parse_id(argv[2], &req->member_id) == 0,
             "member ID must be a positive integer");
        if (strcmp(argv[1], "add") == 0) {
            char why[200];
            NEED(argc >= 4 && argc <= 5,
                 "usage: member add ID HOST:PORT [--learner]");
            if (net_addr_check(argv[3], why, sizeof why) != 0) {
                fprintf(stderr, "raftfsctl: bad address '%s': %s\n", argv[3],
                        why);
                return EXIT_USAGE;
            }
            snprintf(req->addr, sizeof req->addr, "%s", argv[3]);
            req->learner = false;
            for (i = 4; i < argc; i++) {
                NEED(strcmp(argv[i], "--learner") == 0,
                     "member add: unknown option");
                req->learner = true;
            }
            req->op = NET_CLIENT_MEMBER_ADD;
        } else if (strcmp(argv[1], "promote") == 0) {
            NEED(argc == 3, "usage: member promote ID");
            req->op = NET_CLIENT_MEMBER_PROMOTE;
        } else if (strcmp(argv[1], "remove") == 0) {
            NEED(argc == 3, "usage: member remove ID");
            req->op = NET_CLIENT_MEMBER_REMOVE;
        } else {
            NEED(false, "member: expected add, promote or remove");
        }
    } else if (strcmp(cmd, "leader") == 0) {
        NEED(argc >= 2 && strcmp(argv[1], "transfer") == 0 && argc <= 3,
             "usage: leader transfer [ID]");
        req->member_id = 0;
        if (argc == 3) {
            NEED(parse_id(argv[2], &req->member_id) == 0,
                 "leader transfer: ID must be a positive integer");
        }
        req->op = NET_CLIENT_LEADER_TRANSFER;
    } else if (strcmp(cmd, "snapshot") == 0) {
        NEED(argc == 1, "snapshot takes no arguments");
        req->op = NET_CLIENT_SNAPSHOT;
    } else if (strcmp(cmd, "get") == 0 || strcmp(cmd, "rm") == 0 ||
               strcmp(cmd, "mkdir") == 0) {
        NEED(argc == 2, "expected exactly one PATH");
        if (set_path(req, argv[1]) != 0) {
            return EXIT_USAGE;
        }
        req->op = cmd[0] == 'g'   ? NET_CLIENT_GET
                  : cmd[0] == 'r' ? NET_CLIENT_RM
                                  : NET_CLIENT_MKDIR;
    } else if (strcmp(cmd, "ls") == 0) {
        NEED(argc <= 2, "usage: ls [PATH]");
        if (set_path(req, argc == 2 ? argv[1] : "/") != 0) {
            return EXIT_USAGE;
        }
        req->op = NET_CLIENT_LS;
    } else if (strcmp(cmd, "put") == 0) {
        NEED(argc == 2 || argc == 3, "usage: put PATH [VALUE]");
        if (set_path(req, argv[1]) != 0) {
            return EXIT_USAGE;
        }
        if (argc == 3) {
            req->value.base = argv[2];
            req->value.len = strlen(argv[2]);
        } else {
            if (read_stdin(&req->value) != 0) {
                fprintf(stderr, "raftfsctl: cannot read the value from "
                                "stdin\n");
                return EXIT_FAILED;
            }
            *owns_value = true;
        }
        req->op = NET_CLIENT_PUT;
    } else {
        fprintf(stderr, "raftfsctl: unknown command '%s' (see --help)\n", cmd);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    struct ctl ctl = {0};
    struct net_client_req req;
    struct net_client_resp resp;
    bool owns_value = false;
    char err[256];
    int i;
    int rv;
    int code;

    ctl.endpoints = getenv("RAFTFSCTL_ENDPOINT");
    if (ctl.endpoints == NULL || *ctl.endpoints == '\0') {
        ctl.endpoints = DEFAULT_ENDPOINT;
    }
    ctl.timeout_ms = 15000;

    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            ctl.json = true;
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
            ctl.endpoints = argv[++i];
        } else if (strncmp(argv[i], "--endpoint=", 11) == 0) {
            ctl.endpoints = argv[i] + 11;
        } else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
            raft_id v;
            if (parse_id(argv[++i], &v) != 0 || v > 3600000) {
                fprintf(stderr, "raftfsctl: bad --timeout-ms\n");
                return EXIT_USAGE;
            }
            ctl.timeout_ms = (unsigned)v;
        } else {
            fprintf(stderr, "raftfsctl: unknown option '%s' (see --help)\n",
                    argv[i]);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }

    memset(&req, 0, sizeof req);
    req.id = 1;
    code = build(argc - i, argv + i, &req, &owns_value);
    if (code != EXIT_OK) {
        return code;
    }

    memset(&resp, 0, sizeof resp);
    rv = net_client_call(ctl.endpoints, ctl.timeout_ms, &req, &resp, NULL,
                         err, sizeof err);
    if (owns_value) {
        free(req.value.base);
    }
    if (rv != 0) {
        fprintf(stderr, "raftfsctl: %s: %s\n", ctl.endpoints,
                err[0] ? err : net_strerror(rv));
        return rv == NET_ERR_BAD_ADDR ? EXIT_USAGE : EXIT_UNAVAILABLE;
    }
    if (resp.status != 0) {
        /* The server's message already names the cause; else our text. */
        fprintf(stderr, "raftfsctl: %s\n",
                resp.message[0] ? resp.message : status_text(resp.status));
        code = unavailable(resp.status) ? EXIT_UNAVAILABLE : EXIT_FAILED;
        net_client_resp_close(&resp);
        return code;
    }
    switch (resp.payload) {
    case NET_PAYLOAD_STATUS:
        print_status(&ctl, &resp);
        break;
    case NET_PAYLOAD_MEMBERS:
        print_members(&ctl, &resp);
        break;
    case NET_PAYLOAD_VALUE:
        if (ctl.json) {
            printf("{\"path\":");
            json_string(req.path, strlen(req.path));
            printf(",\"value\":");
            json_string(resp.value.base, resp.value.len);
            printf("}\n");
        } else if (resp.value.len > 0 &&
                   fwrite(resp.value.base, 1, resp.value.len, stdout) !=
                       resp.value.len) {
            code = EXIT_FAILED;
        }
        break;
    case NET_PAYLOAD_DIR:
        print_dir(&ctl, &resp);
        break;
    default:
        if (ctl.json) {
            printf("{\"ok\":true}\n");
        }
        break;
    }
    net_client_resp_close(&resp);
    if (fflush(stdout) != 0) {
        return EXIT_FAILED;
    }
    return code;
}
