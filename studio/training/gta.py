"""Ground-truth-aligned (teacher-forced) mels from a trained acoustic model, for the vocoder.

    python -m studio.training.gta --checkpoint checkpoints/tacotron.pt --data data/corpus \
        --out data/corpus/gta/tacotron

The acoustic model is fed each utterance's real mel (teacher forcing), so its predictions line
up frame by frame with the real audio, but carry the model's own smoothing. A vocoder trained on
them (`train wavenet --gta DIR`) learns to turn the acoustic model's mels, not only perfect ones,
into sharp audio (Shen et al., 2018, section 3.3). One `ID.npy` (float16, (T_mel, n_mels)) per
utterance; existing files are kept, so an interrupted run picks up where it stopped.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from studio.audio import AudioConfig
from studio.checkpoint import config_from_dict, load_checkpoint, load_state
from studio.text import Frontend, Vocab
from studio.training.dataset import TTSDataset, collate

log = logging.getLogger(__name__)


@torch.inference_mode()
def dump_gta(checkpoint: Path, data: Path, out: Path, batch_size: int = 16, seed: int = 0) -> int:
    """Write the teacher-forced postnet mel of every utterance in `data`; returns how many were written."""
    from studio.training.train import model_family

    blob = load_checkpoint(checkpoint)
    Model, ModelConfig = model_family(blob["model_type"])
    cfg = config_from_dict(ModelConfig, blob["config"])
    model = Model(cfg)
    load_state(model, blob["state_dict"], str(checkpoint))
    model.eval()
    audio = AudioConfig.from_dict(blob["audio"])
    frontend = Frontend(Vocab(blob["vocab"]), cfg.frontend)
    ds = TTSDataset(data, audio, frontend, speakers=[s["id"] for s in blob["speakers"]])
    out.mkdir(parents=True, exist_ok=True)
    todo = sorted((i for i in range(len(ds)) if not (out / f"{ds.items[i].id}.npy").exists()), key=ds.frame_count)
    torch.manual_seed(seed)
    written = 0
    for start in range(0, len(todo), batch_size):  # similar lengths together: little padding
        items = [ds[i] for i in todo[start : start + batch_size]]
        batch = collate(items, audio.log_silence)
        pred = model(batch)["mel_after"].float()  # (B, T', n_mels), T' >= T_mel
        for b, item in enumerate(items):
            n = len(item["mel"])
            np.save(out / f"{item['id']}.npy", pred[b, :n].numpy().astype(np.float16))
            written += 1
        if written % (batch_size * 20) < batch_size:
            log.info("%d / %d utterances", written, len(todo))
    return written


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Teacher-forced mels of an acoustic model, for vocoder training.")
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="LJSpeech-format folder the model was trained on")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        torch.set_num_threads(args.threads)
    n = dump_gta(args.checkpoint, args.data, args.out, args.batch_size)
    log.info("wrote %d mels to %s", n, args.out)


if __name__ == "__main__":
    main()
