"""Offline text encoder: a hashed word tokenizer and a small learned transformer.

No downloaded weights or vocabularies: words are lower-cased, split on non-letters and hashed
(FNV-1a, stable across processes, unlike Python's ``hash``) into ``vocab - 2`` buckets.
Token 0 is padding, token 1 is the "empty prompt" token used for classifier-free guidance.

Letters: B batch, L tokens, E text width.
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn

PAD, EMPTY = 0, 1
_WORD = re.compile(r"[a-z0-9]+")


def _fnv1a(word: str) -> int:
    h = 0x811C9DC5
    for b in word.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def tokenize(prompts, vocab: int, length: int) -> torch.Tensor:
    """list[str | None] -> int64 (B, L). None or "" becomes the single EMPTY token."""
    out = torch.full((len(prompts), length), PAD, dtype=torch.long)
    for i, p in enumerate(prompts):
        if p is not None and not isinstance(p, str):
            raise TypeError(f"prompts must be str or None, got {type(p).__name__}")
        words = _WORD.findall((p or "").lower())[:length]
        ids = [2 + _fnv1a(w) % (vocab - 2) for w in words] or [EMPTY]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


class TextEncoder(nn.Module):
    """(B, L) token ids -> tokens (B, L, E), key mask (B, L) True = real token, pooled (B, E)."""

    def __init__(self, vocab: int, length: int, dim: int, layers: int = 1):
        super().__init__()
        self.vocab, self.length = vocab, length
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(length, dim))
        layer = nn.TransformerEncoderLayer(dim, max(1, dim // 32), 2 * dim, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False) if layers else None
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, ids: torch.Tensor):
        mask = ids != PAD                                               # (B, L)
        x = self.embed(ids) + self.pos[: ids.shape[1]]                  # (B, L, E)
        if self.layers is not None:
            x = self.layers(x, src_key_padding_mask=~mask)
        x = self.norm(x)
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)               # (B, E)
        return x, mask, pooled

    def encode(self, prompts, device=None):
        return self(tokenize(prompts, self.vocab, self.length).to(device))
