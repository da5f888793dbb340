"""Train an acoustic model on an LJSpeech-format folder.

    python -m studio.training.train tacotron --data data/corpus --out runs/tacotron \
        [--config cfg.json] [--set r=5 --set train.lr=5e-4] [--init checkpoints/tacotron.pt]

Resumes from `RUN/last.pt` when it exists; `--init` starts from a shipped checkpoint's weights
instead (a fresh optimizer), which is how training continues across sessions from what was
committed. `RUN/model.pt` is the latest fp16 export, the file that gets shipped. Multi-GPU or
multi-process: `torchrun --nproc_per_node N -m studio.training.train ...`.
"""

from __future__ import annotations

import argparse
import logging
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from studio.audio import AudioConfig, griffin_lim, save_wav
from studio.checkpoint import config_from_dict, fewer_frames_per_step, load_checkpoint
from studio.text import Frontend, Vocab, normalize
from studio.training.corpus import TEACHERS
from studio.training.dataset import BucketBatchSampler, TTSDataset, audio_path, collate
from studio.training.trainer import Trainer, TrainConfig, apply_json, parse_overrides

log = logging.getLogger(__name__)

SAMPLE_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Would you like to hear the rest of the story tomorrow?",
]


# Training settings that belong to the machine or the sitting, not the run: a run resumed elsewhere
# (a GPU slot's last.pt on the CPU) starts them from the defaults again.
MACHINE_SETTINGS = frozenset({"threads", "num_workers", "max_minutes", "amp", "amp_cpu"})


def model_family(name: str):
    if name == "wavenet":
        from studio.vocoders.wavenet import WaveNet, WaveNetConfig

        return WaveNet, WaveNetConfig
    if name == "tacotron":
        from studio.models.tacotron import Tacotron, TacotronConfig

        return Tacotron, TacotronConfig
    if name == "transformer_tts":
        from studio.models.transformer_tts import TransformerTTS, TransformerTTSConfig

        return TransformerTTS, TransformerTTSConfig
    raise SystemExit(f"unknown model {name!r} (tacotron, transformer_tts, wavenet)")


def speaker_entries(names: list[str]) -> list[dict]:
    out = []
    for n in names:
        t = TEACHERS.get(n)
        out.append({"id": n, "name": t.name if t else n, "language": "en-US",
                    "teacher": t.description if t else "user dataset"})
    return out


def heldout_texts(path: Path = Path("assets/sentences/heldout.txt")) -> set[str]:
    if not path.exists():
        return set()
    return {normalize(s) for s in path.read_text().splitlines() if s.strip()}


def make_sample_fn(frontend: Frontend, audio: AudioConfig, speakers: list[str]):
    from studio.eval.health import alignment_health
    from studio.plots import plot_alignment, save

    prepared = [frontend.prepare(s)[0] for s in SAMPLE_SENTENCES]

    def sample(model, out_dir: Path, step: int) -> dict:
        d = out_dir / "samples"
        d.mkdir(exist_ok=True)
        healthy = 0
        for i, p in enumerate(prepared):
            spk = i % len(speakers)
            res = model.infer(torch.tensor(p.ids), speaker=spk)
            mel = res.mel.float().cpu().numpy()
            timing = res.timing_alignment if res.timing_alignment is not None else res.alignment
            align = timing.float().cpu().numpy()  # (T_dec, T_text)
            health = alignment_health(align, res.stop.float().cpu().numpy())
            healthy += health["ok"]
            save(plot_alignment(align, p.tokens, title=f"step {step}, {speakers[spk]}: {health['verdict']}"),
                 d / f"align_{step:07d}_{i}.png")
            save_wav(d / f"sample_{step:07d}_{i}.wav", griffin_lim(mel, audio), audio.sample_rate)
        log.info("step %d: %d/%d sample sentences aligned", step, healthy, len(prepared))
        return {"sample_aligned": healthy}

    return sample


def make_vocoder_sample_fn(vds, audio: AudioConfig):
    """Copy synthesis of one second of the first utterance, in its own voice: the vocoder's wav,
    and its PESQ and STOI against the original beside Griffin-Lim's on the same mel (when the
    test extras, pesq and pystoi, are installed)."""
    from importlib.util import find_spec

    from studio.audio import load_wav
    from studio.eval.metrics import pesq_wb, stoi

    measured = find_spec("pesq") is not None and find_spec("pystoi") is not None

    index = vds.items[0]
    it = vds.acoustic.items[index]
    mel = vds.acoustic[index]["mel"][:80].numpy()  # one second
    ref, _ = load_wav(audio_path(vds.acoustic.root, it.id), audio.sample_rate)
    ref = ref[: len(mel) * audio.hop_length]
    speakers = sorted(vds.acoustic.speaker_index, key=vds.acoustic.speaker_index.get)
    if measured:
        gl = griffin_lim(mel, audio)[: len(ref)]
        baseline = {"pesq": pesq_wb(ref, gl, audio.sample_rate), "stoi": stoi(ref, gl, audio.sample_rate)}

    def sample(model, out_dir: Path, step: int) -> dict:
        from studio.vocoders.wavenet import WaveNetVocoder

        d = out_dir / "samples"
        d.mkdir(exist_ok=True)
        wav = WaveNetVocoder(model, speakers).infer(mel, it.speaker)[: len(ref)]
        save_wav(d / f"copy_{step:07d}.wav", wav, audio.sample_rate)
        if not measured:
            return {}
        scores = {"sample_pesq": round(pesq_wb(ref, wav, audio.sample_rate), 3),
                  "sample_stoi": round(stoi(ref, wav, audio.sample_rate), 4)}
        log.info("step %d: copy synthesis PESQ %.3f STOI %.4f (Griffin-Lim %.3f, %.4f)", step,
                 scores["sample_pesq"], scores["sample_stoi"], baseline["pesq"], baseline["stoi"])
        return scores

    return sample


def vocoder_frontend(data: Path, audio: AudioConfig) -> str:
    """The vocoder reads no text: it shares the acoustic models' phoneme feature cache where that
    exists, and otherwise caches with plain characters, which need no espeak (a packed corpus on
    a machine without it)."""
    if TTSDataset.cache_dir(data, audio, Frontend(Vocab.phonemes(), "phonemes")).joinpath("index.json").exists():
        return "phonemes"
    try:
        from studio.text.g2p import phonemize_batch

        phonemize_batch(["a"])
        return "phonemes"
    except Exception:  # noqa: BLE001 - no espeak here: characters serve the vocoder as well
        return "characters"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train Tacotron, Transformer-TTS or the WaveNet vocoder.")
    ap.add_argument("model", choices=["tacotron", "transformer_tts", "wavenet"])
    ap.add_argument("--data", type=Path, required=True, help="LJSpeech-format folder")
    ap.add_argument("--out", type=Path, required=True, help="run folder (resumed if it has last.pt)")
    ap.add_argument("--config", type=Path, help="JSON file with model/train/audio sections")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    ap.add_argument("--init", type=Path, help="start from this checkpoint's weights")
    ap.add_argument("--gta", type=Path, help="wavenet: train on these teacher-forced mels (studio.training.gta)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    Model, ModelConfig = model_family(args.model)
    audio, mcfg, tcfg = AudioConfig(), ModelConfig(), TrainConfig()
    # A run folder with last.pt resumes with its own settings (architecture, decoding limits, voices,
    # symbols, and the training settings it was last run with); otherwise --init's. Defaults would
    # silently undo what an --init conversion set.
    last = args.out / "last.pt"
    run_blob = load_checkpoint(last) if last.exists() else None
    init_blob = load_checkpoint(args.init) if args.init and run_blob is None else None
    base_blob = run_blob or init_blob
    if base_blob:  # the architecture must match the weights we start from
        audio = AudioConfig.from_dict(base_blob["audio"])
        mcfg = config_from_dict(ModelConfig, base_blob["config"])
    if run_blob and (run_blob.get("train_state") or {}).get("train"):  # resuming keeps the run's lr, batch, ...
        kept = {k: v for k, v in run_blob["train_state"]["train"].items() if k not in MACHINE_SETTINGS}
        tcfg = config_from_dict(TrainConfig, kept)
        log.info("resuming with the run's own training settings (--set train.KEY=VALUE changes one)")
    targets = {"model": mcfg, "train": tcfg, "audio": audio}
    if args.config:
        apply_json(args.config, targets)
    parse_overrides(args.set, targets)
    if init_blob and args.model in ("tacotron", "transformer_tts") and mcfg.r != init_blob["config"]["r"]:
        r0 = init_blob["config"]["r"]
        try:  # fine-tune at a smaller reduction factor (--set model.r=2 on an r=4 checkpoint)
            init_blob = fewer_frames_per_step(init_blob, mcfg.r)
        except ValueError as e:
            raise SystemExit(f"--init {args.init}: {e}") from None
        mcfg.max_steps_per_token = init_blob["config"]["max_steps_per_token"]
        mcfg.eos_hold_steps = init_blob["config"]["eos_hold_steps"]
        log.info("initialising an r=%d model from an r=%d checkpoint", mcfg.r, r0)

    vocoder = args.model == "wavenet"
    kind = mcfg.frontend if not vocoder else vocoder_frontend(args.data, audio)
    vocab = Vocab(base_blob["vocab"]) if base_blob and base_blob.get("vocab") else (
        Vocab.phonemes() if kind == "phonemes" else Vocab.characters())
    frontend = Frontend(vocab, kind)
    speakers = [s["id"] for s in base_blob["speakers"]] if base_blob else None
    run_blob = base_blob = None  # the trainer reads last.pt again itself
    ds = TTSDataset(args.data, audio, frontend, speakers=speakers, exclude=heldout_texts())
    if vocoder:
        from studio.training.dataset import VocoderDataset, collate_vocoder

        mcfg.n_mels, mcfg.hop_length, mcfg.sample_rate = audio.n_mels, audio.hop_length, audio.sample_rate
        mcfg.n_fft, mcfg.fmin, mcfg.fmax = audio.n_fft, audio.fmin, audio.fmax
        mcfg.n_speakers = len(ds.speakers)
        vds = VocoderDataset(ds, seed=tcfg.seed, mel_dir=args.gta, min_epoch=200 * tcfg.batch_size)
    else:
        mcfg.n_symbols, mcfg.n_mels, mcfg.n_speakers = len(vocab), audio.n_mels, len(ds.speakers)
    torch.manual_seed(tcfg.seed)
    model = Model(mcfg)
    log.info("%s: %.2f M parameters", args.model, sum(p.numel() for p in model.parameters()) / 1e6)

    meta = dict(model_type=args.model, config=mcfg, audio=audio, vocab=None if vocoder else vocab.to_list(),
                speakers=speaker_entries(ds.speakers))
    trainer_holder = {}

    def make_batches(epoch: int):
        tr = trainer_holder["t"]
        if vocoder:
            from torch.utils.data import DistributedSampler

            sampler = DistributedSampler(vds, tr.world, tr.rank, seed=tcfg.seed) if tr.world > 1 else None
            if sampler:
                sampler.set_epoch(epoch)
            g = torch.Generator().manual_seed(tcfg.seed + epoch)
            return DataLoader(vds, batch_size=tcfg.batch_size, sampler=sampler, shuffle=sampler is None,
                              generator=g, num_workers=tcfg.num_workers, drop_last=True,
                              collate_fn=partial(collate_vocoder, quantize_channels=mcfg.quantize_channels,
                                                 preemphasis=mcfg.preemphasis))
        sampler = BucketBatchSampler([ds.frame_count(i) for i in range(len(ds))], tcfg.batch_size,
                                     seed=tcfg.seed, rank=tr.rank, world=tr.world,
                                     groups=[ds.speaker_of(i) for i in range(len(ds))], join_prob=tcfg.join_prob,
                                     join_max=tcfg.join_max)
        sampler.set_epoch(epoch)
        return DataLoader(ds, batch_sampler=sampler, num_workers=tcfg.num_workers,
                          collate_fn=partial(collate, pad_value=audio.log_silence))

    sample_fn = make_vocoder_sample_fn(vds, audio) if vocoder else make_sample_fn(frontend, audio, ds.speakers)
    trainer = Trainer(model, tcfg, args.out, meta, make_batches, sample_fn=sample_fn)
    trainer_holder["t"] = trainer
    if not trainer.resume():
        if init_blob:
            model.load_state_dict({k: v.float() if v.is_floating_point() else v
                                   for k, v in init_blob["state_dict"].items()})
            trainer.step = int(init_blob.get("metrics", {}).get("steps", 0))
            trainer.train_seconds = float(init_blob.get("metrics", {}).get("train_seconds", 0.0))
            log.info("initialised from %s (step %d)", args.init, trainer.step)
        elif not vocoder:
            mean, std = ds.mel_stats()
            model.set_mel_stats(mean, std)

    trainer.train()


if __name__ == "__main__":
    main()
