"""Characters to integer ids, and ragged sequences to padded batches.

Shape notation used across the course: B batch, T time (sequence length), E embedding size,
H hidden size, V vocabulary size, C number of classes.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"


def batch_cap() -> int:
    """At most this many batches an epoch (0: no cap). The mistakes runner sets
    ``SEQCOURSE_MAX_BATCHES`` while it follows a wrong answer through a notebook, where only
    whether training runs matters, not how well; nothing else sets it."""
    return int(os.environ.get("SEQCOURSE_MAX_BATCHES") or 0)


class Batches(DataLoader):
    """A DataLoader that honours :func:`batch_cap`, so the lessons' own training loops shrink
    with it too. Without the cap it is a plain DataLoader."""

    def __len__(self) -> int:
        cap = batch_cap()
        return min(super().__len__(), cap) if cap > 0 else super().__len__()

    def __iter__(self):
        cap = batch_cap()
        return itertools.islice(super().__iter__(), cap) if cap > 0 else super().__iter__()


class CharVocab:
    """A character vocabulary. Id 0 is padding, id 1 stands for characters never seen in training.

    With ``with_bos_eos=True`` ids 2 and 3 are ``<bos>`` (begin) and ``<eos>`` (end of sequence),
    which generators and decoders need; ``encode(text, add_bos=True, add_eos=True)`` adds them.
    """

    pad_id = 0
    unk_id = 1
    # What a token is, and how tokens are put back together: WordVocab overrides these.
    _separator = ""
    _unknown_shown = "?"
    _with_bos_eos_default = False

    @staticmethod
    def _split(text: str) -> list[str]:
        return list(text)

    @staticmethod
    def _check_tokens(tokens: list[str]) -> None:
        if any(len(c) != 1 for c in tokens):
            raise ValueError("CharVocab takes single characters; use CharVocab.from_texts for words")

    def __init__(self, tokens: Iterable[str], with_bos_eos: bool | None = None):
        unique = sorted(set(tokens) - {PAD, UNK, BOS, EOS})
        self._check_tokens(unique)
        if with_bos_eos is None:
            with_bos_eos = self._with_bos_eos_default
        specials = [PAD, UNK, BOS, EOS] if with_bos_eos else [PAD, UNK]
        self.itos: list[str] = [*specials, *unique]
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}
        self.specials = len(specials)

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = 1, with_bos_eos: bool | None = None):
        counts = Counter(tok for t in texts for tok in cls._split(t))
        return cls((tok for tok, n in counts.items() if n >= min_count), with_bos_eos=with_bos_eos)

    def _special(self, token: str) -> int:
        if token not in self.stoi:
            raise AttributeError(f"this vocabulary has no {token}: build it with with_bos_eos=True")
        return self.stoi[token]

    @property
    def bos_id(self) -> int:
        return self._special(BOS)

    @property
    def eos_id(self) -> int:
        return self._special(EOS)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        ids = [self.stoi.get(tok, self.unk_id) for tok in self._split(text)]
        if add_bos:
            ids.insert(0, self.bos_id)
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Iterable[int], stop_at_eos: bool = True) -> str:
        """Text for ``ids``: padding and ``<bos>`` are skipped, unknown ids shown as "?" (words as
        "<unk>"); by default decoding stops at the first ``<eos>``."""
        out = []
        for i in ids:
            i = int(i)
            token = self.itos[i] if 0 <= i < len(self.itos) else UNK
            if token == EOS and stop_at_eos:
                break
            if token in (PAD, BOS, EOS):
                continue
            out.append(self._unknown_shown if token == UNK else token)
        return self._separator.join(out)

    def __repr__(self) -> str:
        shown = 10 if self._separator == "" else 6
        example = self._separator.join(self.itos[self.specials:self.specials + shown])
        return f"{type(self).__name__}(size={len(self)}, e.g. {example!r}...)"


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad integer sequences. Returns ``tokens`` (B, T) int64 and ``lengths`` (B,) int64."""
    if len(seqs) == 0:
        raise ValueError("pad_sequences needs at least one sequence")
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    if (lengths == 0).any():
        raise ValueError(f"empty sequence at positions {torch.nonzero(lengths == 0).flatten().tolist()}")
    tokens = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return tokens, lengths


class LabelledTexts(Dataset):
    """Texts with integer labels, encoded once with a vocabulary."""

    def __init__(self, texts: Sequence[str], labels: Sequence[int], vocab: CharVocab):
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        self.texts = list(texts)
        self.ids = [vocab.encode(t) for t in texts]
        self.labels = list(labels)
        self.pad_id = vocab.pad_id

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.ids[i], self.labels[i]

    def collate(self, batch: list[tuple[list[int], int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batch as ``(tokens (B, T), lengths (B,), labels (B,))``."""
        seqs, labels = zip(*batch, strict=True)
        tokens, lengths = pad_sequences(seqs, self.pad_id)
        return tokens, lengths, torch.tensor(labels, dtype=torch.long)

    def loader(self, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
        generator = torch.Generator().manual_seed(seed)
        return Batches(self, batch_size=batch_size, shuffle=shuffle, collate_fn=self.collate,
                       generator=generator)


class Pairs(Dataset):
    """Source-target text pairs for sequence-to-sequence models (lessons 05 and 06).

    Each side is encoded once with its own vocabulary, without ``<bos>``/``<eos>``: where those go
    is part of what the lessons teach.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], source_vocab: CharVocab, target_vocab: CharVocab,
                 tokenize=None):
        self.pairs = [(str(s), str(t)) for s, t in pairs]
        split = tokenize or list
        self.source_ids = [[source_vocab.stoi.get(tok, source_vocab.unk_id) for tok in split(s)]
                           for s, _ in self.pairs]
        self.target_ids = [[target_vocab.stoi.get(tok, target_vocab.unk_id) for tok in split(t)]
                           for _, t in self.pairs]
        empty = [i for i, (a, b) in enumerate(zip(self.source_ids, self.target_ids, strict=True)) if not a or not b]
        if empty:
            raise ValueError(f"empty source or target in pairs {empty[:5]}")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[list[int], list[int]]:
        return self.source_ids[i], self.target_ids[i]

    @staticmethod
    def collate(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(source (B, S), source_lengths (B,), target (B, T), target_lengths (B,))``, padded with 0."""
        sources, targets = zip(*batch, strict=True)
        src, src_len = pad_sequences(sources)
        tgt, tgt_len = pad_sequences(targets)
        return src, src_len, tgt, tgt_len

    def loader(self, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
        generator = torch.Generator().manual_seed(seed)
        return Batches(self, batch_size=batch_size, shuffle=shuffle, collate_fn=self.collate,
                       generator=generator)


class WordVocab(CharVocab):
    """A vocabulary of whitespace-separated words, with the same ids for the special tokens
    (``<bos>``/``<eos>`` included by default)."""

    _separator = " "
    _unknown_shown = UNK
    _with_bos_eos_default = True

    @staticmethod
    def _split(text: str) -> list[str]:
        return text.split()

    @staticmethod
    def _check_tokens(tokens: list[str]) -> None:
        if any(not w or any(c.isspace() for c in w) for w in tokens):
            raise ValueError("WordVocab takes single words without spaces")
