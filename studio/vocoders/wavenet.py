"""WaveNet vocoder: an autoregressive model of mu-law samples conditioned on the mel.

van den Oord et al., 2016, "WaveNet: A Generative Model for Raw Audio": causal and dilated
convolutions (dilation doubling per layer, the pattern repeated in stacks), gated units
tanh(W_f * x) . sigmoid(W_g * x), residual connections around each layer and skip connections
summed into the output head (ReLU, 1x1, ReLU, 1x1, softmax over mu-law classes). Local
conditioning is the mel, upsampled to the sample rate by transposed convolutions; global
conditioning is the speaker (Shen et al., 2018 use the same vocoder setup for Tacotron 2).

Generation is incremental: each layer keeps a queue of its past inputs, so one new sample
costs one matrix product per layer instead of recomputing the receptive field. To share the
per-step Python overhead, a line is cut into overlapping segments that are generated together
as one batch and cross-faded (`fold`/`unfold`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn


@dataclass
class WaveNetConfig:
    n_mels: int = 80  # derived from the AudioConfig
    hop_length: int = 200  # derived from the AudioConfig: samples per mel frame
    sample_rate: int = 16000  # derived from the AudioConfig
    n_speakers: int = 1  # derived from the corpus
    quantize_channels: int = 256  # mu-law classes
    layers: int = 10  # dilated layers per stack; dilation 1, 2, 4, ... 2^(layers-1)
    stacks: int = 2  # the dilation pattern is repeated this many times
    kernel_size: int = 2  # causal kernel width
    residual_channels: int = 64
    gate_channels: int = 128  # split in half: tanh filter and sigmoid gate
    skip_channels: int = 64
    speaker_dim: int = 16  # global conditioning embedding
    upsample_scales: list[int] = field(default_factory=lambda: [5, 5, 8])  # product == hop_length
    cond_channels: int = 80  # conditioning features after the mel's 1-D conv
    # generation
    fold_seconds: float = 0.25  # segment length generated in parallel (chosen by measurement)
    fold_overlap_seconds: float = 0.025  # cross-faded overlap between segments
    temperature: float = 1.0  # softmax temperature when sampling


def mu_law_encode(wav: torch.Tensor, channels: int) -> torch.Tensor:
    return torchaudio.functional.mu_law_encoding(wav.clamp(-1, 1), channels)


def mu_law_decode(q: torch.Tensor, channels: int) -> torch.Tensor:
    return torchaudio.functional.mu_law_decoding(q, channels)


class CausalConv1d(nn.Conv1d):
    """Conv1d that only looks back: left padding of (kernel - 1) * dilation."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int = 1):
        super().__init__(c_in, c_out, kernel, dilation=dilation)
        self.left = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shapes: (B, C_in, T) -> (B, C_out, T)"""
        return super().forward(F.pad(x, (self.left, 0)))


class ResidualBlock(nn.Module):
    """Dilated causal conv -> gated activation (+ local and global conditioning) -> residual and skip."""

    def __init__(self, cfg: WaveNetConfig, dilation: int):
        super().__init__()
        self.conv = CausalConv1d(cfg.residual_channels, cfg.gate_channels, cfg.kernel_size, dilation)
        self.cond = nn.Conv1d(cfg.cond_channels, cfg.gate_channels, 1, bias=False)
        self.speaker = nn.Linear(cfg.speaker_dim, cfg.gate_channels, bias=False)
        self.res = nn.Conv1d(cfg.gate_channels // 2, cfg.residual_channels, 1)
        self.skip = nn.Conv1d(cfg.gate_channels // 2, cfg.skip_channels, 1)
        self.dilation = dilation

    def forward(self, x: torch.Tensor, c: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes: x (B, R, T), c (B, cond_channels, T), g (B, speaker_dim) -> residual (B, R, T), skip (B, S, T)"""
        h = self.conv(x) + self.cond(c) + self.speaker(g)[:, :, None]  # (B, G, T)
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)  # (B, G/2, T)
        return (x + self.res(z)) * math.sqrt(0.5), self.skip(z)


class WaveNet(nn.Module):
    def __init__(self, cfg: WaveNetConfig):
        super().__init__()
        if math.prod(cfg.upsample_scales) != cfg.hop_length:
            raise ValueError(f"upsample_scales {cfg.upsample_scales} must multiply to hop_length {cfg.hop_length}")
        self.cfg = cfg
        self.mel_conv = nn.Conv1d(cfg.n_mels, cfg.cond_channels, 3, padding=1)
        self.upsample = nn.ModuleList(
            nn.ConvTranspose1d(cfg.cond_channels, cfg.cond_channels, 2 * s, stride=s, padding=s // 2 + s % 2,
                               output_padding=s % 2)
            for s in cfg.upsample_scales
        )
        self.speaker_embedding = nn.Embedding(max(1, cfg.n_speakers), cfg.speaker_dim)
        self.input_conv = CausalConv1d(cfg.quantize_channels, cfg.residual_channels, 1)
        self.blocks = nn.ModuleList(
            ResidualBlock(cfg, 2**i) for _ in range(cfg.stacks) for i in range(cfg.layers)
        )
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv1d(cfg.skip_channels, cfg.skip_channels, 1),
            nn.ReLU(), nn.Conv1d(cfg.skip_channels, cfg.quantize_channels, 1),
        )

    @property
    def receptive_field(self) -> int:
        return 1 + sum((self.cfg.kernel_size - 1) * b.dilation for b in self.blocks)

    def condition(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel frames to per-sample conditioning. Shapes: (B, T_mel, n_mels) -> (B, cond_channels, T_mel * hop)"""
        c = self.mel_conv(mel.transpose(1, 2))  # (B, cond, T_mel)
        T = c.shape[-1]
        for up in self.upsample:
            c = F.leaky_relu(up(c), 0.4)
            T = T * up.stride[0]
            c = c[..., :T]
        return c

    def forward(self, batch: dict) -> dict:
        """Training step: cross-entropy of the next mu-law sample (the trainer's contract).

        Shapes: batch["audio"] (B, T_wav) mu-law classes, batch["mel"] (B, T_mel, n_mels),
        batch["speaker"] (B,)."""
        logits = self.logits(batch["audio"], batch["mel"], batch["speaker"])
        loss = F.cross_entropy(logits, batch["audio"])
        return {"loss": loss, "ce_loss": loss.detach()}

    def logits(self, x: torch.Tensor, mel: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits for every sample.

        Shapes:
            x: (B, T_wav) mu-law classes (the targets; inputs are x shifted right by one)
            mel: (B, T_mel, n_mels) with T_mel * hop_length == T_wav
            speaker: (B,)
            returns logits (B, quantize_channels, T_wav)
        """
        C = self.cfg.quantize_channels
        inp = F.one_hot(F.pad(x, (1, 0), value=C // 2)[:, :-1], C).float().transpose(1, 2)  # (B, C, T_wav)
        c = self.condition(mel)[..., : x.shape[1]]
        g = self.speaker_embedding(speaker)
        h = self.input_conv(inp)
        skips = 0
        for block in self.blocks:
            h, s = block(h, c, g)
            skips = skips + s
        return self.head(skips * math.sqrt(1.0 / len(self.blocks)))

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def generate(self, mel: torch.Tensor, speaker: torch.Tensor, seed: int = 0,
                 teacher: torch.Tensor | None = None, temperature: float | None = None) -> torch.Tensor:
        """Sample-by-sample generation with per-layer queues of past activations.

        With `teacher` (B, T_wav) mu-law classes, each step is fed the true previous sample and
        the logits are returned instead of samples: this equals `logits` (tested).

        Shapes: mel (B, T_mel, n_mels), speaker (B,) -> classes (B, T_wav) (or logits (B, C, T_wav))
        """
        cfg = self.cfg
        C = cfg.quantize_channels
        B = mel.shape[0]
        c = self.condition(mel)  # (B, cond, T_wav)
        T = c.shape[-1] if teacher is None else teacher.shape[1]
        g = self.speaker_embedding(speaker)
        gen = torch.Generator(device=mel.device).manual_seed(seed)
        temp = cfg.temperature if temperature is None else temperature
        # Fold every 1x1 and conditioning term into per-layer matrices once.
        w_in = self.input_conv.weight[:, :, 0]  # (R, C)
        b_in = self.input_conv.bias
        layers = []
        for blk in self.blocks:
            w = blk.conv.weight  # (G, R, k)
            cond = torch.einsum("gc,bct->btg", blk.cond.weight[:, :, 0], c) + (blk.speaker(g) + blk.conv.bias)[:, None]
            layers.append((w[:, :, -1].T.contiguous(), [w[:, :, j].T.contiguous() for j in range(w.shape[2] - 1)],
                           cond, blk.res.weight[:, :, 0].T.contiguous(), blk.res.bias,
                           blk.skip.weight[:, :, 0].T.contiguous(), blk.skip.bias, blk.dilation))
        queues = [torch.zeros(B, (cfg.kernel_size - 1) * d + 1, w_now.shape[0], device=mel.device)
                  for (w_now, _, _, _, _, _, _, d) in layers]
        h1, b1 = self.head[1].weight[:, :, 0].T, self.head[1].bias
        h2, b2 = self.head[3].weight[:, :, 0].T, self.head[3].bias
        prev = torch.full((B,), C // 2, dtype=torch.long, device=mel.device)
        out = torch.empty(B, T, dtype=torch.long, device=mel.device) if teacher is None else \
            torch.empty(B, C, T, device=mel.device)
        scale = math.sqrt(0.5)
        skip_scale = math.sqrt(1.0 / len(layers))
        for t in range(T):
            x = w_in[:, prev].T + b_in  # (B, R): the one-hot input times the 1x1 conv
            skips = 0
            for li, (w_now, w_past, cond, w_res, b_res, w_skip, b_skip, d) in enumerate(layers):
                q = queues[li]
                q = torch.cat([q[:, 1:], x[:, None]], dim=1)  # (B, (k-1)d+1, R): newest last
                queues[li] = q
                h = x @ w_now + cond[:, t]
                for j, wp in enumerate(w_past):  # taps at t - (k-1-j) * d
                    h = h + q[:, -(cfg.kernel_size - 1 - j) * d - 1] @ wp
                a, b = h.chunk(2, dim=1)
                z = torch.tanh(a) * torch.sigmoid(b)
                skips = skips + z @ w_skip + b_skip
                x = (x + z @ w_res + b_res) * scale
            logits = F.relu(F.relu(skips * skip_scale) @ h1 + b1) @ h2 + b2  # (B, C)
            if teacher is not None:
                out[:, :, t] = logits
                prev = teacher[:, t]
            else:
                probs = torch.softmax(logits / temp, dim=-1)
                prev = torch.multinomial(probs, 1, generator=gen)[:, 0]
                out[:, t] = prev
        return out


def fold(mel: torch.Tensor, frames: int, overlap: int) -> tuple[torch.Tensor, int]:
    """Cut a mel into overlapping segments of `frames` (+ `overlap` each side).

    Shapes: mel (T_mel, n_mels) -> (N, frames + 2 * overlap, n_mels), and N.
    """
    T = mel.shape[0]
    n = max(1, math.ceil(T / frames))
    padded = F.pad(mel.T[None], (overlap, n * frames - T + overlap), mode="replicate")[0].T  # (T', n_mels)
    segs = torch.stack([padded[i * frames : i * frames + frames + 2 * overlap] for i in range(n)])
    return segs, n


def unfold(segments: torch.Tensor, hop: int, frames: int, overlap: int, total_frames: int) -> torch.Tensor:
    """Cross-fade generated segments back into one signal.

    Shapes: segments (N, (frames + 2 * overlap) * hop) -> (total_frames * hop,)
    """
    N = segments.shape[0]
    seg_len, ov = frames * hop, overlap * hop
    out = torch.zeros((N * frames + 2 * overlap) * hop, dtype=segments.dtype)
    weight = torch.zeros_like(out)
    ramp = torch.ones(seg_len + 2 * ov, dtype=segments.dtype)
    if ov:
        fade = torch.linspace(0, 1, 2 * ov + 2, dtype=segments.dtype)[1:-1]
        ramp[: 2 * ov] = fade  # fade in across both overlap regions
        ramp[-2 * ov :] = fade.flip(0)
    for i in range(N):
        s = i * seg_len
        out[s : s + seg_len + 2 * ov] += segments[i] * ramp
        weight[s : s + seg_len + 2 * ov] += ramp
    out = out / weight.clamp(min=1e-6)
    return out[ov : ov + total_frames * hop]


class WaveNetVocoder:
    """A loaded WaveNet with the batched, folded generation the engine calls."""

    def __init__(self, model: WaveNet, speakers: list[str] | None = None):
        self.model = model.eval()
        self.cfg = model.cfg
        self.speakers = {s: i for i, s in enumerate(speakers or [])}

    @classmethod
    def from_checkpoint(cls, path) -> "WaveNetVocoder":
        from studio.checkpoint import config_from_dict, load_checkpoint, load_state

        blob = load_checkpoint(path)
        cfg = config_from_dict(WaveNetConfig, blob["config"])
        model = WaveNet(cfg)
        load_state(model, blob["state_dict"], str(path))
        return cls(model, [s["id"] for s in blob.get("speakers") or []])

    @torch.no_grad()
    def infer(self, mel: np.ndarray, voice: str | None = None, seed: int = 0) -> np.ndarray:
        """Shapes: mel (T_mel, n_mels) -> wav (T_mel * hop_length,). A voice the vocoder was not
        trained on is conditioned as its first speaker (the mel carries most of the identity)."""
        cfg = self.cfg
        m = torch.as_tensor(np.asarray(mel), dtype=torch.float32)
        frames = max(1, int(round(cfg.fold_seconds * cfg.sample_rate / cfg.hop_length)))
        overlap = max(0, int(round(cfg.fold_overlap_seconds * cfg.sample_rate / cfg.hop_length)))
        segs, n = fold(m, frames, overlap)
        spk = torch.full((n,), self.speakers.get(voice, 0), dtype=torch.long)
        q = self.model.generate(segs, spk, seed=seed)  # (N, seg_samples)
        wav = mu_law_decode(q, cfg.quantize_channels)
        return unfold(wav, cfg.hop_length, frames, overlap, len(m)).numpy().astype(np.float32)
