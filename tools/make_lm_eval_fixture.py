#!/usr/bin/env python3
"""Run the real lm-evaluation-harness `mmlu` task offline on a tiny random Qwen3 made by `arbor init`,
with the local MMLU CSVs as data, and record per-question log-likelihoods for tests/test_mmlu_eval.c.

Usage: python tools/make_lm_eval_fixture.py [build/arbor] [DATA_DIR]   (needs tools/requirements.txt)

The task definition is lm-eval's own: each task includes the installed mmlu `_default_template_yaml`
(prompt template, few-shot sampler first_n from dev, choices " A".." D") and the installed subject
yaml's description; only the data source is swapped for JSON lines made from the CSVs with Python's
csv module (same fields as cais/mmlu: question, choices, answer). No downloads.
Writes tests/fixtures/mmlu/lm_eval_reference.json.
"""
import csv, json, os, shutil, subprocess, sys, tempfile

import lm_eval
import torch
import transformers
import yaml
from lm_eval.tasks import TaskManager

ARBOR = sys.argv[1] if len(sys.argv) > 1 else "build/arbor"
DATA = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "mmlu", "lm_eval_reference.json")
SUBJECTS = ["abstract_algebra", "high_school_geography", "moral_scenarios", "professional_law"]
SHOTS, LIMIT = 5, 12
MODEL = {"arch": "tiny", "vocab": 151936, "layers": 2, "seed": 3}


def to_jsonl(csv_path, jsonl_path):
    with open(csv_path, newline="", encoding="utf-8") as f, open(jsonl_path, "w", encoding="utf-8") as out:
        for row in csv.reader(f):
            out.write(json.dumps({"question": row[0], "choices": row[1:5], "answer": "ABCD".index(row[5])}) + "\n")


def main():
    mmlu_dir = os.path.join(os.path.dirname(lm_eval.__file__), "tasks", "mmlu", "default")
    template = os.path.join(mmlu_dir, "_default_template_yaml")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        subprocess.run([ARBOR, "init", "--arch", MODEL["arch"], "--vocab", str(MODEL["vocab"]), "--layers",
                        str(MODEL["layers"]), "--seed", str(MODEL["seed"]), "--dtype", "f32", "--out", model_dir], check=True)
        tok_dir = os.path.join(DATA, "qwen3-tokenizer")
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
            shutil.copy(os.path.join(tok_dir, name), model_dir)
        tasks_dir = os.path.join(tmp, "tasks")
        os.makedirs(tasks_dir)
        tasks = []
        for subject in SUBJECTS:
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
        results = lm_eval.simple_evaluate(
            model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=tasks, num_fewshot=SHOTS,
            limit=LIMIT, log_samples=True, batch_size=1, device="cpu", task_manager=TaskManager(include_path=tasks_dir))
    questions = []
    for subject in SUBJECTS:
        for s in sorted(results["samples"][f"arbor_mmlu_{subject}"], key=lambda s: s["doc_id"]):
            ll = [float(r[0]) for r in s["filtered_resps"]]
            questions.append({"subject": subject, "index": s["doc_id"], "gold": int(s["target"]),
                              "pred": max(range(4), key=lambda i: ll[i]), "loglik": ll})
    ref = {"subjects": SUBJECTS, "shots": SHOTS, "limit": LIMIT, "model": MODEL, "questions": questions,
           "acc": {t: results["results"][t]["acc,none"] for t in results["results"]},
           "versions": {"lm_eval": lm_eval.__version__, "transformers": transformers.__version__, "torch": torch.__version__}}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(ref, f, indent=1)
    print(len(questions), "questions;", ref["acc"])


if __name__ == "__main__":
    main()
