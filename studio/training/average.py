"""Average the weights of several snapshots of one training run into one checkpoint.

    python -m studio.training.average --out checkpoints/transformer_tts.pt \
        snaps/model_14000.pt snaps/model_14500.pt snaps/model_15000.pt

Snapshots a few hundred steps apart sit near one another in weight space, and their mean lands
in a flatter, less noisy spot than any one of them (Vaswani et al. 2017 average the last 5-20
checkpoints of the Transformer; Izmailov et al. 2018 explain why it helps). The snapshots must
share architecture, audio settings, symbols and voices; the metrics (steps, training time) are
the last one's, plus `averaged_steps`. Floating-point weights are averaged in fp32 and stored in the
first snapshot's dtype (fp16 for `RUN/model.pt` exports); integer buffers (counters) are the last's.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import torch

from studio.checkpoint import config_from_dict, load_checkpoint, write_blob
from studio.errors import CheckpointError

log = logging.getLogger(__name__)

_SAME = ("model_type", "config", "audio", "vocab", "speakers")


def _full_config(blob: dict) -> dict:
    """The model config with every field: a snapshot written before a field existed has its default."""
    from studio.training.train import model_family

    return dataclasses.asdict(config_from_dict(model_family(blob["model_type"])[1], blob["config"]))


def average_checkpoints(paths: list[Path]) -> dict:
    """The first checkpoint's description with the mean of every floating-point weight and the last
    one's metrics (plus `averaged_steps`); no optimizer state."""
    if len(paths) < 2:
        raise ValueError("averaging needs at least two checkpoints")
    blobs = [load_checkpoint(p) for p in paths]
    if len({b["model_type"] for b in blobs}) == 1:
        blobs = [{**b, "config": _full_config(b)} for b in blobs]
    first = blobs[0]
    for p, b in zip(paths[1:], blobs[1:]):
        for key in _SAME:
            if b.get(key) != first.get(key):
                raise ValueError(f"{p.name} differs from {paths[0].name} in {key}: not snapshots of one run")
        if b["state_dict"].keys() != first["state_dict"].keys():
            raise ValueError(f"{p.name} has other weights than {paths[0].name}")
    state = {}
    for name, ref in first["state_dict"].items():
        tensors = [b["state_dict"][name] for b in blobs]
        if ref.is_floating_point():
            state[name] = torch.stack([t.float() for t in tensors]).mean(0).to(ref.dtype)
        else:
            state[name] = tensors[-1]  # counters such as batch norm's num_batches_tracked: the last snapshot's
    metrics = dict(blobs[-1].get("metrics") or {})
    metrics["averaged_steps"] = [b.get("metrics", {}).get("steps") for b in blobs]
    return {**{k: v for k, v in first.items() if k != "train_state"}, "state_dict": state, "metrics": metrics}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Average the weights of snapshots of one training run.")
    ap.add_argument("checkpoints", type=Path, nargs="+", help="RUN/model.pt exports saved at different steps")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        blob = average_checkpoints(args.checkpoints)
    except (ValueError, CheckpointError) as e:
        raise SystemExit(f"cannot average: {e}") from None
    write_blob(args.out, blob)
    log.info("averaged %d checkpoints (steps %s) into %s", len(args.checkpoints),
             blob["metrics"]["averaged_steps"], args.out)


if __name__ == "__main__":
    main()
