"""The training loop every model family shares.

Resumable (model, optimizer, scheduler, step and RNG states in `RUN/last.pt`), with an LR warm-up
and decay, gradient clipping, CSV scalars, periodic samples (alignment plot, audio) in the run
folder, mixed precision on a GPU, and data-parallel training under `torchrun` (gloo on CPU,
NCCL on GPU). Family-specific parts (how to build a batch, what a sample is) come in as callables.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import logging
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from studio.checkpoint import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    batch_size: int = 16  # utterances (or audio segments) per step and per process
    lr: float = 1e-3  # peak learning rate
    lr_min: float = 1e-5  # floor of the decay
    warmup_steps: int = 400  # linear warm-up
    decay_steps: int = 40000  # exponential half-life-like scale: lr * 0.5 ** (step / decay_steps)
    restart_step: int = 0  # warm restart: the schedule (warm-up, then decay) counts from this step
    weight_decay: float = 1e-6
    grad_clip: float = 1.0  # max global gradient norm
    max_steps: int = 100000  # stop here (a run can also be stopped and resumed at any time)
    max_minutes: float = 0.0  # stop after this many minutes of wall time (0: no limit)
    save_every: int = 250  # steps between resumable checkpoints
    keep_every: int = 0  # steps between kept fp16 snapshots RUN/snapshots/model_STEP.pt, for averaging (0: none)
    sample_every: int = 1000  # steps between alignment plots / audio samples
    log_every: int = 25  # steps between CSV rows
    seed: int = 0
    threads: int = 0  # torch intra-op threads on CPU (0: leave torch's default)
    amp: bool = True  # bf16 autocast when training on CUDA
    amp_cpu: bool = False  # bf16 autocast on CPU too (1.5x faster steps on AVX512-BF16 CPUs, measured here)
    num_workers: int = 0  # DataLoader worker processes
    join_prob: float = 0.0  # fraction of acoustic batches made of two same-voice utterances joined (long lines)
    join_max: int = 2  # a joined batch's items are 2 to join_max utterances each
    ema_decay: float = 0.0  # keep an exponential moving average of the weights (0: off); model.pt gets it


def lr_at(step: int, cfg: TrainConfig) -> float:
    step = max(0, step - cfg.restart_step)
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return max(cfg.lr_min, cfg.lr * 0.5 ** ((step - cfg.warmup_steps) / cfg.decay_steps))


class Trainer:
    """Runs optimisation steps for one model; see module docstring."""

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: TrainConfig,
        out_dir: str | Path,
        checkpoint_meta: dict,
        make_batches: Callable[[int], Iterable[dict]],
        sample_fn: Callable[[torch.nn.Module, Path, int], dict] | None = None,
        export: bool = True,
    ):
        """`checkpoint_meta` holds save_checkpoint's keyword arguments other than the model
        (model_type, config, audio, vocab, speakers); `make_batches(epoch)` yields batches.
        With `export`, every save also writes RUN/model.pt: fp16 weights, no optimizer, the
        file that gets shipped."""
        self.export = export
        self.cfg = cfg
        self.out = Path(out_dir)
        self.meta = checkpoint_meta
        self.make_batches = make_batches
        self.sample_fn = sample_fn
        self.rank, self.world = 0, 1
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if dist.is_initialized():
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if torch.cuda.is_available():
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
            if cfg.threads:
                torch.set_num_threads(cfg.threads)
        self.model = model.to(self.device)
        # The average of the weights over the last ~1 / (1 - ema_decay) steps: what an autoregressive
        # sampler should use, since the raw weights jitter with every small batch (WaveNet vocoders
        # since r9y9's keep one; Polyak averaging).
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
        self._ema_ready = False
        self.opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-6,
                                     weight_decay=cfg.weight_decay)
        self.step = 0
        self.epoch = 0
        self.metrics: dict = {}
        self.train_seconds = 0.0
        self.ddp = (
            torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
            if self.world > 1 else None
        )
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ state

    stop_requested = False

    def _install_stop_handlers(self) -> None:
        """SIGTERM and SIGINT finish the current step, save `last.pt` and return. (A job started
        with `nohup ... &` from a script inherits SIGINT as ignored, so both are installed.)"""
        import signal
        import threading
        from functools import partial

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, partial(_request_stop, self))

    def resume(self, path: str | Path | None = None) -> bool:
        """Continue from RUN/last.pt (or `path`) if it exists; True when something was loaded."""
        path = Path(path) if path else self.out / "last.pt"
        if not path.exists():
            return False
        blob = load_checkpoint(path)
        self.model.load_state_dict({k: v.float() if v.is_floating_point() else v
                                    for k, v in blob["state_dict"].items()})
        ts = blob.get("train_state") or {}
        if "optimizer" in ts:
            self.opt.load_state_dict(ts["optimizer"])
        if self.ema is not None and "ema" in ts:
            self.ema.load_state_dict(ts["ema"])
            self._ema_ready = True
        self.step = int(ts.get("step", blob.get("metrics", {}).get("steps", 0)))
        self.epoch = int(ts.get("epoch", 0))
        self.train_seconds = float(ts.get("train_seconds", blob.get("metrics", {}).get("train_seconds", 0.0)))
        if "torch_rng" in ts:
            torch.set_rng_state(ts["torch_rng"])
        if "python_rng" in ts:
            random.setstate(_to_tuple(ts["python_rng"]))
        log.info("resumed from %s at step %d", path, self.step)
        return True

    def save(self, name: str = "last.pt", with_state: bool = True, half: bool = False) -> Path:
        train_state = None
        if with_state:
            train_state = {
                "optimizer": self.opt.state_dict(),
                "step": self.step,
                "epoch": self.epoch,
                "train_seconds": self.train_seconds,
                "torch_rng": torch.get_rng_state(),
                "python_rng": _to_list(random.getstate()),
                "train": dataclasses.asdict(self.cfg),  # a resume without --set keeps these (train.py)
            }
            if self.ema is not None and self._ema_ready:
                train_state["ema"] = {k: v.detach().cpu() for k, v in self.ema.state_dict().items()}
        metrics = self._export_metrics()
        path = save_checkpoint(self.out / name, self.model, metrics=metrics, train_state=train_state,
                               half=half, **self.meta)
        if self.export and name == "last.pt":
            save_checkpoint(self.out / "model.pt", self.shipped_model, metrics=metrics, half=True, **self.meta)
        return path

    @property
    def shipped_model(self) -> torch.nn.Module:
        """The weights to export: the moving average when one is kept, else the model's own."""
        return self.ema if self.ema is not None and self._ema_ready else self.model

    def _update_ema(self) -> None:
        if self.ema is None:
            return
        if not self._ema_ready:  # first step of this run (fresh, --init or resumed without one)
            self.ema.load_state_dict(self.model.state_dict())
            self._ema_ready = True
            return
        decay = self.cfg.ema_decay
        with torch.no_grad():
            for avg, p in zip(self.ema.parameters(), self.model.parameters()):
                avg.lerp_(p.detach(), 1.0 - decay)
            for avg, b in zip(self.ema.buffers(), self.model.buffers()):
                avg.copy_(b)

    def keep(self) -> Path:
        """An fp16 snapshot that later saves do not overwrite (`studio.training.average` reads them)."""
        return save_checkpoint(self.out / "snapshots" / f"model_{self.step}.pt", self.shipped_model,
                               metrics=self._export_metrics(), half=True, **self.meta)

    def _export_metrics(self) -> dict:
        return {**self.metrics, "steps": self.step, "train_seconds": round(self.train_seconds, 1)}

    # ------------------------------------------------------------------ loop

    def train(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed + self.step)
        scalars = open(self.out / "scalars.csv", "a", newline="") if self.is_main else None
        writer = None
        start = time.time()
        self._install_stop_handlers()
        use_amp = cfg.amp and (self.device.type == "cuda" or cfg.amp_cpu)
        try:
            while self.step < cfg.max_steps:
                for batch in self.make_batches(self.epoch):
                    if self.step >= cfg.max_steps or (cfg.max_minutes and time.time() - start > cfg.max_minutes * 60):
                        return
                    if self.stop_requested:
                        log.info("stop requested: saving at step %d", self.step)
                        return
                    t0 = time.time()
                    lr = lr_at(self.step, cfg)
                    for g in self.opt.param_groups:
                        g["lr"] = lr
                    batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                             for k, v in batch.items()}
                    self.model.train()
                    with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                        out = (self.ddp or self.model)(batch)
                    loss = out["loss"]
                    if not torch.isfinite(loss):
                        log.warning("step %d: non-finite loss, batch skipped", self.step)
                        self.opt.zero_grad(set_to_none=True)
                        continue
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                    self.opt.step()
                    self._update_ema()
                    self.step += 1
                    dt = time.time() - t0
                    self.train_seconds += dt
                    if not self.is_main:
                        continue
                    if self.step % cfg.log_every == 0 or self.step == 1:
                        row = {"step": self.step, "lr": f"{lr:.2e}", "loss": f"{loss.item():.4f}",
                               "grad_norm": f"{float(grad_norm):.3f}", "step_s": f"{dt:.3f}"}
                        row.update({k: f"{float(v):.4f}" for k, v in out.items() if k.endswith("_loss")})
                        if writer is None:
                            writer = csv.DictWriter(scalars, fieldnames=list(row))
                            if scalars.tell() == 0:
                                writer.writeheader()
                        writer.writerow({k: row.get(k, "") for k in writer.fieldnames})
                        scalars.flush()
                        log.info("step %d  " + "  ".join(f"{k}={v}" for k, v in row.items() if k != "step"),
                                 self.step)
                    if self.step % cfg.save_every == 0:
                        self.save()
                    if cfg.keep_every and self.step % cfg.keep_every == 0:
                        self.keep()
                    if self.sample_fn and self.step % cfg.sample_every == 0:
                        self.model.eval()
                        self.metrics.update(self.sample_fn(self.model, self.out, self.step) or {})
                self.epoch += 1
        finally:
            if self.is_main:
                self.save()
                if scalars:
                    scalars.close()


def _request_stop(trainer: "Trainer", signum, frame) -> None:
    trainer.stop_requested = True


def _to_list(x):
    return [_to_list(v) for v in x] if isinstance(x, tuple) else x


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list) else x


def parse_overrides(pairs: list[str], targets: dict[str, object]) -> None:
    """Apply `key=value` overrides to dataclass instances, casting to each field's type.

    `targets` maps a prefix ("model", "train", "audio") to a dataclass instance; a key may be
    given with its prefix (`train.lr=5e-4`) or without, when exactly one target has it.
    """
    import json

    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        prefix, _, name = key.rpartition(".")
        candidates = [(p, t) for p, t in targets.items() if (not prefix or p == prefix)
                      and name in {f.name for f in dataclasses.fields(t)}]
        if len(candidates) != 1:
            raise SystemExit(f"--set {key}: {'ambiguous' if candidates else 'no such setting'}")
        _, target = candidates[0]
        current = getattr(target, name)
        if isinstance(current, bool):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise SystemExit(f"--set {key}: expected true or false, got {value!r}")
            cast = value.lower() in ("true", "1", "yes")
        elif isinstance(current, (int, float, str)):
            cast = type(current)(value)
        else:
            cast = json.loads(value)
        object.__setattr__(target, name, cast)  # AudioConfig is frozen; overrides happen before use


def apply_json(path: str | Path, targets: dict[str, object]) -> None:
    """Apply a JSON config file `{"model": {...}, "train": {...}, "audio": {...}}`."""
    import json

    data = json.loads(Path(path).read_text())
    pairs = []
    for prefix, values in data.items():
        if prefix not in targets or not isinstance(values, dict):
            raise SystemExit(f"{path}: unknown section {prefix!r} (expected {', '.join(targets)})")
        pairs += [f"{prefix}.{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in values.items()]
    parse_overrides(pairs, targets)
