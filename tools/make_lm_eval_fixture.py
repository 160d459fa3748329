#!/usr/bin/env python3
"""Run the real lm-evaluation-harness `mmlu` task offline on a tiny random Qwen3 made by `arbor init`,
with the local MMLU CSVs as data, and record per-question log-likelihoods for tests/test_mmlu_eval.c.

Usage: python tools/make_lm_eval_fixture.py [--truncation-only] [build/arbor] [DATA_DIR]   (needs tools/requirements.txt)

The task definition is lm-eval's own: each task includes the installed mmlu `_default_template_yaml`
(prompt template, few-shot sampler first_n from dev, choices " A".." D") and the installed subject
yaml's description; only the data source is swapped for JSON lines made from the CSVs with Python's
csv module (same fields as cais/mmlu: question, choices, answer). No downloads.
Writes tests/fixtures/mmlu/lm_eval_reference.json.

Then the long-prompt cases (tests/fixtures/mmlu/lm_eval_truncation.json): the same model with a small
max_position_embeddings in its config.json, which lm-eval takes as max_length: around the context
length n of one question (n - 1: cut by one token; n: exactly full, not cut; n + 1) and 48 (every
prompt cut, even zero-shot ones). And the max_length lm-eval resolves for a config without
max_position_embeddings, for each architecture arbor loads (the committed tests/fixtures/hf models).
"""
import csv, json, os, shutil, subprocess, sys, tempfile

import lm_eval
import torch
from lm_eval.models.huggingface import HFLM
from transformers import AutoTokenizer
import transformers
import yaml
from lm_eval.tasks import TaskManager

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]  # --truncation-only: the second file only
ARBOR = ARGS[0] if len(ARGS) > 0 else "build/arbor"
DATA = ARGS[1] if len(ARGS) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "mmlu", "lm_eval_reference.json")
SUBJECTS = ["abstract_algebra", "high_school_geography", "moral_scenarios", "professional_law"]
SHOTS, LIMIT = 5, 12
MODEL = {"arch": "tiny", "vocab": 151936, "layers": 2, "seed": 3}


def to_jsonl(csv_path, jsonl_path):
    with open(csv_path, newline="", encoding="utf-8") as f, open(jsonl_path, "w", encoding="utf-8") as out:
        for row in csv.reader(f):
            out.write(json.dumps({"question": row[0], "choices": row[1:5], "answer": "ABCD".index(row[5])}) + "\n")


TRUNC_SUBJECTS, TRUNC_LIMIT = ["abstract_algebra", "high_school_geography"], 3
OUT_TRUNC = os.path.join(os.path.dirname(OUT), "lm_eval_truncation.json")


def make_tasks(tmp, subjects):
    """lm-eval task yamls over JSON lines made from the CSVs; returns (tasks_dir, task names)."""
    mmlu_dir = os.path.join(os.path.dirname(lm_eval.__file__), "tasks", "mmlu", "default")
    template = os.path.join(mmlu_dir, "_default_template_yaml")
    tasks_dir = os.path.join(tmp, "tasks")
    os.makedirs(tasks_dir, exist_ok=True)
    tasks = []
    for subject in subjects:
        files = {}
        for split in ("test", "dev"):
            files[split] = os.path.join(tmp, f"{subject}_{split}.jsonl")
            to_jsonl(os.path.join(DATA, "mmlu", split, f"{subject}_{split}.csv"), files[split])
        with open(os.path.join(mmlu_dir, f"mmlu_{subject}.yaml")) as f:
            description = yaml.safe_load(f)["description"]
        task = f"arbor_mmlu_{subject}"
        with open(os.path.join(tasks_dir, f"{task}.yaml"), "w") as f:
            yaml.safe_dump({"include": template, "task": task, "dataset_path": "json", "dataset_name": None,
                            "dataset_kwargs": {"data_files": files}, "description": description}, f)
        tasks.append(task)
    return tasks_dir, tasks


def make_model(tmp):
    model_dir = os.path.join(tmp, "model")
    subprocess.run([ARBOR, "init", "--arch", MODEL["arch"], "--vocab", str(MODEL["vocab"]), "--layers",
                    str(MODEL["layers"]), "--seed", str(MODEL["seed"]), "--dtype", "f32", "--out", model_dir], check=True)
    tok_dir = os.path.join(DATA, "qwen3-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        shutil.copy(os.path.join(tok_dir, name), model_dir)
    return model_dir


def set_config(model_dir, **changes):
    path = os.path.join(model_dir, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)


def evaluate(model_dir, tasks, task_manager, limit):
    """lm-eval's own mmlu scoring of the model (float32, CPU, batch 1), with the per-question samples."""
    return lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=tasks,
                                   num_fewshot=SHOTS, limit=limit, log_samples=True, batch_size=1, device="cpu",
                                   task_manager=task_manager)


def questions_of(results, subjects):
    out = []
    for subject in subjects:
        for s in sorted(results["samples"][f"arbor_mmlu_{subject}"], key=lambda s: s["doc_id"]):
            ll = [float(r[0]) for r in s["filtered_resps"]]
            out.append({"subject": subject, "index": s["doc_id"], "gold": int(s["target"]),
                        "pred": max(range(4), key=lambda i: ll[i]), "loglik": ll, "context": s["arguments"]})
    return out


def truncation_cases():
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_model(tmp)
        tasks_dir, tasks = make_tasks(tmp, TRUNC_SUBJECTS)
        tm = TaskManager(include_path=tasks_dir)
        tok = AutoTokenizer.from_pretrained(model_dir)

        def run(max_len):
            set_config(model_dir, max_position_embeddings=max_len)
            qs = questions_of(evaluate(model_dir, tasks, tm, TRUNC_LIMIT), TRUNC_SUBJECTS)
            for q in qs:  # the context's token count, as lm-eval's HFLM encodes it (no special tokens)
                args = q.pop("context")
                ctx = args["gen_args_0"]["arg_0"] if isinstance(args, dict) else args[0][0]
                q["context_tokens"] = len(tok(ctx, add_special_tokens=False)["input_ids"])
            return qs

        base = run(4096)
        pivot = base[0]["context_tokens"]
        runs = [{"max_length": n, "questions": run(n)} for n in (pivot - 1, pivot, pivot + 1, 48)]
        fallback = {}
        for name in ("qwen3_gqa_headdim_tied_bf16", "qwen2_bias_untied_f16", "llama_tied_hubdialect_f32"):
            d = os.path.join(tmp, name)
            shutil.copytree(os.path.join(os.path.dirname(OUT), "..", "hf", name), d)
            set_config(d, max_position_embeddings=None)
            lm = HFLM(pretrained=d, tokenizer=os.path.join(DATA, "qwen3-tokenizer"), dtype="float32", device="cpu")
            fallback[name] = lm.max_length
    ref = {"subjects": TRUNC_SUBJECTS, "shots": SHOTS, "limit": TRUNC_LIMIT, "model": MODEL, "pivot_tokens": pivot,
           "runs": runs, "max_length_without_max_position_embeddings": fallback,
           "versions": {"lm_eval": lm_eval.__version__, "transformers": transformers.__version__, "torch": torch.__version__}}
    with open(OUT_TRUNC, "w") as f:
        json.dump(ref, f, indent=1)
    print("pivot", pivot, "fallback", fallback)


def main():
    if "--truncation-only" not in sys.argv:
        reference_run()
    truncation_cases()


def reference_run():
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_model(tmp)
        tasks_dir, tasks = make_tasks(tmp, SUBJECTS)
        results = evaluate(model_dir, tasks, TaskManager(include_path=tasks_dir), LIMIT)
    questions = questions_of(results, SUBJECTS)
    for q in questions:
        del q["context"]
    ref = {"subjects": SUBJECTS, "shots": SHOTS, "limit": LIMIT, "model": MODEL, "questions": questions,
           "acc": {t: results["results"][t]["acc,none"] for t in results["results"]},
           "versions": {"lm_eval": lm_eval.__version__, "transformers": transformers.__version__, "torch": torch.__version__}}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(ref, f, indent=1)
    print(len(questions), "questions;", ref["acc"])


if __name__ == "__main__":
    main()
