"""Transformer-TTS: self-attention encoder and decoder for mel synthesis.

Li et al., 2019, "Neural Speech Synthesis with Transformer Network": a convolutional encoder
prenet and the Tacotron decoder prenet, sinusoidal positional encodings scaled by a learned
alpha, multi-head self-attention and position-wise feed-forward layers in encoder and decoder
stacks, encoder-decoder attention, and linear layers to mel frames and a stop token, followed
by the Tacotron 2 postnet. Additions for this project: a speaker embedding, a reduction factor
`r` (frames per decoder step, for CPU training), a diagonal (guided) attention loss on the
encoder-decoder heads, cached keys and values at inference, and a monotonic guard steered by
the head the engine reads word timings from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.layers import (ConvNorm, DurationPredictor, Postnet, Prenet, decoder_losses, forward_sum_loss,
                                  guided_attention_loss, lengths_to_mask, monotonic_durations)
from studio.models.tacotron import AcousticOutput


@dataclass
class TransformerTTSConfig:
    n_symbols: int = 0  # derived from the Vocab
    n_mels: int = 80  # derived from the AudioConfig
    n_speakers: int = 1  # derived from the corpus
    frontend: str = "phonemes"  # input symbols: "phonemes" or "characters"
    d_model: int = 256  # width of every attention layer
    n_heads: int = 4
    encoder_layers: int = 4
    decoder_layers: int = 4
    ffn_dim: int = 1024  # hidden size of the position-wise feed-forward layers
    dropout: float = 0.1
    encoder_prenet_convs: int = 3
    encoder_prenet_kernel: int = 5
    prenet_sizes: list[int] = field(default_factory=lambda: [256, 256])  # decoder prenet
    prenet_dropout: float = 0.5  # kept on at inference, as in Tacotron
    speaker_dim: int = 32
    r: int = 2  # mel frames per decoder step
    postnet_channels: int = 256
    postnet_layers: int = 5
    postnet_kernel: int = 5
    max_positions: int = 4096  # longest sequence the positional table covers
    # inference
    stop_threshold: float = 0.5
    max_steps_per_token: float = 4.0  # length limit: decoder steps per input symbol (+ 20)
    window_back: int = 3  # monotonic guard around the timing head's last peak
    window_ahead: int = 6
    max_advance: int = 0  # the guard's peak moves at most this many symbols a step (0: no limit)
    eos_hold_steps: int = 8  # stop after this many steps attending the final symbol
    timing_layer: int = -1  # the encoder-decoder head whose alignment gives word timings
    timing_head: int = 0
    # duration guide (studio.training.durations adds it to a trained model)
    duration_channels: int = 0  # width of the duration predictor (0: none; the guard follows the timing head)
    duration_window: int = 1  # every head sees the symbols within this many of the predicted position
    duration_weight: float = 1.0  # its loss (log steps, MSE) when training a model that has one
    duration_scale: float = 1.0  # predicted steps are multiplied by this (the fit's length calibration)
    # loss
    guided_attention_sigma: float = 0.2
    guided_attention_weight: float = 5.0  # on every encoder-decoder head of `guided_layers`
    guided_layers: list[int] = field(default_factory=lambda: [-2, -1])
    forward_sum_weight: float = 0.0  # monotonic alignment loss on the same heads (0: off)
    stop_pos_weight: float = 5.0
    stop_weight: float = 1.0


class PositionalEncoding(nn.Module):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)), added with a
    learned scale alpha (Li et al., 2019, section 3.3)."""

    def __init__(self, d_model: int, max_positions: int):
        super().__init__()
        pos = torch.arange(max_positions, dtype=torch.float32)[:, None]
        div = torch.pow(10000.0, torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
        pe = torch.zeros(max_positions, d_model)
        pe[:, 0::2] = torch.sin(pos / div)
        pe[:, 1::2] = torch.cos(pos / div)
        self.register_buffer("pe", pe, persistent=False)
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Shapes: x (B, T, d_model) -> (B, T, d_model); positions start at `offset`."""
        return x + self.alpha * self.pe[offset : offset + x.shape[1]]


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over `n_heads` heads (Vaswani et al., 2017), returning the
    per-head weights so the UI can show every head."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        assert d_model % n_heads == 0
        self.h, self.d = n_heads, d_model // n_heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def split(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.h, self.d).transpose(1, 2)  # (B, H, T, d)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, kv: tuple[torch.Tensor, torch.Tensor] | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Shapes: query (B, T_q, D), key/value (B, T_k, D) or precomputed `kv` (B, H, T_k, d) each;
        mask broadcastable to (B, H, T_q, T_k), True = may attend.
        Returns output (B, T_q, D), weights (B, H, T_q, T_k), and the (k, v) used."""
        q = self.split(self.q(query))  # (B, H, T_q, d)
        if kv is None:
            kv = (self.split(self.k(key)), self.split(self.v(value)))  # (B, H, T_k, d) each
        k, v = kv
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d)  # (B, H, T_q, T_k)
        if mask is not None:
            scores = scores.masked_fill(~mask, -1e4)
        weights = torch.softmax(scores, dim=-1)
        out = F.dropout(weights, self.dropout, self.training) @ v  # (B, H, T_q, d)
        out = out.transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)  # (B, T_q, D)
        return self.o(out), weights, kv


class FeedForward(nn.Sequential):
    """Position-wise two-layer feed-forward network."""

    def __init__(self, d_model: int, hidden: int, dropout: float):
        super().__init__(nn.Linear(d_model, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, d_model))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: TransformerTTSConfig):
        super().__init__()
        self.attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)
        self.norm1, self.norm2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pre-norm residual blocks (more stable than post-norm for small batches).
        Shapes: x (B, T_text, D), mask (B, 1, 1, T_text)."""
        h = self.norm1(x)
        a, _, _ = self.attn(h, h, h, mask)
        x = x + self.drop(a)
        return x + self.drop(self.ffn(self.norm2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TransformerTTSConfig):
        super().__init__()
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.cross_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_dim, cfg.dropout)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(cfg.d_model) for _ in range(3))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, memory_kv, self_mask, cross_mask, cache=None):
        """Shapes: x (B, T_dec, D); memory_kv: the encoder's (k, v) for this layer; self_mask
        (1, 1, T_dec, T_all) causal; cross_mask broadcastable to (B, H, T_dec, T_text).
        `cache` (k, v) holds earlier steps' self-attention keys and values at inference."""
        h = self.norm1(x)
        q_kv = (self.self_attn.split(self.self_attn.k(h)), self.self_attn.split(self.self_attn.v(h)))
        if cache is not None:
            q_kv = (torch.cat([cache[0], q_kv[0]], dim=2), torch.cat([cache[1], q_kv[1]], dim=2))
        a, _, new_cache = self.self_attn(h, mask=self_mask, kv=q_kv)
        x = x + self.drop(a)
        c, weights, _ = self.cross_attn(self.norm2(x), mask=cross_mask, kv=memory_kv)
        x = x + self.drop(c)
        return x + self.drop(self.ffn(self.norm3(x))), weights, new_cache


class TransformerTTS(nn.Module):
    def __init__(self, cfg: TransformerTTSConfig):
        super().__init__()
        if cfg.n_symbols <= 0:
            raise ValueError("TransformerTTSConfig.n_symbols must come from the Vocab")
        self.cfg = cfg
        D = cfg.d_model
        self.embedding = nn.Embedding(cfg.n_symbols, D, padding_idx=0)
        self.encoder_prenet = nn.ModuleList(
            ConvNorm(D, D, cfg.encoder_prenet_kernel, "relu", cfg.dropout) for _ in range(cfg.encoder_prenet_convs))
        self.encoder_proj = nn.Linear(D, D)
        self.encoder_pos = PositionalEncoding(D, cfg.max_positions)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.encoder_norm = nn.LayerNorm(D)
        self.speaker_embedding = nn.Embedding(max(1, cfg.n_speakers), cfg.speaker_dim)
        self.speaker_proj = nn.Linear(cfg.speaker_dim, D)
        self.decoder_prenet = Prenet(cfg.n_mels, cfg.prenet_sizes, cfg.prenet_dropout)
        self.decoder_proj = nn.Linear(cfg.prenet_sizes[-1], D)
        self.decoder_pos = PositionalEncoding(D, cfg.max_positions)
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        self.decoder_norm = nn.LayerNorm(D)
        self.mel_proj = nn.Linear(D, cfg.n_mels * cfg.r)
        self.stop_proj = nn.Linear(D, 1)
        self.postnet = Postnet(cfg.n_mels, cfg.postnet_channels, cfg.postnet_kernel, cfg.postnet_layers)
        self.duration_predictor = DurationPredictor(D, cfg.duration_channels) if cfg.duration_channels > 0 else None
        self.register_buffer("mel_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("mel_std", torch.ones(cfg.n_mels))

    @property
    def timing_head(self) -> tuple[int, int]:
        return (self.cfg.timing_layer % self.cfg.decoder_layers, self.cfg.timing_head)

    def set_mel_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mel_mean.copy_(mean)
        self.mel_std.copy_(std.clamp(min=1e-3))

    def encode(self, text: torch.Tensor, text_lengths: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Shapes: text (B, T_text), speaker (B,) -> memory (B, T_text, D)"""
        x = self.embedding(text).transpose(1, 2)  # (B, D, T_text)
        for conv in self.encoder_prenet:
            x = conv(x)
        x = self.encoder_proj(x.transpose(1, 2))  # (B, T_text, D)
        x = self.encoder_pos(x)
        mask = lengths_to_mask(text_lengths, text.shape[1])[:, None, None, :]  # (B, 1, 1, T_text)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x) + self.speaker_proj(self.speaker_embedding(speaker))[:, None, :]

    def _memory_kv(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(layer.cross_attn.split(layer.cross_attn.k(memory)), layer.cross_attn.split(layer.cross_attn.v(memory)))
                for layer in self.decoder]

    def decode(self, frames_in: torch.Tensor, memory_kv, cross_mask, offset: int = 0, caches=None,
               generator: torch.Generator | None = None):
        """Shapes: frames_in (B, T_dec, n_mels) -> hidden (B, T_dec, D), cross weights per layer
        [(B, H, T_dec, T_text)], new caches."""
        x = self.decoder_proj(self.decoder_prenet(frames_in, generator))  # (B, T_dec, D)
        x = self.decoder_pos(x, offset)
        T_dec = x.shape[1]
        T_all = offset + T_dec
        causal = torch.ones(T_all, T_all, dtype=torch.bool, device=x.device).tril()[offset:][None, None]
        weights, new_caches = [], []
        for i, layer in enumerate(self.decoder):
            x, w, kv = layer(x, memory_kv[i], causal, cross_mask, None if caches is None else caches[i])
            weights.append(w)
            new_caches.append(kv)
        return self.decoder_norm(x), weights, new_caches

    # ------------------------------------------------------------------ training

    def forward(self, batch: dict) -> dict:
        """Teacher-forced pass with losses; same batch contract as Tacotron.

        Shapes: returns mel_before / mel_after (B, T_dec * r, n_mels), alignment
        (B, L, H, T_dec, T_text), stop_logits (B, T_dec), and the losses.
        """
        cfg, r = self.cfg, self.cfg.r
        text, text_lengths = batch["text"], batch["text_lengths"]
        mel = (batch["mel"] - self.mel_mean) / self.mel_std
        mel_lengths = batch["mel_lengths"]
        B, T_mel, n_mels = mel.shape
        T_dec = math.ceil(T_mel / r)
        mel = F.pad(mel, (0, 0, 0, T_dec * r - T_mel))
        memory = self.encode(text, text_lengths, batch["speaker"])
        prev = torch.cat([mel.new_zeros(B, 1, n_mels), mel[:, r - 1 :: r][:, :-1]], dim=1)  # (B, T_dec, n_mels)
        cross_mask = lengths_to_mask(text_lengths, text.shape[1])[:, None, None, :]
        hidden, weights, _ = self.decode(prev, self._memory_kv(memory), cross_mask)
        mel_before = self.mel_proj(hidden).view(B, T_dec * r, n_mels)
        mel_after = mel_before + self.postnet(mel_before)
        stop_logits = self.stop_proj(hidden).squeeze(-1)  # (B, T_dec)
        alignment = torch.stack(weights, dim=1)  # (B, L, H, T_dec, T_text)

        mel_loss, stop_loss, dec_lengths = decoder_losses(mel_before, mel_after, mel, stop_logits, mel_lengths, r,
                                                         cfg.stop_pos_weight)
        ga = mel.new_zeros(())
        if cfg.guided_attention_weight > 0:
            for li in cfg.guided_layers:
                ga = ga + guided_attention_loss(alignment[:, li], text_lengths, dec_lengths,
                                                cfg.guided_attention_sigma)
            ga = ga / len(cfg.guided_layers)
        fs = mel.new_zeros(())
        if cfg.forward_sum_weight > 0:  # one call: the guided layers' heads side by side
            fs = forward_sum_loss(alignment[:, cfg.guided_layers].flatten(1, 2), text_lengths, dec_lengths)
        loss = mel_loss + cfg.stop_weight * stop_loss + cfg.guided_attention_weight * ga + cfg.forward_sum_weight * fs
        dur = mel.new_zeros(())
        if self.duration_predictor is not None:
            timing = alignment[:, self.timing_head[0], self.timing_head[1]]
            dur = self.duration_loss(memory, text_lengths, timing, dec_lengths)
            loss = loss + cfg.duration_weight * dur
        return {"loss": loss, "mel_loss": mel_loss.detach(), "stop_loss": stop_loss.detach(),
                "attn_loss": ga.detach(), "align_loss": fs.detach(), "duration_loss": dur.detach(),
                "mel_before": mel_before * self.mel_std + self.mel_mean,
                "mel_after": mel_after * self.mel_std + self.mel_mean,
                "alignment": alignment[:, self.timing_head[0], self.timing_head[1]], "stop_logits": stop_logits,
                "memory": memory.detach()}

    def duration_loss(self, memory: torch.Tensor, text_lengths: torch.Tensor, timing: torch.Tensor,
                      dec_lengths: torch.Tensor) -> torch.Tensor:
        """MSE of the predicted log(1 + steps) against the timing head's own monotonic reading of
        each utterance (`monotonic_durations`). The predictor learns from the model and never
        changes it: the encoder output is detached.

        Shapes: memory (B, T_text, D), timing (B, T_dec, T_text), lengths (B,)
        """
        target = torch.zeros(memory.shape[:2], device=memory.device)
        valid = torch.zeros(memory.shape[:2], dtype=torch.bool, device=memory.device)
        for b in range(memory.shape[0]):
            n, t = int(text_lengths[b]), int(dec_lengths[b])
            d = monotonic_durations(timing[b, :t, :n])
            if d is not None:
                target[b, :n] = torch.log1p(d.float()).to(memory.device)
                valid[b, :n] = True
        if not valid.any():
            return memory.new_zeros(())
        mask = lengths_to_mask(text_lengths, memory.shape[1])
        pred = self.duration_predictor(memory.detach(), mask)
        return F.mse_loss(pred[valid], target[valid])

    @torch.no_grad()
    def predict_durations(self, memory: torch.Tensor) -> torch.Tensor:
        """Decoder steps per symbol, at least one each. Shapes: memory (1, T_text, D) -> (T_text,) int64."""
        return self.duration_predictor.to_steps(self.duration_predictor(memory), scale=self.cfg.duration_scale)[0]

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def infer(self, ids: torch.Tensor, speaker: int = 0, monotonic: bool = True, window_ahead: int | None = None,
              max_steps: int | None = None, seed: int = 0, use_cache: bool = True,
              max_advance: int | None = None, guide: str = "peak") -> AcousticOutput:
        """Free-running synthesis of one utterance. With `use_cache`, each step runs the decoder
        on the one new position against cached keys and values; without, it reruns the whole
        prefix (the reference the cache is tested against).

        The monotonic guard masks every encoder-decoder head to a window around the timing
        head's furthest peak. With `max_advance`, that peak moves at most so many symbols a step,
        so one jumpy step cannot drag the window (and with it every head) past unread symbols.

        `guide` says what moves the window: "peak" (the timing head, as above) or "duration" (for a
        model with a duration predictor): the window is centred on the symbol the predicted
        durations say is due at this step, `duration_window` symbols either side, so no head can
        race ahead of the text or fall back however it attends; the decoder still says when to
        stop once the last symbol is due. The engine asks for it when the model's own take fails.

        Shapes: ids (T_text,) -> mel (T_mel, n_mels), alignment (L, H, T_dec, T_text),
        timing_alignment (T_dec, T_text), stop (T_dec,)
        """
        cfg, r = self.cfg, self.cfg.r
        dev = self.embedding.weight.device
        gen = torch.Generator(device=dev).manual_seed(seed)
        ids = ids.to(dev)[None, :]
        T_text = ids.shape[1]
        memory = self.encode(ids, torch.tensor([T_text], device=dev), torch.tensor([speaker], device=dev))
        memory_kv = self._memory_kv(memory)
        limit = max_steps or int(20 + cfg.max_steps_per_token * T_text)
        limit = min(limit, cfg.max_positions)
        ahead = cfg.window_ahead if window_ahead is None else window_ahead
        advance = cfg.max_advance if max_advance is None else max_advance
        positions = torch.arange(T_text, device=dev)
        tl, th = self.timing_head
        if guide not in ("peak", "duration") or (guide == "duration" and self.duration_predictor is None):
            raise ValueError(f"guide {guide!r} is not available for this model")
        due = None  # with the duration guide: the symbol due at each step
        if monotonic and guide == "duration":
            steps = self.predict_durations(memory)
            due = torch.repeat_interleave(torch.arange(T_text, device=dev), steps.to(dev))
            limit = min(max_steps or len(due) + cfg.eos_hold_steps, cfg.max_positions)  # the durations set the length
        inputs = memory.new_zeros(1, 1, cfg.n_mels)  # the go frame
        frames, stops, steps_weights = [], [], []
        caches = None
        peak, at_end, hit_limit = 0, 0, True
        masks: list[torch.Tensor] = []
        for step in range(limit):
            window = torch.ones(T_text, dtype=torch.bool, device=dev)
            if due is not None:
                centre = int(due[min(step, len(due) - 1)])
                window = (positions - centre).abs() <= min(cfg.duration_window, ahead)
            elif monotonic:
                window = (positions >= peak - cfg.window_back) & (positions <= peak + ahead)
            masks.append(window)
            if use_cache:
                cross_mask = window[None, None, None, :]
                hidden, weights, caches = self.decode(inputs[:, -1:], memory_kv, cross_mask, offset=step,
                                                      caches=caches, generator=gen)
            else:
                cross_mask = torch.stack(masks)[None, None]  # (1, 1, step+1, T_text): each row's own window
                hidden, weights, _ = self.decode(inputs, memory_kv, cross_mask, generator=gen)
                weights = [w[:, :, -1:] for w in weights]
                hidden = hidden[:, -1:]
            f = self.mel_proj(hidden[:, -1])  # (1, r * n_mels)
            frames.append(f)
            stops.append(torch.sigmoid(self.stop_proj(hidden[:, -1])).view(1))
            w = torch.stack([x[0, :, -1] for x in weights])  # (L, H, T_text)
            steps_weights.append(w)
            p = int(w[tl, th].argmax())
            if not monotonic:
                peak = p
            else:
                peak = max(peak, p) if advance <= 0 else min(max(peak, p), peak + advance)
            inputs = torch.cat([inputs, f.view(1, r, cfg.n_mels)[:, -1:]], dim=1)
            at_end = at_end + 1 if peak >= T_text - 1 else 0
            if due is not None:  # the text is read when its last symbol is due
                if (float(stops[-1]) > cfg.stop_threshold and step >= len(due) - 2) or step + 1 >= limit:
                    hit_limit = False
                    break
            elif float(stops[-1]) > cfg.stop_threshold or at_end > cfg.eos_hold_steps:
                hit_limit = False
                break
        mel_before = torch.cat(frames).view(1, -1, cfg.n_mels)
        mel_after = mel_before + self.postnet(mel_before)
        alignment = torch.stack(steps_weights, dim=2)  # (L, H, T_dec, T_text)
        out = AcousticOutput(
            mel=(mel_after * self.mel_std + self.mel_mean)[0],
            mel_before=(mel_before * self.mel_std + self.mel_mean)[0],
            alignment=alignment, stop=torch.cat(stops), frames_per_step=r, hit_limit=hit_limit,
            timing_alignment=alignment[tl, th],
        )
        return out
