"""Several processes for one run: swift's ``NPROC_PER_NODE`` relaunch, the backend per device, rank-0-only
writing, and the named DeepSpeed configs.

- ``NPROC_PER_NODE=N st-qwen3emb sft ...`` (with ``NNODES``, ``NODE_RANK``, ``MASTER_ADDR``, ``MASTER_PORT`` for
  several machines) runs the same command again under ``torch.distributed.run``, as ``swift sft`` does, after the
  launcher has checked the input once (so a bad flag, data file or model path is the same one-line error, exit 2,
  as without it); one process on one machine (``NPROC_PER_NODE=1``) is not relaunched;
  ``torchrun -m st_qwen3emb.cli sft ...`` and ``accelerate launch -m st_qwen3emb.cli sft ...`` work directly, since
  each worker only reads the usual ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` variables.
- transformers makes a CPU run distributed only with ``use_cpu=True`` (otherwise every process silently trains
  alone), so ``training_args_overrides`` supplies it together with the gloo backend; GPU runs get nccl.
- The run folder is created by global rank 0 and its name shared (each process would otherwise make its own
  ``v<N>-<time>`` folder); checkpoint folders are written atomically once for all processes.
- ``--deepspeed zero2|zero3`` resolves to the JSON files shipped in ``st_qwen3emb/deepspeed_configs`` (``auto``
  values filled in by the Hugging Face Trainer integration); under ZeRO-3 the full weights are gathered to save.

torch is imported inside the functions, so ``maybe_relaunch`` costs nothing when no variable is set.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from st_qwen3emb.booleans import parse_bool
from st_qwen3emb.config import DEEPSPEED_NAMES, ConfigError

T = TypeVar("T")

# Set by torchrun, accelerate launch, deepspeed and mpirun-style launchers inside each worker.
_WORKER_VARIABLES = ("LOCAL_RANK", "RANK", "WORLD_SIZE")
_DEFAULT_MASTER_PORT = 29500  # torchrun's own default, used when several machines must agree on one
_ZERO_STAGE = {"zero2": 2, "zero3": 3}


# --- relaunch ----------------------------------------------------------------------------------------------------
def in_launched_process(environ: dict[str, str] | None = None) -> bool:
    """True inside a worker started by torchrun / accelerate launch / deepspeed (never relaunch there)."""
    env = os.environ if environ is None else environ
    return any(name in env for name in _WORKER_VARIABLES)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _positive_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} must be a positive integer") from None
    if value <= 0:
        raise ConfigError(f"{name}={text!r} must be a positive integer")
    return value


def launcher_args(environ: dict[str, str] | None = None) -> list[str] | None:
    """The ``torch.distributed.run`` options asked for by swift's variables, or None when none is set or they ask
    for a single process.

    ``NPROC_PER_NODE`` defaults to 1 when only ``NNODES`` is given; it may also be torchrun's ``gpu``/``auto``.
    A single machine without ``MASTER_PORT`` gets a free port, so two runs on one machine do not collide; several
    machines need ``MASTER_ADDR`` (the address of node 0) and share ``MASTER_PORT`` (default 29500).
    """
    env = os.environ if environ is None else environ
    if not any(env.get(name) for name in ("NPROC_PER_NODE", "NNODES")):
        return None
    nproc_text = env.get("NPROC_PER_NODE") or "1"
    nproc = nproc_text if nproc_text in ("gpu", "auto", "cpu") else str(_positive_int("NPROC_PER_NODE", nproc_text))
    nnodes = _positive_int("NNODES", env.get("NNODES") or "1")
    if nproc == "1" and nnodes == 1:
        return None  # one process on one machine: the tutorial's NPROC_PER_NODE=1 trains right here
    node_rank = int(env.get("NODE_RANK") or 0)
    if not 0 <= node_rank < nnodes:
        raise ConfigError(f"NODE_RANK={node_rank} must be in [0, NNODES={nnodes})")
    addr = env.get("MASTER_ADDR")
    if nnodes > 1 and not addr:
        raise ConfigError(f"NNODES={nnodes} needs MASTER_ADDR (the address of the NODE_RANK=0 machine) on every node")
    port_text = env.get("MASTER_PORT")
    if port_text:
        port = _positive_int("MASTER_PORT", port_text)
    else:
        port = _DEFAULT_MASTER_PORT if nnodes > 1 else _free_port()
    return [
        f"--nproc_per_node={nproc}",
        f"--nnodes={nnodes}",
        f"--node_rank={node_rank}",
        f"--master_addr={addr or '127.0.0.1'}",
        f"--master_port={port}",
    ]


def relaunch_command(argv: Sequence[str], environ: dict[str, str] | None = None) -> list[str] | None:
    """``python -m torch.distributed.run OPTIONS -m st_qwen3emb.cli sft ARGV``, or None when not asked for."""
    options = launcher_args(environ)
    if options is None:
        return None
    return [sys.executable, "-m", "torch.distributed.run", *options, "-m", "st_qwen3emb.cli", "sft", *argv]


def maybe_relaunch(argv: Sequence[str], check: Callable[[], None] | None = None) -> int | None:
    """Run ``st-qwen3emb sft ARGV`` under ``torch.distributed.run`` when swift's variables ask for it.

    Returns the launcher's exit code, or None when this process should train itself (no variable set, one process
    on one machine, or already a launched worker). ``check`` runs first, only when relaunching: it validates the
    input here, once, and whatever it raises propagates before any worker starts. A subprocess rather than
    ``torch.distributed.run.main`` in-process: the parent never trains, and a signal to it reaches the workers
    through the launcher, which stops them cleanly.
    """
    if in_launched_process() or any(a in ("-h", "--help") for a in argv):
        return None
    try:
        command = relaunch_command(list(argv))
    except ConfigError as err:
        print(f"st-qwen3emb sft: error: {err}", file=sys.stderr)
        return 2
    if command is None:
        return None
    if check is not None:
        check()
    print(f"st-qwen3emb sft: running under {' '.join(command[2 : -len(argv) - 3])}", file=sys.stderr, flush=True)
    process = subprocess.Popen(command)
    forwarded = {
        sig: signal.signal(sig, lambda signum, frame: process.send_signal(signum)) for sig in (signal.SIGTERM,)
    }
    try:
        while True:
            try:
                code = process.wait()
                break
            except KeyboardInterrupt:  # Ctrl-C reached the launcher too (same process group); wait for its exit
                continue
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


# --- inside the workers ------------------------------------------------------------------------------------------
def world_size() -> int:
    """Processes in this run, from the launcher's variables (valid before torch.distributed is initialised)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _flag_set(name: str) -> bool:
    """A boolean variable as accelerate reads it (strtobool words); unset, empty or unreadable counts as false."""
    try:
        return parse_bool(os.environ.get(name) or "false")
    except ValueError:
        return False


def uses_cuda() -> bool:
    import torch

    return torch.cuda.is_available() and not _flag_set("ACCELERATE_USE_CPU")


def training_args_overrides(given: Sequence[str] = ()) -> dict[str, Any]:
    """TrainingArguments needed to make a multi-process run distributed: gloo + ``use_cpu`` on CPU, nccl on GPU.

    ``given`` names the training arguments the user set; those are left alone. Empty for a single process.
    """
    if world_size() <= 1:
        return {}
    wanted: dict[str, Any] = {"ddp_backend": "nccl"} if uses_cuda() else {"ddp_backend": "gloo", "use_cpu": True}
    return {key: value for key, value in wanted.items() if key not in given}


def _process_group() -> Any:
    """The default process group, initialised the way accelerate would (it reuses an existing one)."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if uses_cuda():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group(backend="nccl")
        else:
            dist.init_process_group(backend="gloo")
    return dist


def barrier() -> None:
    if world_size() > 1:
        _process_group().barrier()


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's ``value`` on every process (a picklable object)."""
    if world_size() <= 1:
        return value
    dist = _process_group()
    box = [value if is_main_process() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def share_from_main(make: Callable[[], T]) -> T:
    """Call ``make()`` on global rank 0 only and return its result on every process.

    An error on rank 0 is raised on every process (instead of the others waiting forever).
    """
    if world_size() <= 1:
        return make()
    outcome: tuple[bool, Any] = (True, None)
    if is_main_process():
        try:
            outcome = (True, make())
        except Exception as err:  # re-raised below, after the others have been told
            outcome = (False, err)
    ok, value = broadcast_from_main(outcome)
    if not ok:
        if is_main_process():
            raise value
        raise RuntimeError(f"rank 0 failed: {value}")
    return value


@contextlib.contextmanager
def shared_atomic_dir(target: Path) -> Iterator[Path]:
    """``runs.atomic_dir`` for all processes of a run: rank 0 makes and finally renames the temporary folder,
    every process may write into it (DeepSpeed writes one shard per rank), nobody reads it before the rename."""
    from st_qwen3emb.runs import atomic_dir

    if world_size() <= 1:
        with atomic_dir(target) as tmp:
            yield tmp
        return
    with atomic_dir(target) if is_main_process() else contextlib.nullcontext() as tmp:
        tmp = Path(broadcast_from_main(str(tmp) if tmp is not None else None))
        yield tmp
        barrier()  # every process has written its part before rank 0 renames
    barrier()  # the folder is in place before anyone goes on


def zero3_enabled() -> bool:
    try:
        from transformers.integrations import is_deepspeed_zero3_enabled
    except ImportError:
        return False
    return bool(is_deepspeed_zero3_enabled())


@contextlib.contextmanager
def gathered_parameters(model: Any) -> Iterator[None]:
    """Make ``model.save(...)`` on rank 0 alone safe under ZeRO-3; every process must enter (a collective).

    Each process holds a slice of every weight: inside this block the full weights are present on every process.
    A forward pass on one process would wait forever for the others (ZeRO-3 gathers in forward hooks), and
    sentence-transformers' model card encodes example sentences while saving, so that is switched off here.
    A no-op without ZeRO-3.
    """
    if not zero3_enabled():
        yield
        return
    import deepspeed

    card = getattr(model, "model_card_data", None)
    widgets = getattr(card, "generate_widget_examples", None)
    if card is not None and widgets is not None:
        card.generate_widget_examples = False
    try:
        with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
            yield
    finally:
        if card is not None and widgets is not None:
            card.generate_widget_examples = widgets


# --- DeepSpeed configs ---------------------------------------------------------------------------------------------
def packaged_deepspeed_config(name: str) -> Path:
    return Path(str(importlib.resources.files("st_qwen3emb") / "deepspeed_configs" / f"{name}.json"))


def validate_deepspeed_config(path: str | Path, *, expected_stage: int | None = None) -> dict[str, Any]:
    """Read a DeepSpeed JSON config and check what the Trainer integration relies on; return it.

    Checked: a JSON object; ``zero_optimization.stage`` in 0..3 (``expected_stage`` when given); batch sizes and
    gradient accumulation left to the Trainer (``auto``) or given as numbers; ZeRO-3 gathering 16-bit weights on
    save (without it the checkpoints hold no usable weights and the exported model would be empty).
    """
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"--deepspeed {path}: not a readable JSON file ({err})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"--deepspeed {path}: expected a JSON object")
    zero = config.get("zero_optimization", {})
    stage = zero.get("stage", 0) if isinstance(zero, dict) else None
    if stage not in (0, 1, 2, 3):
        raise ConfigError(f"--deepspeed {path}: zero_optimization.stage must be 0, 1, 2 or 3, got {stage!r}")
    if expected_stage is not None and stage != expected_stage:
        raise ConfigError(f"--deepspeed {path}: zero_optimization.stage is {stage}, expected {expected_stage}")
    for key in ("train_micro_batch_size_per_gpu", "train_batch_size", "gradient_accumulation_steps"):
        value = config.get(key, "auto")
        if value != "auto" and not (isinstance(value, int) and value > 0):
            raise ConfigError(f"--deepspeed {path}: {key} must be 'auto' or a positive integer, got {value!r}")
    if stage == 3 and zero.get("stage3_gather_16bit_weights_on_model_save") is not True:
        raise ConfigError(
            f"--deepspeed {path}: ZeRO-3 needs zero_optimization.stage3_gather_16bit_weights_on_model_save: true, "
            "or the saved checkpoints and the final model hold no weights"
        )
    return config


def resolve_deepspeed_config(value: str, *, require_package: bool = True) -> str:
    """``--deepspeed zero2|zero3|PATH`` -> the path of a checked JSON config (the one place that resolves it).

    ``require_package``: also check that ``deepspeed`` is importable (training needs it; validation does not).
    """
    if value in DEEPSPEED_NAMES:
        path = packaged_deepspeed_config(value)
        if not path.is_file():
            raise ConfigError(f"--deepspeed {value}: the packaged config {path} is missing (broken install?)")
        validate_deepspeed_config(path, expected_stage=_ZERO_STAGE[value])
    else:
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(f"--deepspeed {value}: expected {', '.join(DEEPSPEED_NAMES)} or a JSON config file")
        validate_deepspeed_config(path)
    if require_package:
        try:
            import deepspeed  # noqa: F401
        except ImportError:
            raise ConfigError("--deepspeed needs the deepspeed package: pip install 'st-qwen3emb[gpu]'") from None
    return str(path)


__all__ = [
    "barrier",
    "broadcast_from_main",
    "gathered_parameters",
    "in_launched_process",
    "is_main_process",
    "launcher_args",
    "maybe_relaunch",
    "relaunch_command",
    "resolve_deepspeed_config",
    "share_from_main",
    "shared_atomic_dir",
    "training_args_overrides",
    "validate_deepspeed_config",
    "world_size",
]
