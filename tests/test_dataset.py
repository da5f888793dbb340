import numpy as np
import pytest
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


def test_joined_utterances_keep_one_voice_one_eos_and_a_pause(tmp_path):
    audio = AudioConfig()
    ds = TTSDataset(make_ljspeech(tmp_path / "lj"), audio, Frontend(Vocab.phonemes()))
    a, b, ab = ds[1], ds[4], ds[(1, 4)]
    eos, space = ds.frontend.vocab.eos_id, ds.frontend.vocab.symbols.index(" ")
    assert ab["id"] == f"{a['id']}+{b['id']}" and ab["speaker"] == a["speaker"]
    assert ab["text"].tolist() == a["text"][:-1].tolist() + [space] + b["text"].tolist()
    assert int((ab["text"] == eos).sum()) == 1 and int(ab["text"][-1]) == eos
    pause = round(0.25 * audio.sample_rate / audio.hop_length)
    assert len(ab["mel"]) == len(a["mel"]) + pause + len(b["mel"])
    torch.testing.assert_close(ab["mel"][: len(a["mel"])], a["mel"])
    torch.testing.assert_close(ab["mel"][-len(b["mel"]):], b["mel"])
    assert torch.all(ab["mel"][len(a["mel"]) : len(a["mel"]) + pause] == audio.log_silence)
    batch = collate([ds[(0, 2)], ds[(3, 5)]], pad_value=audio.log_silence)  # joined items batch like any other
    assert batch["text"].shape[0] == 2 and int(batch["mel_lengths"].max()) == batch["mel"].shape[1]


def test_sampler_joins_pairs_within_a_voice():
    rng = np.random.default_rng(1)
    lengths, groups = list(rng.integers(10, 1000, 400)), list(rng.integers(0, 4, 400))
    batches = list(BucketBatchSampler(lengths, 16, groups=groups, join_prob=0.5))
    joined = [b for b in batches if isinstance(b[0], tuple)]
    assert 0.3 < len(joined) / len(batches) < 0.7
    for b in joined:
        assert all(len(p) == 2 and groups[p[0]] == groups[p[1]] and p[0] != p[1] for p in b)
    used = [i for b in batches for x in b for i in (x if isinstance(x, tuple) else (x,))]
    assert len(used) == len(set(used))  # nothing is drawn twice in an epoch
    plain = list(BucketBatchSampler(lengths, 16, groups=groups))
    assert not any(isinstance(x, tuple) for b in plain for x in b)


def test_sampler_joins_up_to_join_max_utterances():
    rng = np.random.default_rng(2)
    lengths, groups = list(rng.integers(10, 1000, 600)), list(rng.integers(0, 3, 600))
    batches = list(BucketBatchSampler(lengths, 24, groups=groups, join_prob=1.0, join_max=3))
    sizes = {len(x) for b in batches for x in b if isinstance(x, tuple)}
    assert sizes == {2, 3}  # each joined batch draws its own size
    for b in batches:
        for x in b:
            assert isinstance(x, tuple) and len({groups[i] for i in x}) == 1 and len(set(x)) == len(x)
            assert len(x) == len(b[0])  # one size within a batch
    with pytest.raises(ValueError):
        BucketBatchSampler(lengths, 24, groups=groups, join_prob=0.5, join_max=1)


def test_pack_is_lossless_balanced_within_budget_and_trains_without_espeak(tmp_path, monkeypatch):
    import soundfile as sf

    from studio.training.dataset import VocoderDataset, audio_path
    from studio.training.pack import pack_corpus
    from studio.training.train import vocoder_frontend

    root = tmp_path / "corpus"
    (root / "wavs").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for voice in ("slt", "rms"):
        for i in range(6):
            uid = f"{voice}_{i}"
            save_wav(root / "wavs" / f"{uid}.wav", rng.standard_normal(8000 + 400 * i).astype(np.float32) * 0.1, 16000)
            rows.append(f"{uid}|Line {i}.|Line {i}.|{voice}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    one = (root / "wavs" / "slt_0.wav").stat().st_size / 2**20

    info = pack_corpus(root, tmp_path / "pack", max_mb=5 * one)  # FLAC of noise is nearly WAV-sized
    kept = read_metadata(tmp_path / "pack")
    assert 2 <= info["utterances"] == len(kept) < 12 and info["voices"] == ["rms", "slt"]
    counts = [sum(it.speaker == v for it in kept) for v in ("rms", "slt")]
    assert abs(counts[0] - counts[1]) <= 1  # voices in turn
    assert sum(f.stat().st_size for f in (tmp_path / "pack" / "wavs").iterdir()) <= 5 * one * 2**20
    for it in kept:
        path = audio_path(tmp_path / "pack", it.id)
        assert path.suffix == ".flac"
        original, _ = sf.read(str(root / "wavs" / f"{it.id}.wav"), dtype="int16")
        packed, sr = sf.read(str(path), dtype="int16")
        assert sr == 16000 and np.array_equal(original, packed)  # lossless

    def no_espeak(texts):
        raise ImportError("No module named 'phonemizer'")

    with pytest.raises(SystemExit, match="not a pack"):
        pack_corpus(root, root, max_mb=1)  # never replaces a folder it did not make
    assert pack_corpus(root, tmp_path / "pack", max_mb=5 * one) == info  # an earlier pack is replaced

    monkeypatch.setattr("studio.text.g2p.phonemize_batch", no_espeak)  # as on a machine without espeak
    audio = AudioConfig()
    kind = vocoder_frontend(tmp_path / "pack", audio)
    assert kind == "characters"
    ds = TTSDataset(tmp_path / "pack", audio, Frontend(Vocab.characters(), kind))
    vds = VocoderDataset(ds, segment_frames=20)
    seg = vds[0]
    assert seg["wav"].shape == (20 * audio.hop_length,) and seg["mel"].shape == (20, audio.n_mels)
    longer = VocoderDataset(ds, segment_frames=20, min_epoch=5 * len(vds) + 1)  # a small pack, a longer epoch
    assert len(longer) == 6 * len(vds) and longer[len(vds)]["id"] == vds[0]["id"]
