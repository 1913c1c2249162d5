"""Trainer callbacks: swift-style log lines and ``logging.jsonl``, a progress bar with the live loss, the
``training_curves.png`` picture, SIGINT/SIGTERM turning into "save a checkpoint and stop", and publishing each
checkpoint the trainer saved (completion marker, rename into place, ``last-checkpoint``, atomic rotation).

Each callback does its work only on log/eval/save events or on a signal (a flag check per step), so the
per-step overhead is negligible.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from st_qwen3emb.runs import ARGS_FILE, CURVES_FILE, LAST_LINK, LOG_FILE
from st_qwen3emb.training.curves import draw_in_child_process

# swift's train-line keys, in swift's order
TRAIN_LOG_KEYS = (
    "loss",
    "grad_norm",
    "learning_rate",
    "memory(GiB)",
    "train_speed(iter/s)",
    "epoch",
    "global_step/max_steps",
    "percentage",
    "elapsed_time",
    "remaining_time",
)


def format_duration(seconds: float) -> str:
    """swift's ``1h 2m 3s`` style."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m}m {s}s"
    return f"{m}m {s}s" if m else f"{s}s"


def memory_gib() -> float:
    """Peak accelerator memory reserved, or the process's peak resident memory on CPU."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return round(torch.cuda.max_memory_reserved() / 2**30, 2)
    try:
        import resource

        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return round(peak_kib / 2**20, 2)
    except ImportError:
        return 0.0


def _round(value: Any) -> Any:
    return round(value, 8) if isinstance(value, float) and math.isfinite(value) else value


class SwiftLogCallback(TrainerCallback):
    """Rewrites the trainer's log dicts into swift's keys, prints them and appends them to ``logging.jsonl``.

    Train lines: ``loss, grad_norm, learning_rate, memory(GiB), train_speed(iter/s), epoch, global_step/max_steps,
    percentage, elapsed_time, remaining_time``; eval lines: the ``eval_*`` metrics plus the progress keys.
    """

    def __init__(self, run_dir: Path, *, show: bool = True):
        self.path = Path(run_dir) / LOG_FILE
        self.show = show
        self.start_time: float | None = None
        self.start_step = 0
        self.records: list[dict[str, Any]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_time = time.perf_counter()
        self.start_step = state.global_step  # a resumed run measures its speed from where it restarted

    def swift_record(self, logs: dict[str, Any], state) -> dict[str, Any]:
        elapsed = time.perf_counter() - (self.start_time or time.perf_counter())
        done = state.global_step - self.start_step
        speed = done / elapsed if elapsed > 0 else 0.0
        remaining = (state.max_steps - state.global_step) / speed if speed > 0 else 0.0
        progress = {
            "global_step/max_steps": f"{state.global_step}/{state.max_steps}",
            "percentage": f"{100.0 * state.global_step / max(state.max_steps, 1):.2f}%",
            "elapsed_time": format_duration(elapsed),
            "remaining_time": format_duration(remaining),
        }
        if "loss" in logs:
            record = {
                "loss": _round(logs["loss"]),
                "grad_norm": _round(logs.get("grad_norm")),
                "learning_rate": _round(logs.get("learning_rate")),
                "memory(GiB)": memory_gib(),
                "train_speed(iter/s)": round(speed, 6),
                "epoch": round(state.epoch or 0.0, 4),
                **progress,
            }
            extra = {k: _round(v) for k, v in logs.items() if k not in record and k not in ("epoch",)}
            return {**record, **extra}  # loss components of dict-returning losses come after swift's keys
        record = {k: _round(v) for k, v in logs.items() if k != "epoch"}
        record["epoch"] = round(state.epoch or 0.0, 4)
        return {**record, **progress}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = self.swift_record(logs, state)
        self.records.append(record)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.show:
            _write_line(str(record))


def _write_line(text: str) -> None:
    try:
        from tqdm.auto import tqdm

        tqdm.write(text, file=sys.stdout)
    except ImportError:
        print(text, flush=True)


class LossProgressCallback(ProgressCallback):
    """transformers' progress bar, with the latest loss (and eval metric) in the bar instead of raw log dicts."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            postfix = {k: f"{v:.4f}" for k, v in logs.items() if k in ("loss", "eval_loss") and isinstance(v, float)}
            if postfix:
                self.training_bar.set_postfix(postfix, refresh=False)


class SignalCallback(TrainerCallback):
    """SIGINT/SIGTERM: finish the current optimizer step, save a checkpoint, stop. A second signal aborts at once."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt  # second Ctrl-C: the user really wants out
        self.received = signum
        _write_line(
            f"\n{signal.Signals(signum).name} received: saving a checkpoint after this step, then stopping "
            "(send it again to abort without saving)."
        )

    def on_train_begin(self, args, state, control, **kwargs):
        import threading

        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handler)

    def on_step_end(self, args, state, control, **kwargs):
        if self.received is not None:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class CurvesCallback(TrainerCallback):
    """Draws ``training_curves.png`` at the end of training (also after a signal or an early stop)."""

    def __init__(self, run_dir: Path, log_callback: SwiftLogCallback):
        self.path = Path(run_dir) / CURVES_FILE
        self.log_callback = log_callback

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            draw_in_child_process(self.log_callback.records, self.path)


class CheckpointPublisher(TrainerCallback):
    """Publishes each checkpoint the trainer finished in ``staging`` (``trainer.StagedCheckpoints``).

    On save: the trainer state is re-written with the published path of the best checkpoint (transformers
    recorded the staging path), ``args.json`` is copied in, the completion marker is written last, and the folder
    is renamed to ``run_dir/checkpoint-<step>`` and ``last-checkpoint`` pointed at it; then old checkpoints beyond
    ``save_total_limit`` are renamed to hidden trash before being deleted, so a kill never leaves a visible
    half-deleted one. Which ones go is transformers' rule (``trainer_utils.sort_checkpoints``: the newest and the
    best stay).
    """

    def __init__(self, run_dir: Path, staging: Path, *, save_total_limit: int | None):
        self.run_dir, self.staging, self.save_total_limit = Path(run_dir), Path(staging), save_total_limit

    def on_save(self, args, state, control, **kwargs):
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        from st_qwen3emb import distributed
        from st_qwen3emb.checkpoint_marker import TRAINER_STATE, write_marker
        from st_qwen3emb.runs import point_link, replace_dir

        name = f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        staged, target = self.staging / name, self.run_dir / name
        if state.best_global_step:
            best = self.run_dir / f"{PREFIX_CHECKPOINT_DIR}-{state.best_global_step}"
            if best == target or best.is_dir():
                state.best_model_checkpoint = str(best)
        distributed.barrier()  # every process has written its part (DeepSpeed: one shard per rank)
        if args.should_save and staged.is_dir():
            state.save_to_json(str(staged / TRAINER_STATE))
            if (self.run_dir / ARGS_FILE).is_file():
                shutil.copy2(self.run_dir / ARGS_FILE, staged / ARGS_FILE)
            write_marker(staged, state.global_step)
            replace_dir(staged, target)
            point_link(self.run_dir, LAST_LINK, target)
            self.rotate(state.best_model_checkpoint)
        distributed.barrier()  # the checkpoint is in place before any process goes on

    def rotate(self, best: str | None) -> None:
        from transformers.trainer_utils import sort_checkpoints

        from st_qwen3emb.scratch import discard_dir

        limit = self.save_total_limit
        checkpoints = sort_checkpoints(str(self.run_dir), best_model_checkpoint=best) if limit and limit > 0 else []
        if not checkpoints:
            return
        protected = {checkpoints[-1]} | ({str(Path(best))} if best else set())
        remaining, keep = len(checkpoints), max(limit, len(protected))
        for checkpoint in checkpoints:
            if remaining <= keep:
                break
            if checkpoint not in protected:
                discard_dir(checkpoint)
                remaining -= 1

    def on_train_end(self, args, state, control, **kwargs):
        from st_qwen3emb.runs import point_link

        # transformers' rule for save_total_limit=1 with a best checkpoint: at the end only the best is kept
        best = state.best_model_checkpoint
        if args.should_save and self.save_total_limit == 1 and best and Path(best).is_dir():
            from st_qwen3emb.scratch import discard_dir

            for checkpoint in self.run_dir.glob("checkpoint-*"):
                if checkpoint.is_dir() and str(checkpoint) != str(Path(best)):
                    discard_dir(checkpoint)
            point_link(self.run_dir, LAST_LINK, Path(best))
