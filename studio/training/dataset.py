"""LJSpeech-format datasets: `metadata.csv` + `wavs/` (`ID.wav`, or `ID.flac`), one or many speakers.

Rows are `id|text|normalised text[|speaker]` (LJSpeech itself has no speaker column: every row
is then speaker 0). Mels and symbol ids are computed once and cached in `<data>/cache/`, keyed
by the AudioConfig and the front-end, so a second epoch (or a resumed run) costs no feature work.
Batches are drawn from length buckets so little of each batch is padding. A fraction of batches
can be made of *joined* utterances (two of the same voice, one after the other with a pause), so
an attention model also sees lines longer than any single corpus sentence: the teacher corpus is
mostly short dictionary examples, and a studio script is not.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from studio.audio import AudioConfig, load_wav, mel_spectrogram

log = logging.getLogger(__name__)


@dataclass
class Item:
    id: str
    text: str
    normalized: str
    speaker: str


def audio_path(root: Path, uid: str) -> Path:
    """`wavs/ID.wav`, or `wavs/ID.flac` where only that exists (a packed corpus is FLAC)."""
    wav = root / "wavs" / f"{uid}.wav"
    flac = wav.with_suffix(".flac")
    return flac if not wav.exists() and flac.exists() else wav


def read_metadata(root: Path) -> list[Item]:
    items = []
    with open(root / "metadata.csv", encoding="utf-8", newline="") as f:
        for row in csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE, escapechar="\\"):
            if not row or not row[0].strip():
                continue
            uid, text = row[0], row[1] if len(row) > 1 else ""
            norm = row[2] if len(row) > 2 and row[2].strip() else text
            speaker = row[3] if len(row) > 3 and row[3].strip() else "default"
            items.append(Item(uid, text, norm, speaker))
    return items


class TTSDataset(Dataset):
    """(symbol ids, log-mel, speaker index) per utterance, features cached on disk."""

    def __init__(self, root: str | Path, audio: AudioConfig, frontend, speakers: list[str] | None = None,
                 exclude: set[str] | None = None, max_frames: int = 1200):
        self.root = Path(root)
        self.audio = audio
        self.frontend = frontend
        items = [it for it in read_metadata(self.root) if not exclude or it.normalized not in exclude]
        self.speakers = speakers or sorted({it.speaker for it in items})
        self.speaker_index = {s: i for i, s in enumerate(self.speakers)}
        items = [it for it in items if it.speaker in self.speaker_index]
        self.cache = self.cache_dir(self.root, audio, frontend)
        self.cache.mkdir(parents=True, exist_ok=True)
        self._prepare(items)
        self.items = [it for it in items if 2 <= self.lengths[it.id][0] and self.lengths[it.id][1] <= max_frames]
        log.info("%d utterances, %d speakers (%s)", len(self.items), len(self.speakers), self.root)

    @staticmethod
    def cache_dir(root: Path, audio: AudioConfig, frontend) -> Path:
        """Where the features of `root` for this AudioConfig and front-end are cached."""
        key = json.dumps([audio.to_dict(), frontend.kind, frontend.vocab.to_list()], sort_keys=True)
        return Path(root) / "cache" / hashlib.sha1(key.encode()).hexdigest()[:12]

    def _prepare(self, items: list[Item]) -> None:
        from tqdm import tqdm

        from studio.text.g2p import phonemize_batch

        index_path = self.cache / "index.json"
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
        todo = [it for it in items if it.id not in index]
        if todo:
            if self.frontend.kind == "phonemes":
                symbols = []
                for i in range(0, len(todo), 256):  # espeak is much faster on batches
                    symbols += phonemize_batch([it.normalized for it in todo[i : i + 256]])
            else:
                symbols = [self.frontend.symbols(it.normalized) for it in todo]
            for it, sym in tqdm(list(zip(todo, symbols)), desc="features", unit="utt"):
                wav, _ = load_wav(audio_path(self.root, it.id), self.audio.sample_rate)
                mel = mel_spectrogram(wav, self.audio).numpy().astype(np.float16)
                ids = np.asarray(self.frontend.vocab.encode(sym), dtype=np.int16)
                np.savez(self.cache / f"{it.id}.npz", mel=mel, ids=ids)
                index[it.id] = [len(ids), len(mel)]
            index_path.write_text(json.dumps(index))
        self.lengths = index

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int | tuple[int, ...]) -> dict:
        if isinstance(i, tuple):
            return self.joined(i)
        it = self.items[i]
        f = np.load(self.cache / f"{it.id}.npz")
        return {
            "id": it.id,
            "text": torch.from_numpy(f["ids"].astype(np.int64)),
            "mel": torch.from_numpy(f["mel"].astype(np.float32)),
            "speaker": self.speaker_index[it.speaker],
        }

    def joined(self, indices: tuple[int, ...], pause_s: float = 0.25) -> dict:
        """Several utterances of one voice as one: texts joined by a space (each keeps its own
        final punctuation; only the last EOS stays), mels by `pause_s` of silence."""
        parts = [self[i] for i in indices]
        if len({p["speaker"] for p in parts}) != 1:
            raise ValueError("joined utterances must share a voice")
        vocab = self.frontend.vocab
        space = torch.tensor([vocab.symbols.index(" ")])
        pause = torch.full((round(pause_s * self.audio.sample_rate / self.audio.hop_length), self.audio.n_mels),
                           self.audio.log_silence)
        texts, mels = [], []
        for k, p in enumerate(parts):
            last = k == len(parts) - 1
            texts += [p["text"]] if last else [p["text"][p["text"] != vocab.eos_id], space]
            mels += [p["mel"]] if last else [p["mel"], pause]
        return {"id": "+".join(p["id"] for p in parts), "text": torch.cat(texts), "mel": torch.cat(mels),
                "speaker": parts[0]["speaker"]}

    def speaker_of(self, i: int) -> int:
        return self.speaker_index[self.items[i].speaker]

    def frame_count(self, i: int) -> int:
        return self.lengths[self.items[i].id][1]

    def mel_stats(self, limit: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-band mean and std over (a sample of) the training mels."""
        idx = random.Random(0).sample(range(len(self)), min(limit, len(self)))
        mels = torch.cat([self[i]["mel"] for i in idx], dim=0)
        return mels.mean(0), mels.std(0)


def collate(batch: list[dict], pad_value: float) -> dict:
    """Pad a list of items into tensors. Shapes: text (B, T_text), mel (B, T_mel, n_mels)."""
    B = len(batch)
    text_lengths = torch.tensor([len(b["text"]) for b in batch])
    mel_lengths = torch.tensor([len(b["mel"]) for b in batch])
    n_mels = batch[0]["mel"].shape[1]
    text = torch.zeros(B, int(text_lengths.max()), dtype=torch.long)
    mel = torch.full((B, int(mel_lengths.max()), n_mels), pad_value)
    for i, b in enumerate(batch):
        text[i, : len(b["text"])] = b["text"]
        mel[i, : len(b["mel"])] = b["mel"]
    return {
        "ids": [b["id"] for b in batch],
        "text": text,
        "text_lengths": text_lengths,
        "mel": mel,
        "mel_lengths": mel_lengths,
        "speaker": torch.tensor([b["speaker"] for b in batch]),
    }


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length utterances, shuffled per epoch; sharded by rank for DDP.

    With `join_prob`, that fraction of batches becomes pairs `(i, j)` of the same group (voice),
    which the dataset joins into one longer utterance: half as many items, twice as long. With
    `join_max` > 2, each joined batch draws how many utterances make one item (2 to `join_max`).
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0, rank: int = 0, world: int = 1,
                 bucket_factor: int = 20, groups: list[int] | None = None, join_prob: float = 0.0,
                 join_max: int = 2):
        if join_prob > 0 and groups is None:
            raise ValueError("joining utterances needs their groups (voices)")
        if join_max < 2:
            raise ValueError("join_max counts the utterances in one joined item: 2 or more")
        self.lengths = lengths
        self.groups = groups
        self.join_prob = join_prob
        self.join_max = join_max
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world = rank, world
        self.bucket = batch_size * bucket_factor
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        batches = []
        for s in range(0, len(order), self.bucket):
            chunk = sorted(order[s : s + self.bucket], key=lambda i: self.lengths[i])
            batches += [chunk[j : j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        if self.join_prob > 0:
            batches = [self._joined(b, rng) if rng.random() < self.join_prob else b for b in batches]
        n = len(batches) - len(batches) % self.world  # every rank gets the same number of steps
        return batches[self.rank : n : self.world]

    def _joined(self, batch: list[int], rng: random.Random) -> list:
        k = rng.randint(2, self.join_max) if self.join_max > 2 else 2  # pairs draw nothing (same epochs as before)
        by_group = defaultdict(list)
        for i in batch:
            by_group[self.groups[i]].append(i)
        joined = []
        for members in by_group.values():
            rng.shuffle(members)
            joined += [tuple(members[j : j + k]) for j in range(0, len(members) - k + 1, k)]
        return joined or batch

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


class VocoderDataset(Dataset):
    """Random (audio, mel) segments for vocoder training, from the same folders.

    The mel comes from the acoustic dataset's cache (ground-truth mels), so the vocoder sees
    exactly the features the acoustic models are trained to predict, or, with `mel_dir`, from
    an acoustic model's teacher-forced predictions (`studio.training.gta`; utterances without
    one fall back to the real mel). Frame i is centred on sample i * hop.

    An epoch draws at least `min_epoch` segments: a small corpus (a pack of a few hundred
    utterances) visits each utterance several times, at different random offsets, so a fast
    machine does not restart its DataLoader workers every dozen steps.
    """

    def __init__(self, acoustic: TTSDataset, segment_frames: int = 40, seed: int = 0,
                 mel_dir: str | Path | None = None, min_epoch: int = 0):
        self.acoustic = acoustic
        self.mel_dir = Path(mel_dir) if mel_dir else None
        self.segment_frames = segment_frames
        self.hop = acoustic.audio.hop_length
        self.items = [i for i in range(len(acoustic)) if acoustic.frame_count(i) > segment_frames + 2]
        self.repeats = max(1, -(-min_epoch // max(1, len(self.items))))
        self.seed = seed
        self.rng, self._rng_owner = random.Random(seed), None

    def _random(self) -> random.Random:
        """This process's segment RNG: each DataLoader worker gets its own stream (seeded from the
        worker's seed), instead of every worker repeating the parent's."""
        info = torch.utils.data.get_worker_info()
        owner = None if info is None else (info.id, info.seed)
        if owner != self._rng_owner:
            self.rng, self._rng_owner = random.Random(self.seed if info is None else info.seed), owner
        return self.rng

    def __len__(self) -> int:
        return len(self.items) * self.repeats

    def __getitem__(self, k: int) -> dict:
        i = self.items[k % len(self.items)]
        it = self.acoustic.items[i]
        mel = self.acoustic[i]["mel"]
        if self.mel_dir is not None and (self.mel_dir / f"{it.id}.npy").exists():
            gta = torch.from_numpy(np.load(self.mel_dir / f"{it.id}.npy").astype(np.float32))
            mel = gta[: len(mel)]
        wav, _ = load_wav(audio_path(self.acoustic.root, it.id), self.acoustic.audio.sample_rate)
        n = min(len(mel), len(wav) // self.hop)
        start = self._random().randint(0, max(0, n - self.segment_frames))
        seg = wav[start * self.hop : (start + self.segment_frames) * self.hop]
        seg = np.pad(seg, (0, self.segment_frames * self.hop - len(seg)))
        return {"id": it.id, "wav": torch.from_numpy(seg.astype(np.float32)),
                "mel": mel[start : start + self.segment_frames], "speaker": self.acoustic.speaker_index[it.speaker]}


def collate_vocoder(batch: list[dict], quantize_channels: int, preemphasis: float = 0.0) -> dict:
    from studio.vocoders.wavenet import mu_law_encode, preemphasize

    wav = preemphasize(torch.stack([b["wav"] for b in batch]), preemphasis)  # (B, T_wav)
    return {"ids": [b["id"] for b in batch], "audio": mu_law_encode(wav, quantize_channels), "wav": wav.clamp(-1, 1),
            "mel": torch.stack([b["mel"] for b in batch]),  # (B, T_mel, n_mels)
            "speaker": torch.tensor([b["speaker"] for b in batch])}
