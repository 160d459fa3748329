// args.c: see args.h.
#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Option* find(const Command* cmd, const char* name) {
    for (int i = 0; i < cmd->n_opts; i++)
        if (strcmp(cmd->opts[i].name, name) == 0) return &cmd->opts[i];
    return NULL;
}

void args_print_help(const Command* cmd) {
    printf("usage: arbor %s [options]\n\n%s\n\noptions:\n", cmd->name, cmd->summary);
    for (int i = 0; i < cmd->n_opts; i++) {
        const Option* o = &cmd->opts[i];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s%s", o->name[1] ? "--" : "-", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-24s %s", left, o->help);
        if (o->arg && o->value) printf(" (default %s)", o->value);
        printf("\n");
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

int args_parse(Command* cmd, int argc, char** argv, Err* e) {
    char given[256] = {0};  // an option given twice is refused, not silently overridden by the last
    for (int i = 0; i < argc; i++) {
        const char* a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args_print_help(cmd);
            return 1;
        }
        // "--name", or "-n" for a one-letter option
        int dashes = strncmp(a, "--", 2) == 0 ? 2 : (a[0] == '-' && a[1] && !a[2]) ? 1 : 0;
        if (!dashes) return err_set(e, "%s: unexpected argument '%s' (see arbor %s --help)", cmd->name, a, cmd->name);
        Option* o = find(cmd, a + dashes);
        if (o && dashes == 1 && strlen(o->name) != 1) o = NULL;
        if (!o) return err_set(e, "%s: unknown option '%s' (see arbor %s --help)", cmd->name, a, cmd->name);
        int k = (int)(o - cmd->opts);
        if (k < (int)sizeof given && given[k]++) return err_set(e, "%s: option '%s' is given twice", cmd->name, a);
        if (!o->arg) {
            o->value = "1";
            continue;
        }
        if (i + 1 >= argc) return err_set(e, "%s: option '%s' needs a value (%s)", cmd->name, a, o->arg);
        o->value = argv[++i];
    }
    return 0;
}

const char* arg_str(const Command* cmd, const char* name) {
    const Option* o = find(cmd, name);
    if (!o) FATAL("option --%s is not declared for %s", name, cmd->name);
    return o->value;
}

bool arg_flag(const Command* cmd, const char* name) { return arg_str(cmd, name) != NULL; }

int arg_required(const Command* cmd, const char* name, const char** out, Err* e) {
    *out = arg_str(cmd, name);
    if (!*out) return err_set(e, "%s: --%s is required (see arbor %s --help)", cmd->name, name, cmd->name);
    return 0;
}

int arg_long(const Command* cmd, const char* name, long lo, long hi, long* out, Err* e) {
    const char* v = arg_str(cmd, name);
    if (!v) return err_set(e, "%s: --%s is required", cmd->name, name);
    char* end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return err_set(e, "%s: --%s '%s' must be an integer in [%ld, %ld]", cmd->name, name, v, lo, hi);
    *out = x;
    return 0;
}

int arg_long_default(const Command* cmd, const char* name, long lo, long hi, long fallback, long* out, Err* e) {
    if (!arg_str(cmd, name)) return *out = fallback, 0;
    return arg_long(cmd, name, lo, hi, out, e);
}

int arg_double(const Command* cmd, const char* name, double lo, double hi, double* out, Err* e) {
    const char* v = arg_str(cmd, name);
    if (!v) return err_set(e, "%s: --%s is required", cmd->name, name);
    char* end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi))
        return err_set(e, "%s: --%s '%s' must be a number in [%g, %g]", cmd->name, name, v, lo, hi);
    *out = x;
    return 0;
}

int parse_token_list(const char* text, int** out, int* n, Err* e) {
    size_t cap = strlen(text) / 2 + 1;
    int* ids = xmalloc(sizeof(int) * cap);
    int count = 0;
    const char* p = text;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char* end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 0x7fffffff || (*end && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n')) {
            free(ids);
            return err_set(e, "--tokens: '%.20s' is not a non-negative integer token id", p);
        }
        ids[count++] = (int)v;
        p = end;
    }
    if (count == 0) {
        free(ids);
        return err_set(e, "--tokens: no token ids given");
    }
    *out = ids;
    *n = count;
    return 0;
}
