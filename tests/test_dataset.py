import numpy as np
import torch

from studio.audio import AudioConfig, save_wav
from studio.text import Frontend, Vocab
from studio.training.dataset import BucketBatchSampler, TTSDataset, collate, read_metadata


def make_ljspeech(root, n=6, sr=22050):
    """An LJSpeech-format folder: no speaker column, 22.05 kHz audio."""
    (root / "wavs").mkdir(parents=True)
    rows = []
    rng = np.random.default_rng(0)
    for i in range(n):
        save_wav(root / "wavs" / f"LJ{i:03d}.wav", rng.standard_normal(sr // 2 + i * 2000).astype(np.float32) * 0.1, sr)
        rows.append(f"LJ{i:03d}|Text number {i}.|Text number {i}.")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


def test_ljspeech_folder_at_its_own_rate(tmp_path):
    root = make_ljspeech(tmp_path / "lj")
    items = read_metadata(root)
    assert len(items) == 6 and {it.speaker for it in items} == {"default"}
    audio = AudioConfig(sample_rate=22050, hop_length=256, win_length=1024)
    ds = TTSDataset(root, audio, Frontend(Vocab.phonemes()))
    assert len(ds) == 6 and ds.speakers == ["default"]
    item = ds[0]
    assert item["mel"].shape[1] == 80 and item["text"][-1] == 1
    assert ds.frame_count(5) > ds.frame_count(0)
    cached = list(ds.cache.glob("*.npz"))
    assert len(cached) == 6
    again = TTSDataset(root, audio, Frontend(Vocab.phonemes()))  # second load reads the cache
    torch.testing.assert_close(again[3]["mel"], ds[3]["mel"])


def test_collate_pads_and_masks(tmp_path):
    ds = TTSDataset(make_ljspeech(tmp_path / "lj"), AudioConfig(), Frontend(Vocab.phonemes()))
    batch = collate([ds[0], ds[5]], pad_value=AudioConfig().log_silence)
    assert batch["mel"].shape[0] == 2 and batch["text"].shape[0] == 2
    short = int(batch["mel_lengths"][0])
    assert torch.all(batch["mel"][0, short:] == AudioConfig().log_silence)
    assert torch.all(batch["text"][0, int(batch["text_lengths"][0]):] == 0)


def test_bucket_sampler_groups_lengths_and_shards():
    lengths = list(np.random.default_rng(0).integers(10, 1000, 200))
    s = BucketBatchSampler(lengths, batch_size=8, bucket_factor=5)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(200))
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 250  # batches hold similar lengths (random batches would spread ~850)
    s.set_epoch(1)
    assert list(s) != batches  # reshuffled per epoch
    r0 = list(BucketBatchSampler(lengths, 8, rank=0, world=2))
    r1 = list(BucketBatchSampler(lengths, 8, rank=1, world=2))
    assert len(r0) == len(r1) and not set(map(tuple, r0)) & set(map(tuple, r1))
