"""GPU check for ``--deepspeed zero2|zero3``: a few training steps of a Qwen3-0.6B-shaped random model under
``NPROC_PER_NODE`` (one GPU by default), then the ZeRO-3 model loaded by plain sentence-transformers.

What it does, per stage (``zero2``, ``zero3``):

1. builds a random Qwen3 checkpoint shaped like Qwen3-Embedding-0.6B (hidden 1024, 28 layers, 16 heads, 8 KV heads,
   MLP 3072; the real tokenizer when ``../shared`` is present) with ``st_qwen3emb.fixtures.build_qwen3_checkpoint``;
2. runs ``NPROC_PER_NODE=N st-qwen3emb sft --deepspeed STAGE --loss_type infonce --bf16 true --max_steps S`` on
   synthetic query/answer pairs, saving a checkpoint at the last step;
3. checks: exit code 0, every logged loss finite, the run's ``final/`` and ``checkpoint-S/`` hold full tensors of
   the base model's shapes (ZeRO-3 without gathering would save empty ones), the weights moved, and — in a fresh
   Python that imports only sentence-transformers — ``SentenceTransformer(final)`` encodes to unit vectors of
   dimension 1024.

``--smoke`` runs the same pipeline on the CPU with a tiny model and no DeepSpeed, to check this script itself.
Writes a JSON summary (``--out``) and exits 0 only when every check passed. Needs CUDA and the ``deepspeed``
package (``pip install 'st-qwen3emb[gpu]'``); nothing is downloaded.

    NPROC=1 bash benchmarks/gpu_check_deepspeed.sh          # or:
    python benchmarks/gpu_check_deepspeed.py --nproc 1 --steps 5 --out gpu_check_deepspeed.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPE = {"hidden_size": 1024, "num_layers": 28, "num_heads": 16, "num_kv_heads": 8, "intermediate_size": 3072}
SUBJECTS = ["the river", "a violin", "the glacier", "our server", "the recipe", "a comet", "the treaty", "his bicycle"]
SMOKE_SHAPE = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 128}
FACTS = ["is older than it looks", "needs regular care", "moves slowly", "was repaired last week", "costs little"]

# Runs in a fresh interpreter so that nothing from st_qwen3emb is imported: what a user of the model gets.
PLAIN_LOAD = """
import json, sys
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device=sys.argv[2])
emb = model.encode(["what moves slowly?", "the glacier moves slowly"], convert_to_tensor=True).float()
print(json.dumps({"dim": int(emb.shape[1]), "norms": emb.norm(dim=1).tolist(), "finite": bool(emb.isfinite().all()),
                  "cosine": float(emb[0] @ emb[1])}))
"""


def write_data(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            subject, fact = SUBJECTS[i % len(SUBJECTS)], FACTS[(i // len(SUBJECTS)) % len(FACTS)]
            fh.write(
                json.dumps({"query": f"what about {subject} ({i})?", "response": f"{subject} {fact} ({i})"}) + "\n"
            )


def tensor_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as fh:
            for key in fh.keys():
                shapes[key.removeprefix("model.")] = tuple(fh.get_slice(key).get_shape())
    return shapes


def max_weight_change(base: Path, trained: Path) -> float:
    from safetensors.torch import load_file

    before = {k.removeprefix("model."): v for f in base.glob("*.safetensors") for k, v in load_file(str(f)).items()}
    after = {k.removeprefix("model."): v for f in trained.glob("*.safetensors") for k, v in load_file(str(f)).items()}
    common = [k for k in after if k in before and before[k].shape == after[k].shape]
    return max(float((after[k].float() - before[k].float()).abs().max()) for k in common) if common else 0.0


def run_stage(stage: str, model: Path, data: Path, work: Path, args: argparse.Namespace) -> dict:
    out_dir = work / stage
    command = [
        sys.executable, "-m", "st_qwen3emb.cli", "sft",
        "--model", str(model), "--dataset", str(data), "--loss_type", "infonce",
        *([] if args.smoke else ["--deepspeed", stage, "--bf16", "true"]), "--max_steps", str(args.steps),
        "--per_device_train_batch_size", str(args.batch), "--max_length", "64", "--learning_rate", "1e-5",
        "--logging_steps", "1", "--save_steps", str(args.steps), "--disable_tqdm", "true",
        "--output_dir", str(out_dir),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env.update(NPROC_PER_NODE=str(args.nproc), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    result: dict = {"stage": stage, "returncode": proc.returncode, "seconds": round(time.perf_counter() - start, 1)}
    (work / f"{stage}.log").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    checks: dict[str, bool] = {"exit code 0": proc.returncode == 0}
    runs = sorted(p for p in out_dir.glob("v*-*") if p.is_dir()) if out_dir.is_dir() else []
    if proc.returncode != 0 or len(runs) != 1:
        checks["one run folder"] = len(runs) == 1
        result.update(checks=checks, stderr_tail=proc.stderr[-4000:])
        return result
    run = runs[0]
    log = [json.loads(line) for line in (run / "logging.jsonl").read_text().splitlines()]
    losses = [line["loss"] for line in log if "loss" in line]
    result.update(losses=losses, memory_gib=max((line.get("memory(GiB)", 0) for line in log), default=None))
    checks["losses logged and finite"] = len(losses) == args.steps and all(math.isfinite(x) for x in losses)

    base_shapes = tensor_shapes(model)
    for name in ("final", f"checkpoint-{args.steps}"):
        folder = run / name
        shapes = tensor_shapes(folder)
        full = bool(shapes) and all(base_shapes.get(k) == s for k, s in shapes.items() if k in base_shapes)
        checks[f"{name}: full tensors of the base shapes"] = full and all(math.prod(s) > 0 for s in shapes.values())
    change = max_weight_change(model, run / "final")
    result["max_weight_change"] = change
    checks["final: weights moved"] = change > 0.0

    if stage == "zero3" or args.load_all or args.smoke:
        plain_check = f"plain SentenceTransformer(final) encodes unit vectors of dim {args.shape['hidden_size']}"
        plain = subprocess.run(
            [sys.executable, "-c", PLAIN_LOAD, str(run / "final"), "cpu" if args.smoke else "cuda"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if plain.returncode == 0:
            loaded = json.loads(plain.stdout.strip().splitlines()[-1])
            result["plain_load"] = loaded
            checks[plain_check] = (
                loaded["finite"]
                and loaded["dim"] == args.shape["hidden_size"]
                and all(abs(n - 1) < 1e-2 for n in loaded["norms"])
            )
        else:
            checks[plain_check] = False
            result["plain_load_error"] = plain.stderr[-3000:]
    result["run_dir"] = str(run)
    result["checks"] = checks
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", nargs="+", default=["zero2", "zero3"], choices=["zero2", "zero3"])
    parser.add_argument("--nproc", type=int, default=1, help="NPROC_PER_NODE (GPUs to use)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16, help="per-device batch size")
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--work", help="work folder (default: a temporary one, removed at the end)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per training run")
    parser.add_argument("--load_all", action="store_true", help="also load the zero2 model with plain ST")
    parser.add_argument("--out", default="gpu_check_deepspeed.json")
    parser.add_argument(
        "--smoke", action="store_true", help="CPU plumbing test: a tiny model, no DeepSpeed (checks this script only)"
    )
    args = parser.parse_args(argv)
    args.shape = SMOKE_SHAPE if args.smoke else SHAPE
    if args.smoke:
        args.stages, args.nproc = ["smoke"], 1

    import torch

    problems = []
    deepspeed = None
    if not args.smoke:
        if not torch.cuda.is_available():
            problems.append("CUDA is not available")
        try:
            import deepspeed
        except ImportError:
            problems.append("the deepspeed package is not installed (pip install 'st-qwen3emb[gpu]')")
    if problems:
        print("gpu_check_deepspeed: cannot run: " + "; ".join(problems), file=sys.stderr)
        return 3

    with tempfile.TemporaryDirectory(prefix="gpu_check_ds_") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        from st_qwen3emb.fixtures import build_qwen3_checkpoint

        model = build_qwen3_checkpoint(work / "qwen3-0.6b-shaped", **args.shape, seed=0)
        data = work / "train.jsonl"
        write_data(data, args.rows)
        summary = {
            "format": "st-qwen3emb-gpu-check/1",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "gpus": torch.cuda.device_count(),
            "torch": torch.__version__,
            "deepspeed": getattr(deepspeed, "__version__", None),
            "shape": args.shape,
            "nproc": args.nproc,
            "steps": args.steps,
            "results": [],
        }
        for stage in args.stages:
            print(f"--- {stage} ---", flush=True)
            result = run_stage(stage, model, data, work, args)
            summary["results"].append(result)
            for check, ok in result["checks"].items():
                print(f"  {'PASS' if ok else 'FAIL'}  {check}", flush=True)
            if "stderr_tail" in result:
                print(result["stderr_tail"], file=sys.stderr)
        summary["passed"] = all(all(r["checks"].values()) for r in summary["results"])
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"{'PASSED' if summary['passed'] else 'FAILED'}; summary in {args.out}")
        return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
