"""Give a trained Transformer-TTS a duration predictor, so its attention window follows the text.

    python -m studio.training.durations --checkpoint checkpoints/transformer_tts.pt \
        --data data/corpus --out checkpoints/transformer_tts.pt

An encoder-decoder attention model decides for itself when to move on to the next symbol, and
on long or repetitive lines it sometimes moves too fast: the timing head jumps a few symbols and
the words under the jump are never said (Ren et al., 2019, table 3: Transformer-TTS skipped or
repeated words in 34% of their 50 hard sentences). This tool reads, once, how the trained model
itself paces every corpus utterance: a teacher-forced pass, the timing head's attention, and its
most likely monotonic path (`monotonic_durations`), giving decoder steps per symbol. A small
duration predictor (FastSpeech's: two convolutions over the frozen encoder output) learns those
durations; the model's weights are not touched. At inference the monotonic guard then centres
every head's window on the symbol the durations say is due, instead of on the head's own peak.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
from pathlib import Path

import torch
import torch.nn.functional as F

from studio.audio import AudioConfig
from studio.checkpoint import config_from_dict, load_checkpoint, load_state, write_blob
from studio.models.layers import DurationPredictor, lengths_to_mask, monotonic_durations
from studio.models.transformer_tts import TransformerTTS, TransformerTTSConfig
from studio.text import Frontend, Vocab
from studio.training.dataset import TTSDataset, collate

log = logging.getLogger(__name__)


@torch.inference_mode()
def read_durations(model: TransformerTTS, ds: TTSDataset, pad_value: float, batch_size: int = 32,
                   seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(encoder output (T_text, D) fp16, steps per symbol (T_text,)) for every utterance whose
    teacher-forced timing head can be read monotonically (more decoder steps than symbols)."""
    torch.manual_seed(seed)  # the decoder prenet's dropout stays on, as in training
    model.eval()
    r = model.cfg.r
    tl, th = model.timing_head
    order = sorted(range(len(ds)), key=ds.frame_count)
    pairs = []
    for start in range(0, len(order), batch_size):
        items = [ds[i] for i in order[start : start + batch_size]]
        batch = collate(items, pad_value)
        out = model(batch)
        timing, memory = out["alignment"], out["memory"]  # (B, T_dec, T_text), (B, T_text, D)
        for b in range(len(items)):
            n, t = int(batch["text_lengths"][b]), math.ceil(int(batch["mel_lengths"][b]) / r)
            d = monotonic_durations(timing[b, :t, :n])
            if d is not None:
                pairs.append((memory[b, :n].half().clone(), d))
        if (start // batch_size) % 25 == 0:
            log.info("read %d / %d utterances", start + len(items), len(order))
    return pairs


def fit_predictor(pairs: list[tuple[torch.Tensor, torch.Tensor]], channels: int, epochs: int = 30,
                  batch_size: int = 64, lr: float = 1e-3, val_fraction: float = 0.02, seed: int = 0,
                  ) -> tuple[DurationPredictor, dict]:
    """Train a DurationPredictor on (memory, steps) pairs; returns it (eval mode) and its held-out
    errors: mean absolute error in steps per symbol, the mean relative error of a line's length and
    the relative error of all lines' total length, with the predictions scaled by `length_scale`
    (returned with them)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    pairs = list(pairs)
    rng.shuffle(pairs)
    n_val = max(1, int(len(pairs) * val_fraction))
    val, train = pairs[:n_val], pairs[n_val:]
    predictor = DurationPredictor(pairs[0][0].shape[-1], channels)
    opt = torch.optim.Adam(predictor.parameters(), lr=lr)

    def batches(data, shuffle):
        data = sorted(data, key=lambda p: len(p[1]))
        chunks = [data[i : i + batch_size] for i in range(0, len(data), batch_size)]
        if shuffle:
            rng.shuffle(chunks)
        for chunk in chunks:
            lengths = torch.tensor([len(d) for _, d in chunk])
            memory = torch.nn.utils.rnn.pad_sequence([m.float() for m, _ in chunk], batch_first=True)
            steps = torch.nn.utils.rnn.pad_sequence([d for _, d in chunk], batch_first=True)
            yield memory, steps, lengths_to_mask(lengths)

    def evaluate(scale: float = 1.0) -> dict:
        predictor.eval()
        abs_err, symbols, rel, said, true = 0.0, 0, [], 0.0, 0.0
        with torch.no_grad():
            for memory, steps, mask in batches(val, False):
                pred = predictor.to_steps(predictor(memory, mask), mask, scale)
                abs_err += float(((pred - steps).abs() * mask).sum())
                symbols += int(mask.sum())
                rel += ((pred.sum(1) - steps.sum(1)).abs() / steps.sum(1)).tolist()
                said, true = said + float(pred.sum()), true + float(steps.sum())
        predictor.train()
        return {"mae_steps": round(abs_err / symbols, 3), "length_error": round(sum(rel) / len(rel), 4),
                "length_bias": round(said / true - 1, 4), "utterances": len(val)}

    for epoch in range(epochs):
        for g in opt.param_groups:  # cosine decay to a tenth
            g["lr"] = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))
        total, count = 0.0, 0
        for memory, steps, mask in batches(train, True):
            pred = predictor(memory, mask)
            loss = F.mse_loss(pred[mask], torch.log1p(steps[mask].float()))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + loss.item(), count + 1
        if epoch % 5 == 4 or epoch == epochs - 1:
            log.info("epoch %d  loss %.4f  held-out %s", epoch + 1, total / count, evaluate())
    predictor.eval()
    # The loss is on log(1 + steps), so the predictor says a geometric mean and its lines come out
    # short; one factor, fitted on the training split, puts the total length right (a few
    # fixed-point rounds, since the whole-step rounding and the one-step floor are not linear).
    with torch.no_grad():
        fit = [(predictor(memory, mask), mask, float(steps.sum())) for memory, steps, mask in batches(train, False)]
    true, scale = sum(t for *_, t in fit), 1.0
    for _ in range(6):
        said = sum(float(predictor.to_steps(log_steps, mask, scale).sum()) for log_steps, mask, _ in fit)
        scale *= true / max(said, 1.0)
    log.info("length scale %.4f; held-out unscaled %s", scale, evaluate())
    return predictor, {**evaluate(scale), "length_scale": round(scale, 4)}


def add_duration_predictor(checkpoint: Path, data: Path, out: Path, channels: int = 256, epochs: int = 30,
                           batch_size: int = 32) -> dict:
    """Read the model's durations on `data`, fit a predictor, and write the checkpoint with it to
    `out` (every other weight unchanged, in the file's own precision). Returns the fit's metrics."""
    blob = load_checkpoint(checkpoint)
    if blob["model_type"] != "transformer_tts":
        raise SystemExit(f"{checkpoint} is a {blob['model_type']} checkpoint; durations are for transformer_tts")
    cfg = config_from_dict(TransformerTTSConfig, {**blob["config"], "duration_channels": 0})
    model = TransformerTTS(cfg)
    state = {k: v for k, v in blob["state_dict"].items() if not k.startswith("duration_predictor.")}
    load_state(model, state, str(checkpoint))
    audio = AudioConfig.from_dict(blob["audio"])
    ds = TTSDataset(data, audio, Frontend(Vocab(blob["vocab"]), cfg.frontend),
                    speakers=[s["id"] for s in blob["speakers"]])
    pairs = read_durations(model, ds, audio.log_silence, batch_size)
    log.info("%d of %d utterances read monotonically", len(pairs), len(ds))
    predictor, metrics = fit_predictor(pairs, channels, epochs)
    dtype = blob["state_dict"]["mel_proj.weight"].dtype
    blob["state_dict"] = {**state, **{f"duration_predictor.{k}": v.to(dtype) if v.is_floating_point() else v
                                      for k, v in predictor.state_dict().items()}}
    blob["config"] = {**blob["config"], "duration_channels": channels, "duration_scale": metrics["length_scale"]}
    blob["metrics"] = {**(blob.get("metrics") or {}),
                       "durations": {**metrics, "read": len(pairs), "corpus": len(ds)}}
    write_blob(out, blob)
    return metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Add a duration predictor to a trained Transformer-TTS checkpoint.")
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="LJSpeech-format folder the model was trained on")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        torch.set_num_threads(args.threads)
    metrics = add_duration_predictor(args.checkpoint, args.data, args.out, args.channels, args.epochs,
                                     args.batch_size)
    log.info("wrote %s; held-out %s", args.out, metrics)


if __name__ == "__main__":
    main()
