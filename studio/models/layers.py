"""Layers shared by the acoustic models (Tacotron and Transformer-TTS)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """True at valid positions. Shapes: lengths (B,) -> (B, T). Device follows `lengths`."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class Prenet(nn.Module):
    """Bottleneck of linear + ReLU + dropout layers in front of the decoder (Tacotron, 2017).

    Dropout stays on at inference: it is the only source of variation the autoregressive decoder
    sees, and without it the decoder copies its previous frame (Shen et al., 2018, section 2.3).
    """

    def __init__(self, in_dim: int, sizes: list[int], dropout: float = 0.5):
        super().__init__()
        dims = [in_dim] + sizes
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Shapes: x (..., in_dim) -> (..., sizes[-1]).

        A `generator` makes the dropout masks reproducible and independent of other threads'
        use of the global RNG (the engine serves several requests at once)."""
        for layer in self.layers:
            x = F.relu(layer(x))
            if generator is None:
                x = F.dropout(x, p=self.dropout, training=True)
            elif self.dropout > 0:
                keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.dropout
                x = x * keep / (1.0 - self.dropout)
        return x


class ConvNorm(nn.Sequential):
    """1-D convolution ("same" padding), batch norm, optional activation and dropout."""

    def __init__(self, c_in: int, c_out: int, kernel: int, activation: str | None = "relu", dropout: float = 0.0):
        layers: list[nn.Module] = [nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.BatchNorm1d(c_out)]
        if activation == "relu":
            layers.append(nn.ReLU())
        elif activation == "tanh":
            layers.append(nn.Tanh())
        if dropout:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class Postnet(nn.Module):
    """Five convolutions predicting a residual that sharpens the decoder's mel (Tacotron 2)."""

    def __init__(self, n_mels: int, channels: int = 256, kernel: int = 5, n_layers: int = 5, dropout: float = 0.5):
        super().__init__()
        dims = [n_mels] + [channels] * (n_layers - 1) + [n_mels]
        self.convs = nn.ModuleList(
            ConvNorm(a, b, kernel, activation="tanh" if i < n_layers - 1 else None, dropout=dropout)
            for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Shapes: mel (B, T_mel, n_mels) -> residual (B, T_mel, n_mels)"""
        x = mel.transpose(1, 2)  # (B, n_mels, T_mel)
        for conv in self.convs:
            x = conv(x)
        return x.transpose(1, 2)  # (B, T_mel, n_mels)


def guided_attention_loss(
    alignment: torch.Tensor, text_lengths: torch.Tensor, dec_lengths: torch.Tensor, sigma: float = 0.2
) -> torch.Tensor:
    """Penalise attention far from the diagonal (Tachibana et al., 2017, "DC-TTS", eq. 4).

    W[t, n] = 1 - exp(-(n/N - t/T)^2 / (2 sigma^2)); loss = mean of A * W over valid cells.

    Shapes:
        alignment: (B, T_dec, T_text) or (B, H, T_dec, T_text) for several heads
        text_lengths, dec_lengths: (B,)
    """
    B, T_dec, T_text = alignment.shape[0], alignment.shape[-2], alignment.shape[-1]
    dev = alignment.device
    n = torch.arange(T_text, device=dev)[None, None, :] / text_lengths[:, None, None].float()  # (B, 1, T_text)
    t = torch.arange(T_dec, device=dev)[None, :, None] / dec_lengths[:, None, None].float()  # (B, T_dec, 1)
    w = 1.0 - torch.exp(-((n - t) ** 2) / (2 * sigma**2))  # (B, T_dec, T_text)
    mask = lengths_to_mask(dec_lengths, T_dec)[:, :, None] & lengths_to_mask(text_lengths, T_text)[:, None, :]
    w = w * mask
    if alignment.dim() == 4:
        w, mask = w[:, None], mask[:, None].expand_as(alignment)  # broadcast over heads
    return (alignment * w).sum() / mask.sum().clamp(min=1)


def forward_sum_loss(
    alignment: torch.Tensor, text_lengths: torch.Tensor, dec_lengths: torch.Tensor, blank_logprob: float = -1.0
) -> torch.Tensor:
    """Monotonic alignment ("forward-sum") loss: minus the log-likelihood, summed over every
    monotonic path, that decoder steps read the symbols in order, each at least once (Badlani et
    al., 2021, "One TTS Alignment to Rule Them All"; CTC with the symbols as labels 1..N and a
    fixed-score blank). A head that jumps over a symbol or reads backwards pays for it, on long
    lines as on short ones, where the diagonal prior of `guided_attention_loss` barely notices.

    Shapes:
        alignment: (B, T_dec, T_text) or (B, H, T_dec, T_text) softmax weights over the text
        text_lengths, dec_lengths: (B,)
    Returns the mean over utterances (and heads) of the loss per symbol.
    """
    if alignment.dim() == 4:
        B, H = alignment.shape[:2]
        alignment = alignment.reshape(B * H, *alignment.shape[2:])
        text_lengths, dec_lengths = text_lengths.repeat_interleave(H), dec_lengths.repeat_interleave(H)
    B, T_dec, T_text = alignment.shape
    logp = torch.log(alignment.float().clamp(min=1e-8))
    logp = F.pad(logp, (1, 0), value=blank_logprob).log_softmax(-1)  # class 0 is the blank
    targets = torch.arange(1, T_text + 1, device=alignment.device).expand(B, T_text)
    return F.ctc_loss(logp.transpose(0, 1), targets, dec_lengths, text_lengths, blank=0, reduction="mean",
                      zero_infinity=True)


def masked_l1_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 + MSE over valid frames. Shapes: pred/target (B, T, C), mask (B, T)."""
    m = mask[:, :, None].to(pred.dtype)
    denom = m.sum().clamp(min=1) * pred.shape[-1]
    diff = (pred - target) * m
    return diff.abs().sum() / denom + (diff**2).sum() / denom


def decoder_losses(mel_before: torch.Tensor, mel_after: torch.Tensor, mel: torch.Tensor, stop_logits: torch.Tensor,
                   mel_lengths: torch.Tensor, r: int, stop_pos_weight: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mel reconstruction (before and after the postnet) and stop-token losses of an
    autoregressive decoder that emits `r` frames per step.

    Shapes: mel_* and mel (B, T_dec * r, n_mels), stop_logits (B, T_dec), mel_lengths (B,).
    Returns mel_loss, stop_loss and the decoder lengths (B,) in steps.
    """
    T_dec = stop_logits.shape[1]
    dec_lengths = torch.div(mel_lengths + r - 1, r, rounding_mode="floor")
    frame_mask = lengths_to_mask(mel_lengths, T_dec * r)
    step_mask = lengths_to_mask(dec_lengths, T_dec)
    stop_target = (torch.arange(T_dec, device=mel.device)[None, :] >= (dec_lengths[:, None] - 1)).float()
    mel_loss = masked_l1_mse(mel_before, mel, frame_mask) + masked_l1_mse(mel_after, mel, frame_mask)
    stop_loss = F.binary_cross_entropy_with_logits(
        stop_logits[step_mask], stop_target[step_mask], pos_weight=torch.tensor(stop_pos_weight, device=mel.device))
    return mel_loss, stop_loss, dec_lengths


def monotonic_durations(alignment: torch.Tensor) -> torch.Tensor | None:
    """The most likely monotonic reading of an attention matrix, as steps per symbol.

    Monotonic alignment search (Kim et al., 2020, "Glow-TTS"): among the paths that start on the
    first symbol, end on the last, and at each decoder step stay or move on by one symbol, take
    the one with the largest summed log weight. Every symbol gets at least one step, and the
    durations sum to T_dec. Returns None when there are fewer steps than symbols.

    Shapes: alignment (T_dec, T_text) softmax weights -> durations (T_text,) int64.
    """
    T_dec, T_text = alignment.shape
    if T_dec < T_text or T_text == 0:
        return None
    logp = torch.log(alignment.detach().float().cpu().clamp(min=1e-8))
    score = torch.full((T_text,), float("-inf"))
    score[0] = logp[0, 0]
    moved = torch.zeros(T_dec, T_text, dtype=torch.bool)  # reached (t, j) from (t - 1, j - 1)
    for t in range(1, T_dec):
        from_prev = torch.cat([torch.tensor([float("-inf")]), score[:-1]])
        moved[t] = from_prev > score
        score = torch.maximum(score, from_prev) + logp[t]
    durations = torch.zeros(T_text, dtype=torch.long)
    j = T_text - 1
    for t in range(T_dec - 1, -1, -1):
        durations[j] += 1
        if t > 0 and moved[t, j]:
            j -= 1
    return durations


class DurationPredictor(nn.Module):
    """How many decoder steps each symbol lasts, from the encoder's output (FastSpeech, Ren et al.,
    2019, section 3.3: two convolutions with ReLU, layer norm and dropout, then a linear layer).
    Predicts log(1 + steps)."""

    def __init__(self, d_in: int, channels: int, kernel: int = 3, dropout: float = 0.1):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(d_in, channels, kernel, padding=kernel // 2),
                                    nn.Conv1d(channels, channels, kernel, padding=kernel // 2)])
        self.norms = nn.ModuleList([nn.LayerNorm(channels), nn.LayerNorm(channels)])
        self.dropout = dropout
        self.out = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Shapes: x (B, T_text, d_in), mask (B, T_text) True = valid -> log(1 + steps) (B, T_text)."""
        if mask is not None:
            x = x * mask[:, :, None]
        for conv, norm in zip(self.convs, self.norms):
            x = norm(F.relu(conv(x.transpose(1, 2)).transpose(1, 2)))
            x = F.dropout(x, self.dropout, self.training)
        return self.out(x).squeeze(-1)

    @staticmethod
    def to_steps(log_steps: torch.Tensor, mask: torch.Tensor | None = None, scale: float = 1.0) -> torch.Tensor:
        """Whole decoder steps per symbol from predicted log(1 + steps), times `scale`, at least one
        each. Rounded on the running total, so a line lasts the rounded sum of the real-valued
        steps (rounding each symbol alone can drop up to half a step per symbol).

        Shapes: log_steps (B, T_text), mask (B, T_text) True = valid -> (B, T_text) int64, 0 where masked.
        """
        steps = torch.expm1(log_steps).clamp(min=0) * scale
        if mask is not None:
            steps = steps * mask
        ends = torch.round(torch.cumsum(steps, dim=-1))
        out = torch.diff(ends, dim=-1, prepend=torch.zeros_like(ends[..., :1])).clamp(min=1)
        return (out if mask is None else out * mask).long()
