// args.h: the command-line options of one subcommand: `--name VALUE` or `--flag`, `--help`.
// Unknown options, missing values and malformed numbers are usage errors (exit 2).
#pragma once
#include <stdbool.h>

#include "../kernels/check.h"

typedef struct {
    const char* name;   // "model" for --model
    const char* arg;    // placeholder shown in help ("DIR"); NULL for a flag
    const char* help;
    const char* value;  // default, then the parsed value; for flags non-NULL when given
} Option;

typedef struct {
    const char* name;
    const char* summary;
    Option* opts;
    int n_opts;
} Command;

// Returns 0 parsed, 1 when --help was printed, -1 with e set on a usage error.
int args_parse(Command* cmd, int argc, char** argv, Err* e);
void args_print_help(const Command* cmd);

const char* arg_str(const Command* cmd, const char* name);  // NULL when unset without default
bool arg_flag(const Command* cmd, const char* name);
// Required string: error when unset.
int arg_required(const Command* cmd, const char* name, const char** out, Err* e);
int arg_long(const Command* cmd, const char* name, long lo, long hi, long* out, Err* e);
// The same, with fallback when the option is not given (an option only some modes read has no default in
// its table, so that arg_refuse sees whether it was given).
int arg_long_default(const Command* cmd, const char* name, long lo, long hi, long fallback, long* out, Err* e);
int arg_double(const Command* cmd, const char* name, double lo, double hi, double* out, Err* e);

// Parses "1 2 3" or "1,2,3" into a malloc'd array; -1 on a non-integer.
int parse_token_list(const char* text, int** out, int* n, Err* e);
