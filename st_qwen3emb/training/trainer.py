"""``SentenceTransformerTrainer`` with the two behaviours it lacks: atomic checkpoints in swift's layout and a
loud stop on a non-finite loss.

transformers writes ``checkpoint-<step>`` in place, so a crash mid-save leaves a half-written folder that
``--resume_from_checkpoint last`` would pick up; here every checkpoint is written to a temporary folder and
renamed, then ``last-checkpoint`` is pointed at it. transformers only filters NaN losses out of the logged
average (``logging_nan_inf_filter``) and keeps training on garbage; here the run stops naming the step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformerTrainer
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, SaveStrategy, rotate_checkpoints

from st_qwen3emb.distributed import gathered_parameters, shared_atomic_dir
from st_qwen3emb.runs import ARGS_FILE, LAST_LINK, point_link


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message names the step."""

    def __init__(self, step: int, epoch: float, value: float):
        self.step = step
        super().__init__(
            f"the training loss is {value} at step {step} (epoch {epoch:.2f}); training stopped. "
            "Common causes: a learning rate that is too high (try --learning_rate lower), float16 overflow "
            "(try --bf16 true or float32), or empty/garbage rows in the data."
        )


class SwiftTrainer(SentenceTransformerTrainer):
    """The trainer used by ``st_qwen3emb.training.train``; see the module docstring."""

    run_dir: Path

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        loss = result[0] if isinstance(result, tuple) else result
        # transformers already syncs on the loss every step (its NaN filter), so this check costs nothing extra.
        if model.training and not bool(torch.isfinite(loss.detach()).all()):
            raise NonFiniteLossError(self.state.global_step + 1, float(self.state.epoch or 0.0), float(loss.detach()))
        return result

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        # transformers 5 calls _save on every process (DeepSpeed: with a gathered state_dict), but the
        # sentence-transformers override writes unconditionally and ignores state_dict: write once, full weights.
        with gathered_parameters(self.model):
            if self.args.should_save:
                super()._save(output_dir)

    def _save_checkpoint(self, model, trial) -> None:
        run_dir = Path(self._get_output_dir(trial=trial))
        target = run_dir / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.hp_search_backend is None and trial is None:
            self.store_flos()
        with shared_atomic_dir(target) as tmp:  # one folder for all processes (DeepSpeed writes from each rank)
            self.save_model(str(tmp), _internal_call=True)
            if self.args.save_strategy in (SaveStrategy.STEPS, SaveStrategy.EPOCH, SaveStrategy.BEST):
                best_step = self.state.best_global_step
                if best_step:
                    best = run_dir / f"{PREFIX_CHECKPOINT_DIR}-{best_step}"
                    if best == target or best.exists():
                        self.state.best_model_checkpoint = str(best)
            if not self.args.save_only_model:
                self._save_optimizer_and_scheduler(str(tmp))
                self._save_scaler(str(tmp))
                self._save_rng_state(str(tmp))
            if self.args.should_save:
                for cb in [c for c in self.callback_handler.callbacks + [self.control] if isinstance(c, ExportableState)]:
                    name = cb.__class__.__name__
                    if isinstance(self.state.stateful_callbacks.get(name), list):
                        self.state.stateful_callbacks[name].append(cb.state())
                    else:
                        self.state.stateful_callbacks[name] = cb.state()
                self.state.save_to_json(str(tmp / TRAINER_STATE_NAME))
                if (run_dir / ARGS_FILE).is_file():
                    shutil.copy2(run_dir / ARGS_FILE, tmp / ARGS_FILE)
            self.accelerator.wait_for_everyone()
        if self.args.should_save:
            point_link(run_dir, LAST_LINK, target)
            rotate_checkpoints(
                output_dir=str(run_dir),
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=False,
            )
