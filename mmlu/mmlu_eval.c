// mmlu_eval.c: see mmlu_eval.h.
#include "mmlu_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "../evals/perplexity.h"
#include "../kernels/clock.h"
#include "../models/file_io.h"
#include "../models/progress.h"
#include "mmlu_csv.h"
#include "prompt.h"

typedef struct {
    IntVec ctx;         // context tokens as the model sees them
    int cont[4];        // the single-token continuation of each letter
    int shots_used;
    int cut_tokens;     // tokens cut from the front of ctx to fit the context limit
    int shared;         // ctx starts with the subject prefix's tokens
} Prompt;

const char* mmlu_truncation_name(MmluTruncation t) { return t == MMLU_TRUNCATE_SHOTS ? "shots" : "tokens"; }

int mmlu_truncation_parse(const char* s, MmluTruncation* t) {
    for (int i = MMLU_TRUNCATE_TOKENS; i <= MMLU_TRUNCATE_SHOTS; i++)
        if (!strcmp(s, mmlu_truncation_name((MmluTruncation)i))) return *t = (MmluTruncation)i, 0;
    return -1;
}

static int encode_text(const Tokenizer* t, const ByteVec* text, IntVec* out, Err* e) {
    out->len = 0;
    return tokenizer_encode(t, text->data ? text->data : "", text->len, out, e);
}

// Tokenizes the context with `k` shots starting at dev[first], and the four continuations the way
// lm-eval's _encode_pair does.
static int build_prompt(const Tokenizer* t, const char* subject, const MmluFile* dev, int first, int k,
                        const MmluRecord* q, Prompt* p, Err* e) {
    ByteVec text = {0};
    mmlu_prefix(&text, subject, dev ? dev->records : NULL, first, k);
    mmlu_example_text(&text, q);
    size_t ctx_len = text.len;
    int rc = encode_text(t, &text, &p->ctx, e);
    IntVec whole = {0};
    for (int c = 0; c < 4 && !rc; c++) {
        text.len = ctx_len;
        char cont[2] = {' ', (char)('A' + c)};
        bytevec_append(&text, cont, 2);
        rc = encode_text(t, &text, &whole, e);
        if (!rc && whole.len != p->ctx.len + 1)
            rc = err_set(e, "continuation \" %c\" is %zd tokens with this tokenizer; only single-token answers are supported",
                         'A' + c, (ssize_t)whole.len - (ssize_t)p->ctx.len);
        if (!rc) p->cont[c] = whole.data[whole.len - 1];
    }
    free(whole.data);
    free(text.data);
    p->shots_used = k;
    p->cut_tokens = 0;
    return rc;
}

// Keeps the last max_len tokens of the context: lm-eval's (context + continuation)[-(max_len + 1):][:-1]
// for a one-token continuation.
static void cut_from_left(Prompt* p, int max_len) {
    if ((int)p->ctx.len <= max_len) return;
    p->cut_tokens = (int)p->ctx.len - max_len;
    memmove(p->ctx.data, p->ctx.data + p->cut_tokens, sizeof(int) * (size_t)max_len);
    p->ctx.len = (size_t)max_len;
}

typedef struct {
    const Engine* en;  // NULL until the first subject sizes the runner
    EngineRun run;     // cache slot 0: the subject's shared prefix; slots 1..batch: questions
    float* logits;     // (batch, V)
    int* rows;       // (4, max_rows): tokens, seq, pos, rows whose logits are wanted
    int batch, max_rows;
} Runner;

static void runner_init(Runner* r, const Engine* en, int batch, int cache_len) {
    r->en = en;
    r->batch = batch;
    r->max_rows = batch * cache_len;
    engine_run_create(&r->run, en, batch + 1, cache_len, r->max_rows, batch);
    r->logits = xmalloc(sizeof(float) * (size_t)batch * en->m->cfg.vocab);
    r->rows = xmalloc(sizeof(int) * (size_t)r->max_rows * 4);
}

static void runner_free(Runner* r) {
    engine_run_free(&r->run);
    free(r->logits);
    free(r->rows);
}

// One forward call over the prompts whose `shared` equals `shared` among prompts[0..n) (slot b+1
// for prompt b); shared ones start after the prefix, which they read from slot 0.
static int run_group(Runner* r, Prompt* prompts, int n, int shared, int prefix_len, MmluAnswer* answers,
                     int64_t* computed, Err* e) {
    int *tok = r->rows, *seq = tok + r->max_rows, *pos = seq + r->max_rows, *last = pos + r->max_rows;
    int N = 0, n_out = 0, which[64];
    for (int b = 0; b < n; b++) {
        Prompt* p = &prompts[b];
        if (p->shared != shared) continue;
        for (int t = shared ? prefix_len : 0; t < (int)p->ctx.len; t++) {
            tok[N] = p->ctx.data[t];
            seq[N] = b + 1;
            pos[N] = t;
            N++;
        }
        which[n_out] = b;
        last[n_out++] = N - 1;
    }
    if (n_out == 0) return 0;
    *computed += N;
    engine_run_set_prefix(&r->run, 0, shared ? prefix_len : 0);
    int rc = engine_run_forward(&r->run, tok, seq, pos, N, last, n_out, r->logits, e);
    int V = r->en->m->cfg.vocab;
    for (int k = 0; k < n_out && !rc; k++) {
        MmluAnswer* a = &answers[which[k]];
        const Prompt* p = &prompts[which[k]];
        for (int c = 0; c < 4; c++) a->logprob[c] = log_softmax_at(r->logits + (size_t)k * V, V, p->cont[c]);
        a->pred = 0;
        for (int c = 1; c < 4; c++)
            if (a->logprob[c] > a->logprob[a->pred]) a->pred = c;
        a->shots_used = p->shots_used;
        a->cut_tokens = p->cut_tokens;
    }
    return rc;
}

static int read_split(const char* dir, const char* split, const char* subject, MmluFile* f, Err* e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s_%s.csv", dir, split, subject, split);
    return mmlu_csv_read(path, f, e);
}

int mmlu_pick_subjects(const char* data_dir, const MmluOptions* o, int* chosen, int* n, Err* e) {
    *n = 0;
    if (!o->subjects) {
        for (int i = 0; i < MMLU_N_SUBJECTS; i++) chosen[(*n)++] = i;
    } else if (mmlu_subject_list(o->subjects, chosen, n, e)) {
        return err_prefix(e, "--subjects");
    }
    // every file of the split must be an MMLU subject: a stray or misnamed file means the lists disagree
    char dir_path[4200];
    snprintf(dir_path, sizeof dir_path, "%s/%s", data_dir, o->split);
    DIR* d = opendir(dir_path);
    if (!d) return err_set(e, "%s: cannot open the %s split directory", dir_path, o->split);
    char suffix[32];
    snprintf(suffix, sizeof suffix, "_%s.csv", o->split);
    int rc = 0;
    for (struct dirent* ent; (ent = readdir(d)) && !rc;) {
        size_t len = strlen(ent->d_name), sl = strlen(suffix);
        if (len <= 4 || strcmp(ent->d_name + len - 4, ".csv") != 0) continue;
        char subject[256];
        snprintf(subject, sizeof subject, "%.*s", len > sl ? (int)(len - sl) : 0, ent->d_name);
        if (len <= sl || strcmp(ent->d_name + len - sl, suffix) != 0 || mmlu_subject_index(subject) < 0)
            rc = err_set(e, "%s/%s: not an MMLU subject file (expected <one of the 57 subjects>%s)", dir_path, ent->d_name,
                         suffix);
    }
    closedir(d);
    if (rc) return rc;
    for (int k = 0; k < *n; k++) {
        char path[4200];
        const char* subject = mmlu_subject_name(chosen[k]);
        snprintf(path, sizeof path, "%s/%s/%s_%s.csv", data_dir, o->split, subject, o->split);
        if (access(path, R_OK) != 0) return err_set(e, "%s: missing: the %s split has no file for subject '%s'", path, o->split, subject);
        snprintf(path, sizeof path, "%s/dev/%s_dev.csv", data_dir, subject);
        if (o->shots > 0 && access(path, R_OK) != 0)
            return err_set(e, "%s: missing: --shots %d needs the subject's dev file", path, o->shots);
    }
    return 0;
}

// Tokenizes every prompt of the subject and fits it into max_len (mmlu_eval.h: by tokens from the
// left as lm-eval does, or by whole shots first).
static int subject_prompts(const Tokenizer* tok, const char* name, const MmluFile* test, int n_q, const MmluFile* dev,
                           const MmluOptions* o, int max_len, const IntVec* prefix, Prompt* prompts, MmluResult* res,
                           Err* e) {
    for (int i = 0; i < n_q; i++) {
        Prompt* p = &prompts[i];
        const MmluRecord* q = &test->records[i];
        int fewest = o->truncation == MMLU_TRUNCATE_SHOTS ? 0 : o->shots;
        for (int k = o->shots; k >= fewest; k--) {
            if (build_prompt(tok, name, o->shots ? dev : NULL, o->shots - k, k, q, p, e)) return -1;
            if ((int)p->ctx.len <= max_len) break;
        }
        cut_from_left(p, max_len);
        res->n_truncated += p->cut_tokens > 0;
        res->n_fewer_shots += p->shots_used < o->shots;
        p->shared = p->shots_used == o->shots && prefix->len > 0 && p->ctx.len > prefix->len &&
                    memcmp(p->ctx.data, prefix->data, sizeof(int) * prefix->len) == 0;
        res->prompt_tokens += (int64_t)p->ctx.len;
    }
    return 0;
}

static int eval_subject(Runner* run_ptr, const Engine* en, const Tokenizer* tok, const char* data_dir, int subject,
                        const MmluOptions* o, int max_len, MmluResult* res, Progress* prog, Err* e) {
    const char* name = mmlu_subject_name(subject);
    MmluFile test = {0}, dev = {0};
    int rc = read_split(data_dir, o->split, name, &test, e);
    if (!rc && o->shots > 0) {
        rc = read_split(data_dir, "dev", name, &dev, e);
        if (!rc && dev.n < o->shots)
            rc = err_set(e, "%s/dev/%s_dev.csv: %d rows, fewer than --shots %d", data_dir, name, dev.n, o->shots);
    }
    int n_q = rc ? 0 : o->limit > 0 && o->limit < test.n ? o->limit : test.n, n_built = n_q;  // n_q drops to 0 in a dry run
    ByteVec text = {0};
    IntVec prefix = {0};
    Prompt* prompts = xcalloc((size_t)(n_q ? n_q : 1), sizeof(Prompt));
    if (!rc) {
        mmlu_prefix(&text, name, dev.records, 0, o->shots);
        rc = encode_text(tok, &text, &prefix, e);
    }
    if (!rc) rc = subject_prompts(tok, name, &test, n_q, &dev, o, max_len, &prefix, prompts, res, e);
    // the KV cache holds this subject's longest prompt in each slot
    int longest = (int)prefix.len;
    for (int i = 0; i < n_q; i++)
        if ((int)prompts[i].ctx.len > longest) longest = (int)prompts[i].ctx.len;
    int batch = o->batch < n_q ? o->batch : (n_q ? n_q : 1);
    if (!rc && o->dry_run) {  // count what a real run would compute, then stop
        int shared = 0;
        for (int i = 0; i < n_q; i++) {
            res->computed_tokens += (int64_t)prompts[i].ctx.len - (prompts[i].shared ? (int64_t)prefix.len : 0);
            shared += prompts[i].shared;
        }
        res->computed_tokens += shared ? (int64_t)prefix.len : 0;
        res->n += n_q;
        progress_update(prog, (double)res->n);
        n_q = 0;
    }
    // one runner for all subjects, grown when a subject needs longer prompts
    Runner* run = run_ptr;
    if (!rc && n_q > 0 && (!run->en || run->batch < batch || run->run.max_len < longest)) {
        int len = run->en && run->run.max_len > longest ? run->run.max_len : longest;
        int b = run->en && run->batch > batch ? run->batch : batch;
        if (run->en) runner_free(run);
        runner_init(run, en, b, len);
    }
    int prefix_len = 0, any_shared = 0;
    for (int i = 0; i < n_q; i++) any_shared |= prompts[i].shared;
    // prefill the description and shots once, into slot 0, when some question starts with them (when every
    // context was cut, none does: the dry run's count assumes the same)
    if (!rc && n_q > 0 && prefix.len > 0 && any_shared) {
        int* seq = xmalloc(sizeof(int) * prefix.len * 2);
        int* pos = seq + prefix.len;
        for (size_t t = 0; t < prefix.len; t++) seq[t] = 0, pos[t] = (int)t;
        int last = (int)prefix.len - 1;
        engine_run_set_prefix(&run->run, 0, 0);
        rc = engine_run_forward(&run->run, prefix.data, seq, pos, (int)prefix.len, &last, 1, run->logits, e);
        res->computed_tokens += (int64_t)prefix.len;
        prefix_len = (int)prefix.len;
        free(seq);
    }
    for (int q0 = 0; q0 < n_q && !rc; q0 += batch) {
        int n = n_q - q0 < batch ? n_q - q0 : batch;
        MmluAnswer* out = &res->answers[res->n];
        for (int b = 0; b < n; b++) {
            out[b].subject = subject;
            out[b].index = q0 + b;
            out[b].gold = test.records[q0 + b].answer;
        }
        rc = run_group(run, prompts + q0, n, 1, prefix_len, out, &res->computed_tokens, e) ||
             run_group(run, prompts + q0, n, 0, prefix_len, out, &res->computed_tokens, e);
        if (!rc) res->n += n;
        progress_update(prog, (double)res->n);
    }
    for (int i = 0; i < n_built; i++) free(prompts[i].ctx.data);
    free(prompts);
    free(text.data);
    free(prefix.data);
    mmlu_csv_free(&test);
    mmlu_csv_free(&dev);
    return rc;
}

int mmlu_evaluate(const Model* m, const Tokenizer* tok, const char* data_dir, const MmluOptions* opt, MmluResult* r,
                  Err* e) {
    Engine en;
    if (engine_open(&en, m, DEVICE_CPU, e)) return -1;
    int rc = mmlu_evaluate_on(&en, tok, data_dir, opt, r, e);
    engine_close(&en);
    return rc;
}

int mmlu_evaluate_on(const Engine* en, const Tokenizer* tok, const char* data_dir, const MmluOptions* opt,
                     MmluResult* r, Err* e) {
    const Model* m = en->m;
    memset(r, 0, sizeof *r);
    MmluOptions o = *opt;
    if (!o.split) o.split = "test";
    if (o.shots < 0 || o.shots > 5) return err_set(e, "--shots must be in [0, 5]");
    if (o.batch < 1 || o.batch > 64) return err_set(e, "--batch must be in [1, 64]");
    if (o.max_len > m->cfg.max_positions)
        return err_set(e, "--max-len %d is past the model's max_position_embeddings (%d)", o.max_len, m->cfg.max_positions);
    int max_len = r->max_len = o.max_len > 0 ? o.max_len : m->cfg.max_positions;
    r->shots = o.shots, r->truncation = o.truncation;
    int chosen[MMLU_N_SUBJECTS], n_subjects;
    if (mmlu_pick_subjects(data_dir, &o, chosen, &n_subjects, e)) return -1;
    int total = 0;  // for the answer array and the ETA
    for (int s = 0; s < n_subjects; s++) {
        MmluFile f;
        if (read_split(data_dir, o.split, mmlu_subject_name(chosen[s]), &f, e)) return -1;
        total += o.limit > 0 && o.limit < f.n ? o.limit : f.n;
        mmlu_csv_free(&f);
    }
    r->answers = xcalloc((size_t)total, sizeof(MmluAnswer));
    Progress prog;
    progress_begin(&prog, "mmlu", "questions", 1.0, (double)total, 1);
    double t0 = now_seconds();
    int rc = 0;
    Runner run = {0};
    for (int s = 0; s < n_subjects && !rc; s++) rc = eval_subject(&run, en, tok, data_dir, chosen[s], &o, max_len, r, &prog, e);
    if (run.en) runner_free(&run);
    r->seconds = now_seconds() - t0;
    if (!rc) progress_end(&prog);
    if (rc) mmlu_result_free(r);
    return rc;
}

void mmlu_result_free(MmluResult* r) {
    free(r->answers);
    memset(r, 0, sizeof *r);
}

// ---------------------------------------------------------------------------------------------
// results files

void mmlu_summarize(const MmluResult* r, MmluSummary* s) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < r->n; i++) {
        const MmluAnswer* a = &r->answers[i];
        s->n[a->subject]++;
        s->correct[a->subject] += a->pred == a->gold;
    }
    for (int k = 0; k < MMLU_N_SUBJECTS; k++) {
        if (!s->n[k]) continue;
        s->cat_n[mmlu_subject_category(k)] += s->n[k];
        s->cat_correct[mmlu_subject_category(k)] += s->correct[k];
        s->total += s->n[k];
        s->total_correct += s->correct[k];
        s->macro += (double)s->correct[k] / s->n[k];
        s->subjects++;
    }
    s->micro = s->total ? (double)s->total_correct / s->total : 0.0;
    s->macro = s->subjects ? s->macro / s->subjects : 0.0;
}

int mmlu_write_results(const MmluResult* r, const char* out_dir, Err* e) {
    if (make_dirs(out_dir, e)) return -1;
    ByteVec csv = {0};
    char line[512];
    static const char* predictions_header = "subject,index,prediction,gold,correct,logprob_A,logprob_B,logprob_C,logprob_D,shots,cut_tokens\n";
    bytevec_append(&csv, predictions_header, strlen(predictions_header));
    for (int i = 0; i < r->n; i++) {
        const MmluAnswer* a = &r->answers[i];
        int len = snprintf(line, sizeof line, "%s,%d,%c,%c,%d,%.6f,%.6f,%.6f,%.6f,%d,%d\n", mmlu_subject_name(a->subject),
                           a->index, 'A' + a->pred, 'A' + a->gold, a->pred == a->gold, a->logprob[0], a->logprob[1],
                           a->logprob[2], a->logprob[3], a->shots_used, a->cut_tokens);
        bytevec_append(&csv, line, (size_t)len);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/predictions.csv", out_dir);
    int rc = file_write_atomic(path, csv.data, csv.len, e);
    csv.len = 0;
    // every row says how its contexts were built: shots asked for, the context limit, what gave way past it
    static const char* summary_header = "level,name,questions,correct,accuracy,shots,max_len,truncate\n";
    char how[96];
    snprintf(how, sizeof how, ",%d,%d,%s\n", r->shots, r->max_len, mmlu_truncation_name(r->truncation));
    bytevec_append(&csv, summary_header, strlen(summary_header));
    MmluSummary s;
    mmlu_summarize(r, &s);
    for (int k = 0; k < MMLU_N_SUBJECTS; k++) {
        if (!s.n[k]) continue;
        int len = snprintf(line, sizeof line, "subject,%s,%d,%d,%.6f%s", mmlu_subject_name(k), s.n[k], s.correct[k],
                           (double)s.correct[k] / s.n[k], how);
        bytevec_append(&csv, line, (size_t)len);
    }
    for (int c = 0; c < MMLU_N_CATEGORIES; c++) {
        if (!s.cat_n[c]) continue;
        int len = snprintf(line, sizeof line, "category,%s,%d,%d,%.6f%s", mmlu_category_name((MmluCategory)c), s.cat_n[c],
                           s.cat_correct[c], (double)s.cat_correct[c] / s.cat_n[c], how);
        bytevec_append(&csv, line, (size_t)len);
    }
    if (s.total) {
        int len = snprintf(line, sizeof line, "overall,micro,%d,%d,%.6f%soverall,macro,%d,%d,%.6f%s", s.total, s.total_correct,
                           s.micro, how, s.total, s.total_correct, s.macro, how);
        bytevec_append(&csv, line, (size_t)len);
    }
    snprintf(path, sizeof path, "%s/summary.csv", out_dir);
    if (!rc) rc = file_write_atomic(path, csv.data, csv.len, e);
    free(csv.data);
    return rc;
}
