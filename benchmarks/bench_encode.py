"""Encoding throughput of an exported model: our loading path vs plain sentence-transformers, on the same texts.

The model is an exported sentence-transformers folder (``--model``, e.g. ``st-qwen3emb export`` output); without
one, the training benchmark's model is built (random Qwen3 from the skeleton, hidden 256, 4 layers, 4 heads, 2 KV
heads, seed 0) and saved with ``st_qwen3emb.load_model(...).save(...)``, which is the layout an export writes.
Texts: both sentence columns of STS-B test (``../shared/data/stsb/test.tsv``, 2,758 texts), else the packaged STS
sample. Implementations, all loaded once in this process and run in alternating order, each after one warm-up:

- ``plain``: ``SentenceTransformer(folder).encode(texts)`` — what a user without this package does;
- ``ours``: ``st_qwen3emb.load_model(folder).encode(texts)`` — what a user of this package does;
- ``onnx``, ``onnx-int8`` (only with ``--onnx`` and ``onnxruntime`` + ``onnx`` importable): the transformer
  exported with ``torch.onnx.export`` and run by onnxruntime (int8: ``quantize_dynamic`` on the MatMul weights),
  with the model's own tokenisation, last-token pooling and normalisation. Measurement only: the package does not
  ship an ONNX path (sentence-transformers' ``backend="onnx"`` needs ``optimum``, whose current release pins
  transformers < 5).

Every implementation's embeddings are compared with ``plain``'s (max absolute difference, min cosine) so a fast
path that changes the result is visible. Reports medians of texts/s per batch size and the ratio to ``plain``.

    python benchmarks/bench_encode.py --repeats 5 --batch-sizes 32 64          # the measurement (quiet machine)
    python benchmarks/bench_encode.py --max-texts 64 --repeats 1 --hidden 64 --layers 2   # a quick check
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_STSB_TEST = REPO.parent / "shared" / "data" / "stsb" / "test.tsv"


def read_texts(path: Path | None, limit: int | None) -> tuple[list[str], str]:
    """Both sentence columns of an STS-B-layout TSV (``sentence1``, ``sentence2``), in file order."""
    if path is None:
        from st_qwen3emb.data import default_sts_sample_path

        path = DEFAULT_STSB_TEST if DEFAULT_STSB_TEST.is_file() else default_sts_sample_path()
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    texts = [row[col] for row in rows for col in ("sentence1", "sentence2")]
    return (texts[:limit] if limit else texts), str(path)


def build_model(workdir: Path, hidden: int, layers: int) -> Path:
    """The training benchmark's model, saved as a sentence-transformers folder (the exported layout)."""
    from st_qwen3emb import load_model
    from st_qwen3emb.fixtures import build_qwen3_checkpoint

    st_folder = workdir / f"model_st_h{hidden}_l{layers}"
    if not (st_folder / "modules.json").is_file():
        bare = build_qwen3_checkpoint(workdir / f"model_bare_h{hidden}_l{layers}", hidden_size=hidden,
                                      num_layers=layers, num_heads=4, num_kv_heads=2, seed=0)
        load_model(str(bare)).save(str(st_folder))
    return st_folder


def onnx_encoders(model, workdir: Path) -> dict[str, Callable[[list[str], int], object]]:
    """ONNX Runtime encoders (fp32 and int8 dynamic) for a loaded Qwen3 SentenceTransformer; {} when unavailable."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        print(f"ONNX skipped: {err}", file=sys.stderr)
        return {}
    import numpy as np
    import torch

    transformer = model[0]
    hf_model = transformer.model

    class LastHidden(torch.nn.Module):
        # The graph returns only the last hidden state: pooling and normalisation stay in numpy below.
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    fp32_path = workdir / "model.onnx"
    sample = model.preprocess(["a short example", "a somewhat longer example sentence to pad"])
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            LastHidden(hf_model).eval(), (sample["input_ids"], sample["attention_mask"]), str(fp32_path),
            input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "last_hidden_state": {0: "batch", 1: "seq"}},
            opset_version=18, dynamo=False,
        )
    int8_path = workdir / "model_int8.onnx"
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)

    def make(path: Path) -> Callable[[list[str], int], object]:
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def encode(texts: list[str], batch_size: int):
            # Same order as sentence-transformers: longest first, so batches hold similar lengths.
            order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
            out = [None] * len(texts)
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                features = model.preprocess([texts[i] for i in idx])
                hidden = session.run(None, {"input_ids": features["input_ids"].numpy(),
                                            "attention_mask": features["attention_mask"].numpy()})[0]
                pooled = hidden[:, -1]  # left padding: the last position is every row's EOS token
                pooled = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
                for i, vec in zip(idx, pooled, strict=True):
                    out[i] = vec
            return np.stack(out)

        return encode

    if model.tokenizer.padding_side != "left":
        raise RuntimeError("the ONNX encoder pools the last position, which needs left padding (the Qwen3 protocol)")
    return {"onnx": make(fp32_path), "onnx-int8": make(int8_path)}


def compare(reference, other) -> dict[str, float]:
    import numpy as np

    ref, got = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    cosines = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    return {"max_abs_diff": float(np.abs(ref - got).max()), "min_cosine": float(cosines.min())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="an exported sentence-transformers folder (default: build one)")
    parser.add_argument("--texts", type=Path, help="STS-B-layout TSV (default: ../shared STS-B test, else the sample)")
    parser.add_argument("--max-texts", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--threads", type=int, default=None, help="torch (and onnxruntime) threads")
    parser.add_argument("--onnx", action="store_true", help="also measure onnxruntime fp32 and int8 (if installed)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "bench_encode.json")
    args = parser.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    from st_qwen3emb import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_encode_"))
    workdir.mkdir(parents=True, exist_ok=True)
    folder = args.model or build_model(workdir, args.hidden, args.layers)
    texts, source = read_texts(args.texts, args.max_texts)

    plain = SentenceTransformer(str(folder), device="cpu")
    ours = load_model(str(folder), device="cpu")
    encoders: dict[str, Callable[[list[str], int], object]] = {
        "plain": lambda t, b: plain.encode(t, batch_size=b),
        "ours": lambda t, b: ours.encode(t, batch_size=b),
    }
    if args.onnx:
        encoders.update(onnx_encoders(ours, workdir))
    names = list(encoders)

    reference = encoders["plain"](texts, args.batch_sizes[0])
    agreement = {name: compare(reference, encoders[name](texts, args.batch_sizes[0])) for name in names[1:]}

    results: dict[str, dict] = {}
    for batch_size in args.batch_sizes:
        times: dict[str, list[float]] = {name: [] for name in names}
        for name in names:
            encoders[name](texts[: 2 * batch_size], batch_size)  # warm-up: allocator, thread pools
        for repeat in range(args.repeats):
            for name in names if repeat % 2 == 0 else list(reversed(names)):  # alternate to spread drift
                start = time.perf_counter()
                encoders[name](texts, batch_size)
                times[name].append(time.perf_counter() - start)
        medians = {name: len(texts) / statistics.median(ts) for name, ts in times.items()}
        results[str(batch_size)] = {
            name: {"texts_per_s": medians[name], "ratio_to_plain": medians[name] / medians["plain"],
                   "seconds": times[name]} for name in names
        }

    report = {"model": str(folder), "texts": source, "num_texts": len(texts), "repeats": args.repeats,
              "threads": torch.get_num_threads(), "torch": torch.__version__, "agreement_with_plain": agreement,
              "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))

    print(f"\n{len(texts)} texts from {source}; {args.repeats} runs per cell, medians; {torch.get_num_threads()} threads")
    print(f"| batch | {' | '.join(f'{n} texts/s' for n in names)} | {' | '.join(f'{n}/plain' for n in names[1:])} |")
    print("| --- " * (1 + 2 * len(names) - 1) + "|")
    for batch_size, row in results.items():
        speeds = " | ".join(f"{row[n]['texts_per_s']:.1f}" for n in names)
        ratios = " | ".join(f"{row[n]['ratio_to_plain']:.2f}" for n in names[1:])
        print(f"| {batch_size} | {speeds} | {ratios} |")
    for name, diff in agreement.items():
        print(f"{name} vs plain: max |diff| {diff['max_abs_diff']:.2e}, min cosine {diff['min_cosine']:.6f}")
    print(f"JSON: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
