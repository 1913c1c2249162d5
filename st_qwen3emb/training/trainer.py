"""``SentenceTransformerTrainer`` with the behaviours it lacks: atomic checkpoints in swift's layout, a loud stop
on a non-finite loss, and LoRA checkpoints that resume (``AdapterCheckpoints``).

transformers writes ``checkpoint-<step>`` in place, so a crash mid-save leaves a half-written folder that
``--resume_from_checkpoint last`` would pick up. Here the trainer saves its checkpoints as it always does, but into
a hidden scratch folder of the run (``StagedCheckpoints``); ``callbacks.CheckpointPublisher`` then marks each
finished one complete and renames it into place (``train_staged``). transformers only filters NaN losses out of
the logged average (``logging_nan_inf_filter``) and keeps training on garbage; here the run stops naming the step.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformerTrainer

from st_qwen3emb import distributed
from st_qwen3emb.distributed import gathered_parameters
from st_qwen3emb.redaction import redacted_training_args
from st_qwen3emb.scratch import scratch_path
from st_qwen3emb.training.saving import DiskFullError, checkpoint_failure, is_disk_full


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message names the step."""

    def __init__(self, step: int, epoch: float, value: float):
        self.step = step
        super().__init__(
            f"the training loss is {value} at step {step} (epoch {epoch:.2f}); training stopped. "
            "Common causes: a learning rate that is too high (try --learning_rate lower), float16 overflow "
            "(try --bf16 true or float32), or empty/garbage rows in the data."
        )


@contextlib.contextmanager
def args_without_secrets(trainer) -> Iterator[None]:
    """While it is open, ``trainer.args`` is a copy without secrets: transformers and sentence-transformers pickle
    ``self.args`` into ``training_args.bin`` on every save, ``--hub_token`` included."""
    args, trainer.args = trainer.args, redacted_training_args(trainer.args)
    try:
        yield
    finally:
        trainer.args = args


class StagedCheckpoints:
    """Trainer mixin: checkpoints are written into ``checkpoint_staging`` (set by ``train_staged``).

    ``Trainer._get_output_dir`` is the one place transformers asks where ``checkpoint-<step>`` goes (its
    ``_save_checkpoint`` and the end-of-training cleanup); redirecting it keeps the rest of its saving untouched.
    """

    checkpoint_staging: Path | None = None

    def _get_output_dir(self, trial) -> str:
        if self.checkpoint_staging is not None and trial is None:
            return str(self.checkpoint_staging)
        return super()._get_output_dir(trial)


def train_staged(trainer, run_dir: Path, resume: Path | None) -> None:
    """``trainer.train`` with atomic checkpoints (see the module docstring) and a full disk reported as
    ``DiskFullError``, after keeping the trained weights where they fit (``saving.checkpoint_failure``)."""
    from st_qwen3emb.training.callbacks import CheckpointPublisher

    staging = Path(distributed.share_from_main(lambda: str(scratch_path(run_dir / "checkpoints"))))
    trainer.checkpoint_staging = staging
    trainer.add_callback(CheckpointPublisher(run_dir, staging, save_total_limit=trainer.args.save_total_limit))
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except Exception as err:
        if isinstance(err, DiskFullError) or not is_disk_full(err):
            raise
        failure = checkpoint_failure(err, trainer, run_dir, staging)
        if failure is not None:
            raise failure from err
        # the last step's checkpoint failed, training itself had finished: end it as transformers would have
        trainer.callback_handler.on_train_end(trainer.args, trainer.state, trainer.control)
    finally:
        if trainer.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)


class AdapterCheckpoints:
    """Trainer mixin: resuming from (or loading the best) LoRA checkpoint loads its adapter into the live one.

    sentence-transformers' ``_load_from_checkpoint`` (``sentence_transformers/base/trainer.py``) loads the
    checkpoint as a whole model and copies its state dict over; a LoRA checkpoint loads with the adapter injected
    into the layers, while the model in training wraps them in a ``PeftModel``, so no key matches.
    """

    def _load_from_checkpoint(self, checkpoint_path: str, *args, **kwargs) -> None:
        from st_qwen3emb.lora import has_lora, is_adapter_checkpoint, load_training_adapter

        model = getattr(self.model, "_orig_mod", self.model)
        if is_adapter_checkpoint(checkpoint_path) and has_lora(model):
            load_training_adapter(model, checkpoint_path)
        else:
            super()._load_from_checkpoint(checkpoint_path, *args, **kwargs)


class SwiftTrainer(AdapterCheckpoints, StagedCheckpoints, SentenceTransformerTrainer):
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
                with args_without_secrets(self):
                    super()._save(output_dir)
