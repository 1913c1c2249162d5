"""Run a training entry point in this process and record when training really happened.

Standalone on purpose (standard library + transformers only): the same probe wraps our CLI, a plain
sentence-transformers script and ms-swift's sft module, each in its own Python, so all three are timed
the same way. It patches transformers' ``CallbackHandler`` — the one place every HF-Trainer-based trainer
reports train begin, optimizer steps and train end — and writes a JSON report at exit:

    python benchmarks/_probe.py REPORT.json -m package.module ARGS...    (or a script path instead of -m)

Fields: ``start_to_first_step_s`` (process start to the end of the first optimizer step), ``train_s``
(train begin to train end), ``steps``, ``wall_s`` (process start to exit), ``peak_rss_mib``.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import runpy
import sys
import time


def _process_start_time() -> float:
    # /proc gives the start in clock ticks since boot: the interpreter's own start-up counts too.
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return time.time() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def main() -> None:
    report_path = sys.argv[1]
    t_start = _process_start_time()
    marks: dict[str, float | int] = {"steps": 0}

    from transformers import trainer_callback

    handler = trainer_callback.CallbackHandler
    orig_begin, orig_step, orig_end = handler.on_train_begin, handler.on_step_end, handler.on_train_end

    def on_train_begin(self, args, state, control):
        marks["train_begin"] = time.time()
        return orig_begin(self, args, state, control)

    def on_step_end(self, args, state, control):
        marks["steps"] = int(marks["steps"]) + 1
        marks.setdefault("first_step", time.time())
        return orig_step(self, args, state, control)

    def on_train_end(self, args, state, control):
        marks["train_end"] = time.time()
        return orig_end(self, args, state, control)

    handler.on_train_begin, handler.on_step_end, handler.on_train_end = on_train_begin, on_step_end, on_train_end

    def write_report() -> None:
        now = time.time()
        report = {
            "start_to_first_step_s": marks["first_step"] - t_start if "first_step" in marks else None,
            "train_s": marks["train_end"] - marks["train_begin"] if "train_end" in marks else None,
            "steps": marks["steps"],
            "wall_s": now - t_start,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        with open(report_path, "w") as f:
            json.dump(report, f)

    atexit.register(write_report)
    if sys.argv[2] == "-m":
        sys.argv = [sys.argv[3], *sys.argv[4:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[2:]
        runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
