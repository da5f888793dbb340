"""Tacotron: attention-based sequence-to-sequence TTS.

Wang et al., 2017, "Tacotron: Towards End-to-End Speech Synthesis", with the encoder, the
location-sensitive attention and the postnet of Shen et al., 2018 ("Tacotron 2"), a speaker
embedding for several voices, and a reduction factor `r` (frames emitted per decoder step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.layers import (
    ConvNorm,
    Postnet,
    Prenet,
    decoder_losses,
    guided_attention_loss,
    lengths_to_mask,
)


@dataclass
class TacotronConfig:
    n_symbols: int = 0  # derived from the Vocab
    n_mels: int = 80  # derived from the AudioConfig
    n_speakers: int = 1  # derived from the corpus
    frontend: str = "phonemes"  # input symbols: "phonemes" (espeak IPA) or "characters"
    embed_dim: int = 256  # symbol embedding size
    encoder_convs: int = 3  # number of 1-D conv layers before the BiLSTM
    encoder_kernel: int = 5  # their kernel width (symbols)
    encoder_dim: int = 256  # conv channels and BiLSTM output (two directions together)
    encoder_dropout: float = 0.5
    speaker_dim: int = 32  # speaker embedding, appended to every encoder state
    attention: str = "location"  # score function: "location" (Tacotron 2) or "content" (Bahdanau)
    attention_dim: int = 128  # size of the additive attention's hidden layer
    location_filters: int = 32  # conv filters over previous/cumulative attention
    location_kernel: int = 31  # their width
    prenet_sizes: list[int] = field(default_factory=lambda: [256, 128])
    prenet_dropout: float = 0.5  # kept on at inference
    attention_rnn_dim: int = 512
    decoder_rnn_dim: int = 512
    rnn_dropout: float = 0.1  # dropout on the LSTM states between steps
    r: int = 4  # mel frames per decoder step
    postnet_channels: int = 256
    postnet_layers: int = 5
    postnet_kernel: int = 5
    # inference
    stop_threshold: float = 0.5  # stop when the stop token's probability passes this
    max_steps_per_token: float = 4.0  # length limit: decoder steps per input symbol (+ 20)
    window_back: int = 2  # monotonic constraint: symbols behind the last peak that may be attended
    window_ahead: int = 4  # ... and ahead of it
    eos_hold_steps: int = 6  # stop after this many steps attending the final symbol (runaway guard)
    # loss
    guided_attention_sigma: float = 0.2  # width of the diagonal prior
    guided_attention_weight: float = 1.0  # 0 disables the guided attention loss
    stop_pos_weight: float = 5.0  # the stop frame is rare: weigh its BCE up
    stop_weight: float = 1.0


@dataclass
class AcousticOutput:
    """What acoustic models' `infer` returns (one utterance)."""

    mel: torch.Tensor  # (T_mel, n_mels) after the postnet, log-mel
    mel_before: torch.Tensor  # (T_mel, n_mels) decoder output before the postnet
    alignment: torch.Tensor  # (T_dec, T_text) or (L, H, T_mel, T_text)
    stop: torch.Tensor  # (T_dec,) stop probabilities
    frames_per_step: int = 1  # decoder steps -> mel frames
    hit_limit: bool = False  # decoding ended at the length limit, not by the stop token
    timing_alignment: torch.Tensor | None = None  # (T_dec, T_text) when `alignment` has several heads


class Encoder(nn.Module):
    """Conv stack + bidirectional LSTM over symbol embeddings (Tacotron 2, section 2.2)."""

    def __init__(self, cfg: TacotronConfig):
        super().__init__()
        dims = [cfg.embed_dim] + [cfg.encoder_dim] * cfg.encoder_convs
        self.convs = nn.ModuleList(
            ConvNorm(a, b, cfg.encoder_kernel, "relu", cfg.encoder_dropout) for a, b in zip(dims[:-1], dims[1:])
        )
        self.lstm = nn.LSTM(cfg.encoder_dim, cfg.encoder_dim // 2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Shapes: x (B, T_text, embed_dim), lengths (B,) -> (B, T_text, encoder_dim)"""
        x = x.transpose(1, 2)  # (B, embed_dim, T_text)
        for conv in self.convs:
            x = conv(x)
        x = x.transpose(1, 2)  # (B, T_text, encoder_dim)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


class LocationLayer(nn.Module):
    """Features of where attention was (previous and cumulative weights) for the score."""

    def __init__(self, filters: int, kernel: int, attention_dim: int):
        super().__init__()
        self.conv = nn.Conv1d(2, filters, kernel, padding=kernel // 2, bias=False)
        self.dense = nn.Linear(filters, attention_dim, bias=False)

    def forward(self, weights_cat: torch.Tensor) -> torch.Tensor:
        """Shapes: (B, 2, T_text) -> (B, T_text, attention_dim)"""
        return self.dense(self.conv(weights_cat).transpose(1, 2))


class Attention(nn.Module):
    """Additive attention: score e = v^T tanh(W q + V h [+ U f]), weights = softmax(e),
    context = sum weights * h (Bahdanau et al., 2015; location features from Chorowski et al., 2015).
    """

    def __init__(self, query_dim: int, memory_dim: int, cfg: TacotronConfig):
        super().__init__()
        self.query = nn.Linear(query_dim, cfg.attention_dim, bias=False)
        self.memory = nn.Linear(memory_dim, cfg.attention_dim, bias=False)
        self.v = nn.Linear(cfg.attention_dim, 1, bias=True)
        self.location = (
            LocationLayer(cfg.location_filters, cfg.location_kernel, cfg.attention_dim)
            if cfg.attention == "location"
            else None
        )

    def score(self, query: torch.Tensor, processed_memory: torch.Tensor, weights_cat: torch.Tensor) -> torch.Tensor:
        """Shapes: query (B, query_dim), processed_memory (B, T_text, A), weights_cat (B, 2, T_text) -> (B, T_text)"""
        e = self.query(query)[:, None, :] + processed_memory  # (B, T_text, A)
        if self.location is not None:
            e = e + self.location(weights_cat)
        return self.v(torch.tanh(e)).squeeze(-1)  # (B, T_text)


class Tacotron(nn.Module):
    def __init__(self, cfg: TacotronConfig):
        super().__init__()
        if cfg.n_symbols <= 0:
            raise ValueError("TacotronConfig.n_symbols must come from the Vocab")
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.n_symbols, cfg.embed_dim, padding_idx=0)
        self.encoder = Encoder(cfg)
        self.speaker_embedding = nn.Embedding(max(1, cfg.n_speakers), cfg.speaker_dim)
        memory_dim = cfg.encoder_dim + cfg.speaker_dim
        self.prenet = Prenet(cfg.n_mels, cfg.prenet_sizes, cfg.prenet_dropout)
        self.attention_rnn = nn.LSTMCell(cfg.prenet_sizes[-1] + memory_dim, cfg.attention_rnn_dim)
        self.attention = Attention(cfg.attention_rnn_dim, memory_dim, cfg)
        self.decoder_rnn = nn.LSTMCell(cfg.attention_rnn_dim + memory_dim, cfg.decoder_rnn_dim)
        self.mel_proj = nn.Linear(cfg.decoder_rnn_dim + memory_dim, cfg.n_mels * cfg.r)
        self.stop_proj = nn.Linear(cfg.decoder_rnn_dim + memory_dim, 1)
        self.postnet = Postnet(cfg.n_mels, cfg.postnet_channels, cfg.postnet_kernel, cfg.postnet_layers)
        # Per-band statistics of the training mels; the network works on standardised mels.
        self.register_buffer("mel_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("mel_std", torch.ones(cfg.n_mels))

    # ------------------------------------------------------------------ helpers

    def set_mel_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mel_mean.copy_(mean)
        self.mel_std.copy_(std.clamp(min=1e-3))

    def _norm(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.mel_mean) / self.mel_std

    def _denorm(self, mel: torch.Tensor) -> torch.Tensor:
        return mel * self.mel_std + self.mel_mean

    def encode(self, text: torch.Tensor, text_lengths: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Shapes: text (B, T_text), speaker (B,) -> memory (B, T_text, encoder_dim + speaker_dim)"""
        enc = self.encoder(self.embedding(text), text_lengths)  # (B, T_text, encoder_dim)
        spk = self.speaker_embedding(speaker)[:, None, :].expand(-1, enc.shape[1], -1)  # (B, T_text, speaker_dim)
        return torch.cat([enc, spk], dim=-1)

    def _init_state(self, memory: torch.Tensor) -> dict:
        B, T_text, D = memory.shape
        z = memory.new_zeros
        return {
            "att_h": z(B, self.cfg.attention_rnn_dim),
            "att_c": z(B, self.cfg.attention_rnn_dim),
            "dec_h": z(B, self.cfg.decoder_rnn_dim),
            "dec_c": z(B, self.cfg.decoder_rnn_dim),
            "weights": z(B, T_text),
            "cum_weights": z(B, T_text),
            "context": z(B, D),
        }

    def _step(
        self,
        prenet_out: torch.Tensor,
        state: dict,
        memory: torch.Tensor,
        processed_memory: torch.Tensor,
        mask: torch.Tensor,
        window: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoder step. Shapes: prenet_out (B, P), memory (B, T_text, D), mask (B, T_text)
        -> frames (B, r * n_mels), stop logit (B,). Updates `state` in place."""
        p = self.cfg.rnn_dropout if self.training else 0.0
        att_in = torch.cat([prenet_out, state["context"]], dim=-1)
        att_h, att_c = self.attention_rnn(att_in, (state["att_h"], state["att_c"]))
        att_h = F.dropout(att_h, p, self.training)
        weights_cat = torch.stack([state["weights"], state["cum_weights"]], dim=1)  # (B, 2, T_text)
        energies = self.attention.score(att_h, processed_memory, weights_cat)  # (B, T_text)
        allowed = mask if window is None else mask & window
        energies = energies.masked_fill(~allowed, -1e4)
        weights = torch.softmax(energies, dim=-1)  # (B, T_text)
        context = torch.bmm(weights[:, None, :], memory).squeeze(1)  # (B, D)
        dec_in = torch.cat([att_h, context], dim=-1)
        dec_h, dec_c = self.decoder_rnn(dec_in, (state["dec_h"], state["dec_c"]))
        dec_h = F.dropout(dec_h, p, self.training)
        out_in = torch.cat([dec_h, context], dim=-1)
        state.update(
            att_h=att_h, att_c=att_c, dec_h=dec_h, dec_c=dec_c, weights=weights,
            cum_weights=state["cum_weights"] + weights, context=context,
        )
        return self.mel_proj(out_in), self.stop_proj(out_in).squeeze(-1)

    # ------------------------------------------------------------------ training

    def forward(self, batch: dict) -> dict:
        """Teacher-forced pass with losses.

        Shapes:
            batch["text"] (B, T_text), batch["text_lengths"] (B,), batch["speaker"] (B,),
            batch["mel"] (B, T_mel, n_mels) log-mel, batch["mel_lengths"] (B,)
            returns mel_before / mel_after (B, T_mel', n_mels) with T_mel' = ceil(T_mel / r) * r,
            alignment (B, T_dec, T_text), stop_logits (B, T_dec), and the losses.
        """
        cfg, r = self.cfg, self.cfg.r
        text, text_lengths = batch["text"], batch["text_lengths"]
        mel, mel_lengths = self._norm(batch["mel"]), batch["mel_lengths"]
        B, T_mel, n_mels = mel.shape
        T_dec = math.ceil(T_mel / r)
        mel = F.pad(mel, (0, 0, 0, T_dec * r - T_mel))  # (B, T_dec * r, n_mels)
        memory = self.encode(text, text_lengths, batch["speaker"])
        processed = self.attention.memory(memory)  # (B, T_text, A)
        text_mask = lengths_to_mask(text_lengths, text.shape[1])
        # Decoder input at step k is the last frame of step k-1 (a zero "go" frame at k = 0).
        prev = torch.cat([mel.new_zeros(B, 1, n_mels), mel[:, r - 1 :: r][:, :-1]], dim=1)  # (B, T_dec, n_mels)
        prenet_out = self.prenet(prev)  # (B, T_dec, P)
        state = self._init_state(memory)
        frames, stops, aligns = [], [], []
        for k in range(T_dec):
            f, s = self._step(prenet_out[:, k], state, memory, processed, text_mask)
            frames.append(f)
            stops.append(s)
            aligns.append(state["weights"])
        mel_before = torch.stack(frames, dim=1).view(B, T_dec * r, n_mels)  # (B, T_dec * r, n_mels)
        mel_after = mel_before + self.postnet(mel_before)
        stop_logits = torch.stack(stops, dim=1)  # (B, T_dec)
        alignment = torch.stack(aligns, dim=1)  # (B, T_dec, T_text)

        mel_loss, stop_loss, dec_lengths = decoder_losses(mel_before, mel_after, mel, stop_logits, mel_lengths, r,
                                                         cfg.stop_pos_weight)
        ga_loss = (
            guided_attention_loss(alignment, text_lengths, dec_lengths, cfg.guided_attention_sigma)
            if cfg.guided_attention_weight > 0
            else mel.new_zeros(())
        )
        loss = mel_loss + cfg.stop_weight * stop_loss + cfg.guided_attention_weight * ga_loss
        return {
            "loss": loss,
            "mel_loss": mel_loss.detach(),
            "stop_loss": stop_loss.detach(),
            "attn_loss": ga_loss.detach(),
            "mel_before": self._denorm(mel_before),
            "mel_after": self._denorm(mel_after),
            "alignment": alignment,
            "stop_logits": stop_logits,
        }

    # ------------------------------------------------------------------ inference

    @torch.no_grad()
    def infer(
        self,
        ids: torch.Tensor,
        speaker: int = 0,
        monotonic: bool = True,
        window_ahead: int | None = None,
        max_steps: int | None = None,
        seed: int = 0,
    ) -> AcousticOutput:
        """Free-running synthesis of one utterance until the stop token.

        Shapes:
            ids: (T_text,) long
            returns mel (T_mel, n_mels), alignment (T_dec, T_text), stop (T_dec,), T_mel = T_dec * r
        """
        cfg, r = self.cfg, self.cfg.r
        dev = self.embedding.weight.device
        gen = torch.Generator(device=dev).manual_seed(seed)
        ids = ids.to(dev)[None, :]  # (1, T_text)
        T_text = ids.shape[1]
        lengths = torch.tensor([T_text], device=dev)
        memory = self.encode(ids, lengths, torch.tensor([speaker], device=dev))
        processed = self.attention.memory(memory)
        text_mask = torch.ones(1, T_text, dtype=torch.bool, device=dev)
        limit = max_steps or int(20 + cfg.max_steps_per_token * T_text)
        ahead = cfg.window_ahead if window_ahead is None else window_ahead
        positions = torch.arange(T_text, device=dev)[None, :]
        state = self._init_state(memory)
        frame = memory.new_zeros(1, cfg.n_mels)
        frames, stops, aligns = [], [], []
        peak, at_end, hit_limit = 0, 0, True
        for _ in range(limit):
            window = None
            if monotonic:
                window = (positions >= peak - cfg.window_back) & (positions <= peak + ahead)
            f, s = self._step(self.prenet(frame, gen), state, memory, processed, text_mask, window)
            frames.append(f)
            stops.append(torch.sigmoid(s))
            w = state["weights"]
            aligns.append(w)
            peak = max(peak, int(w.argmax())) if monotonic else int(w.argmax())
            frame = f.view(1, r, cfg.n_mels)[:, -1]
            at_end = at_end + 1 if peak >= T_text - 1 else 0
            if float(stops[-1]) > cfg.stop_threshold or at_end > cfg.eos_hold_steps:
                hit_limit = False
                break
        mel_before = torch.cat(frames, dim=0).view(1, -1, cfg.n_mels)  # (1, T_mel, n_mels)
        mel_after = mel_before + self.postnet(mel_before)
        return AcousticOutput(
            mel=self._denorm(mel_after)[0],
            mel_before=self._denorm(mel_before)[0],
            alignment=torch.cat(aligns, dim=0),  # (T_dec, T_text)
            stop=torch.cat(stops, dim=0),  # (T_dec,)
            frames_per_step=r,
            hit_limit=hit_limit,
        )
