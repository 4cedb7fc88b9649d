"""The training loop both trainers share: seeding, AdamW over the trainable parameters, the linear warm-up/decay
schedule, gradient clipping, the step loop with a progress bar, dev evaluation every `eval_steps` with the best model
exported, checkpoints and resumption, and the history written atomically.

A trainer (:mod:`semspace.train.encoder`, :mod:`semspace.train.cross_encoder`) supplies only its model, the example
order of each epoch, a step function (a batch of example indices → back-propagated loss) and its dev score; the
schedule follows the BERT recipe (Devlin et al. 2019: linear warm-up over `warmup_ratio` of the steps, then linear
decay to 0) as sentence-transformers' fit does.

Dev selection evaluates on a geometric schedule near the start (see :func:`eval_schedule`): fine-tuning an already
trained encoder often peaks, or starts to drift, within the first few dozen steps, which a once-per-epoch evaluation
cannot see. The history keeps the final model's dev score next to the best one (`final_dev_spearman`, `best_step`),
so a table can show final and best-dev side by side and a selection artefact is visible.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from semspace._io import write_artifact_json
from semspace.errors import InvalidParameterError, check_param
from semspace.train.checkpoint import load_checkpoint, save_checkpoint

logger = logging.getLogger(__name__)

HISTORY_FILE = "semspace_training.json"
HISTORY_FORMAT = "semspace-training-history"
# Knobs that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = frozenset({"eval_steps", "eval_early", "device"})
# Gradients are clipped to this global L2 norm before every optimizer step (as sentence-transformers' fit).
MAX_GRAD_NORM = 1.0

StepFn = Callable[[np.ndarray], torch.Tensor]


@dataclass
class TrainConfig:
    """The knobs both trainers share, one name and one meaning each; a trainer's config subclasses it and may give
    its own recipe defaults (e.g. the cross-encoder trains 2 epochs of 16 pairs)."""

    OBJECTIVES: ClassVar[tuple[str, ...]] = ()

    objective: str = ""
    epochs: int = 1
    batch_size: int = 32
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 64
    cosent_scale: float = 20.0
    max_label: float | None = None  # labels are divided by this (default: the largest training label, at least 1)
    rdrop_alpha: float = 0.0
    seed: int = 0
    eval_steps: int | None = None  # None: once per epoch
    eval_early: int = 4  # also evaluate at eval_steps / 2, / 4, … (this many halvings) before the first regular eval
    max_steps: int | None = None  # cap on optimizer steps (the schedule is sized to it)
    device: str = "cpu"

    def validate(self) -> None:
        """Check every shared knob; raises InvalidParameterError naming the first bad one."""
        owner = type(self).__name__
        check_param("objective", owner, self.objective in self.OBJECTIVES, f"one of {self.OBJECTIVES}", self.objective)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            check_param(name, owner, isinstance(value, int) and value >= 1, "an int >= 1", value)
        for name in ("eval_steps", "max_steps"):
            value = getattr(self, name)
            check_param(name, owner, value is None or (isinstance(value, int) and value >= 1), "None or >= 1", value)
        early = self.eval_early
        check_param("eval_early", owner, isinstance(early, int) and 0 <= early <= 16, "an int in [0, 16]", early)
        check_param("lr", owner, 0 < self.lr < 1, "in (0, 1)", self.lr)
        check_param("warmup_ratio", owner, 0 <= self.warmup_ratio < 1, "in [0, 1)", self.warmup_ratio)
        check_param("weight_decay", owner, self.weight_decay >= 0, ">= 0", self.weight_decay)
        check_param("max_length", owner, self.max_length >= 4, "an int >= 4", self.max_length)
        check_param("rdrop_alpha", owner, self.rdrop_alpha >= 0, ">= 0", self.rdrop_alpha)
        check_param("max_label", owner, self.max_label is None or self.max_label > 0, "None or > 0", self.max_label)


def seed_everything(seed: int) -> None:
    """Seed torch before the model is built (a fresh classification head draws its initial weights)."""
    torch.manual_seed(seed)


def label_scale(config: TrainConfig, labels: np.ndarray | None) -> float:
    """What labels are divided by: `config.max_label`, else the largest training label (at least 1)."""
    if config.max_label:
        return float(config.max_label)
    return float(max(labels.max(), 1.0)) if labels is not None and len(labels) else 1.0


def shuffled_epoch(seed: int, n: int) -> Callable[[int], np.ndarray]:
    """Epoch → example order drawn from `default_rng([seed, epoch])`: a pure function of (seed, epoch), so a resumed
    run sees the batches the interrupted one would have."""
    return lambda epoch: np.random.default_rng([seed, epoch]).permutation(n)


def linear_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup` steps, then linear decay to 0 at `total`."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup))
    )


def eval_schedule(eval_every: int, early: int, total: int) -> list[int]:
    """The steps (sorted, <= `total`) after which dev is evaluated: every `eval_every` steps, the last step, and
    before the first regular evaluation `early` halvings of the interval (eval_every // 2, // 4, …, those >= 1).

    >>> eval_schedule(90, 3, 360)
    [11, 22, 45, 90, 180, 270, 360]
    >>> eval_schedule(3, 0, 7)
    [3, 6, 7]
    """
    steps = {eval_every >> k for k in range(1, early + 1)} | set(range(eval_every, total + 1, eval_every)) | {total}
    return sorted(s for s in steps if 1 <= s <= total)


def run_training(
    model: torch.nn.Module,
    config: TrainConfig,
    n_examples: int,
    step_fn: StepFn,
    output_dir: Path,
    *,
    export: Callable[[], None],
    export_final: Callable[[], None] | None = None,
    dev_score: Callable[[], float] | None = None,
    order: Callable[[int], np.ndarray] | None = None,
    history: dict[str, Any] | None = None,
    evaluate_start: bool = False,
    checkpoints: bool = True,
    resume: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train `model` for `config.epochs` (at most `config.max_steps` steps); returns the history, also written to
    `output_dir/semspace_training.json`.

    Each step takes the next `batch_size` indices of `order(epoch)` (default :func:`shuffled_epoch`) and calls
    `step_fn(index)`, which accumulates the gradient and returns the detached loss; the loop clips, steps and
    schedules. `dev_score()` (higher is better) runs every `eval_steps` and at the end; a new best calls `export()`.
    Without a dev score (or when no evaluation ran) the final model is exported. With `evaluate_start`, the
    starting model competes too, so training never exports something worse on dev. With `checkpoints`, a
    checkpoint is written at every evaluation and on Ctrl-C, and `resume` continues from the last one.
    `on_step(step, loss)` is called after every optimizer step; `export_final()`, when given, once at the end (the
    final model, whichever step was best). Evaluations follow :func:`eval_schedule`; the history's
    `final_dev_spearman` is the last evaluation's score (the final model's, when a dev score is given).
    """
    output_dir = Path(output_dir)
    order = order or shuffled_epoch(config.seed, n_examples)
    steps_per_epoch = math.ceil(n_examples / config.batch_size)
    total = min(steps_per_epoch * config.epochs, config.max_steps or math.inf)
    optimizer, scheduler = _optimizer_and_schedule(model, config, total)
    history, step, seconds = _starting_state(
        history, config, n_examples, output_dir, model, optimizer, scheduler, resume=checkpoints and resume
    )
    eval_at = frozenset(eval_schedule(config.eval_steps or steps_per_epoch, config.eval_early, total))
    started = time.perf_counter() - seconds

    def checkpoint() -> None:
        if checkpoints:
            state = {"history": history, "step": step, "seconds": time.perf_counter() - started}
            save_checkpoint(output_dir, step, model, optimizer, scheduler, state)

    def evaluate() -> None:
        if dev_score is not None:
            score = dev_score()
            model.train()
            _record_evaluation(history, step, score, export)

    model.train()
    if step == 0 and evaluate_start:
        evaluate()
    bar = tqdm(total=total, initial=step, desc=f"train {config.objective}", unit="step")
    try:
        while step < total:
            epoch, position = divmod(step, steps_per_epoch)
            index = order(epoch)[position * config.batch_size : (position + 1) * config.batch_size]
            loss = _optimizer_step(model, optimizer, scheduler, step_fn, index)
            step += 1
            history["losses"].append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", dev=history["best_dev_spearman"])
            if step in eval_at:
                evaluate()
                checkpoint()
            if on_step is not None:
                on_step(step, loss)
    except KeyboardInterrupt:
        checkpoint()
        if checkpoints:
            logger.warning("interrupted at step %d; run again with the same output folder to resume", step)
        raise
    finally:
        bar.close()
    _finish(history, step, time.perf_counter() - started, output_dir, export, export_final)
    return history


def _optimizer_and_schedule(
    model: torch.nn.Module, config: TrainConfig, total: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters, with the linear warm-up/decay schedule sized to `total` steps."""
    warmup = max(1, int(config.warmup_ratio * total))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return optimizer, linear_schedule(optimizer, warmup, total)


def _starting_state(
    history: dict[str, Any] | None,
    config: TrainConfig,
    n_examples: int,
    output_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    *,
    resume: bool,
) -> tuple[dict[str, Any], int, float]:
    """(history, step, seconds) to start from: the last checkpoint's when `resume` finds one (which also restores
    the model, optimizer and schedule), else a fresh history (updated with the caller's `history`) at step 0."""
    history = {"config": asdict(config), "evals": [], "losses": [], "best_dev_spearman": None} | (history or {})
    history["train_examples"] = n_examples
    restored = load_checkpoint(output_dir, model, optimizer, scheduler) if resume else None
    if restored is None:
        return history, 0, 0.0
    _check_same_config(config, restored["history"]["config"], output_dir)
    return restored["history"], restored["step"], restored["seconds"]


def _optimizer_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    step_fn: StepFn,
    index: np.ndarray,
) -> float:
    """One optimizer step on the batch `index`: back-propagate, clip, step, schedule; returns the loss."""
    loss = float(step_fn(index))
    torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def _record_evaluation(history: dict[str, Any], step: int, score: float, export: Callable[[], None]) -> None:
    """Log a dev score in the history; a new best becomes the best step and is exported."""
    history["evals"].append({"step": step, "dev_spearman": score})
    logger.info("step %d: dev Spearman %.4f", step, score)
    best = history["best_dev_spearman"]
    if best is None or score > best:
        history["best_dev_spearman"], history["best_step"] = score, step
        export()


def _finish(
    history: dict[str, Any],
    step: int,
    seconds: float,
    output_dir: Path,
    export: Callable[[], None],
    export_final: Callable[[], None] | None,
) -> None:
    """End a run: export the final model when no evaluation exported a best one, call `export_final`, add the run's
    totals (final dev score, steps, seconds) to the history and write it atomically."""
    if history["best_dev_spearman"] is None:
        export()
    if export_final is not None:
        export_final()
    if history["evals"]:
        history["final_dev_spearman"] = history["evals"][-1]["dev_spearman"]
    history["steps"] = step
    history["train_seconds"] = seconds
    write_artifact_json(output_dir / HISTORY_FILE, HISTORY_FORMAT, history)


def _check_same_config(config: TrainConfig, saved: dict, output_dir: Path) -> None:
    current = asdict(config)
    names = [f.name for f in fields(config) if f.name not in RESUMABLE_CHANGES]
    changed = [n for n in names if saved.get(n) != current.get(n)]
    if changed:
        raise InvalidParameterError(
            f"{output_dir} holds a checkpoint trained with other settings ({', '.join(changed)}); "
            "use a new output folder or resume=False (CLI: --no-resume)."
        )
