"""Self-describing checkpoint files.

One file per model: `{format_version, model_type, config, audio, vocab, speakers, state_dict,
metrics?, train_state?}`, written with `torch.save` and read with `torch.load(weights_only=True)`
so that a downloaded file can carry tensors and plain data but never code. Everything the
loader needs (architecture config, symbol table, audio settings, voices) is inside.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from studio.audio import AudioConfig
from studio.errors import CheckpointError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_TYPES = ("tacotron", "transformer_tts", "wavenet")
REQUIRED = ("format_version", "model_type", "config", "audio", "state_dict")


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    model_type: str,
    config: Any,
    audio: AudioConfig,
    vocab: list[str] | None = None,
    speakers: list[dict] | None = None,
    metrics: dict | None = None,
    train_state: dict | None = None,
    half: bool = False,
) -> Path:
    """Write `model` (the plain module, never a DDP or compiled wrapper) with its description.

    `half=True` stores floating-point weights as fp16 to halve the shipped file size.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model_type {model_type!r}")
    model = getattr(model, "module", model)  # unwrap DDP
    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    blob = {
        "format_version": FORMAT_VERSION,
        "model_type": model_type,
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config),
        "audio": audio.to_dict(),
        "vocab": list(vocab) if vocab is not None else None,
        "speakers": list(speakers or []),
        "state_dict": state,
        "metrics": dict(metrics or {}),
    }
    if train_state is not None:
        blob["train_state"] = train_state
    return write_blob(path, blob)


def write_blob(path: str | Path, blob: dict) -> Path:
    """Write a checkpoint dict atomically: a crash mid-write never leaves a truncated file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read and validate a checkpoint; raises CheckpointError with a readable reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            reason = "it contains Python objects other than tensors and plain data, and was refused"
        raise CheckpointError(f"cannot load checkpoint {path.name}: {reason}") from None
    validate(blob, path.name)
    return blob


def validate(blob: Any, name: str = "checkpoint") -> None:
    if not isinstance(blob, dict):
        raise CheckpointError(f"{name} is not a studio checkpoint (no description dict)")
    missing = [k for k in REQUIRED if k not in blob]
    if missing:
        raise CheckpointError(f"{name} is not a studio checkpoint (missing {', '.join(missing)})")
    if not isinstance(blob["format_version"], int) or blob["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{name} has format version {blob['format_version']}, newer than this studio reads "
            f"({FORMAT_VERSION}); update the studio"
        )
    if blob["model_type"] not in MODEL_TYPES:
        raise CheckpointError(f"{name} has unknown model type {blob['model_type']!r}")
    if not isinstance(blob["state_dict"], dict) or not all(
        isinstance(v, torch.Tensor) for v in blob["state_dict"].values()
    ):
        raise CheckpointError(f"{name} has a malformed state_dict")


def config_from_dict(cls, d: dict, **derived):
    """Build a config dataclass from a dict, ignoring unknown keys (older/newer files)."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{**{k: v for k, v in d.items() if k in known}, **derived})


def load_state(model: torch.nn.Module, state_dict: dict, name: str = "checkpoint") -> None:
    """load_state_dict that checks every shape first and reports mismatches as CheckpointError."""
    own = model.state_dict()
    problems = [k for k in own if k not in state_dict]
    problems += [f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in state_dict.items()
                 if k in own and v.shape != own[k].shape]
    unexpected = [k for k in state_dict if k not in own]
    if problems or unexpected:
        detail = "; ".join((problems + unexpected)[:3])
        raise CheckpointError(f"{name} does not match its model config ({detail})")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state_dict.items()})


def fewer_frames_per_step(blob: dict, r: int) -> dict:
    """A checkpoint blob of an r0-frames-per-step acoustic model (Tacotron or Transformer-TTS:
    both name the parts alike), turned into an r-frames-per-step one (r < r0, r0 a multiple of
    r) to fine-tune: every weight carries over.

    Decoder step k of the old model predicts the r0 frames that follow its input frame; the new
    step predicts the first r of them, so the mel projection keeps its first r * n_mels outputs.
    Limits counted in decoder steps (length limit, end-of-sentence hold) scale by r0 / r. The
    attention then learns to move r0 / r times slower; measured here, an r = 4 model fine-tuned
    at r = 2 aligned every sample sentence free-running within 200 steps.
    """
    cfg = dict(blob["config"])
    r0, n = cfg["r"], cfg["n_mels"]
    if r == r0:
        return blob
    if not (0 < r < r0 and r0 % r == 0):
        raise ValueError(f"can only go from {r0} frames per step to a divisor of it, not to {r}")
    sd = dict(blob["state_dict"])
    sd["mel_proj.weight"] = sd["mel_proj.weight"][: n * r].clone()
    sd["mel_proj.bias"] = sd["mel_proj.bias"][: n * r].clone()
    k = r0 // r
    cfg.update(r=r, max_steps_per_token=cfg["max_steps_per_token"] * k, eos_hold_steps=cfg["eos_hold_steps"] * k)
    return {**{key: v for key, v in blob.items() if key != "train_state"}, "config": cfg, "state_dict": sd}
