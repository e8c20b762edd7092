"""Tatoeba English-French sentence pairs (lesson 06), found locally or downloaded once.

The file is ``eng-fra.txt`` (English<TAB>French, 135,842 lines) as the PyTorch translation tutorial
ships it in ``data.zip``: sentences from the Tatoeba Project (https://tatoeba.org), licence
CC-BY 2.0 FR, via manythings.org/anki. It is never stored in this repository. :func:`tatoeba_file`
looks for it, in this order:

1. the path in the environment variable ``SEQCOURSE_TATOEBA``;
2. the cache, ``$SEQCOURSE_CACHE`` or ``~/.cache/seqcourse``, from an earlier download;
3. a download of the tutorial's ``data.zip`` (only when ``download=True``), cached afterwards.

Every copy must have the expected sha256, or it is refused. Without a copy and without a network,
:class:`DataUnavailable` says what to do; the lessons catch it and skip their real-data cells.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import unicodedata
import urllib.request
import zipfile
from pathlib import Path

URL = "https://download.pytorch.org/tutorial/data.zip"
MEMBER = "data/eng-fra.txt"
SHA256 = "6b0f3decdb78600485b58efb541f5a2ab69ba888742ac04180e013084e40de7c"
LINES = 135_842
ENV_FILE = "SEQCOURSE_TATOEBA"
ENV_CACHE = "SEQCOURSE_CACHE"
ATTRIBUTION = ("English-French sentence pairs from the Tatoeba Project (tatoeba.org), CC-BY 2.0 FR, "
               "via manythings.org/anki, as distributed with the PyTorch tutorials.")
# The PyTorch tutorial keeps only English sentences that start like these.
TUTORIAL_PREFIXES = ("i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are", "you re ",
                     "we are", "we re ", "they are", "they re ")


class DataUnavailable(RuntimeError):
    """No verified copy of the file and no way to get one."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "seqcourse")


def _verified(path: Path, where: str) -> Path:
    digest = _sha256(path)
    if digest != SHA256:
        raise DataUnavailable(f"{where} {path} is not the expected eng-fra.txt: sha256 {digest[:12]}..., "
                              f"expected {SHA256[:12]}... (a different or damaged file)")
    return path


def tatoeba_file(download: bool = False, timeout: float = 60) -> Path:
    """The verified local copy of eng-fra.txt (see the module's docstring for where it looks)."""
    given = os.environ.get(ENV_FILE)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise DataUnavailable(f"{ENV_FILE}={given} names no file")
        return _verified(path, f"{ENV_FILE} names")
    cached = cache_dir() / "eng-fra.txt"
    if cached.is_file():
        return _verified(cached, "the cached copy")
    if not download:
        raise DataUnavailable(
            f"no copy of eng-fra.txt: set {ENV_FILE}=/path/to/eng-fra.txt, or call with download=True "
            f"(fetches {URL}, about 3 MB, into {cached.parent})")
    try:
        with urllib.request.urlopen(URL, timeout=timeout) as response:
            payload = response.read()
    except OSError as e:
        raise DataUnavailable(f"could not download {URL} ({e}); set {ENV_FILE} to a local copy instead") from e
    with zipfile.ZipFile(io.BytesIO(payload)) as z:
        data = z.read(MEMBER)
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise DataUnavailable(f"the downloaded {MEMBER} does not have the expected sha256; not cached")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(cached)
    return cached


def read_pairs(path: Path | None = None) -> list[tuple[str, str]]:
    """All (English, French) pairs of the file, as written."""
    path = path or tatoeba_file()
    pairs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 2:
                raise ValueError(f"{path}:{n}: expected two tab-separated columns")
            pairs.append((parts[0], parts[1]))
    return pairs


def normalise(text: str, keep_period: bool = False) -> str:
    """The tutorial's normalisation: lower case, accents stripped, letters and ! ? only (and
    the period with ``keep_period``, as older versions of the tutorial did)."""
    text = "".join(c for c in unicodedata.normalize("NFD", text.lower().strip())
                   if unicodedata.category(c) != "Mn")
    text = re.sub(r"([.!?])", r" \1", text)
    text = re.sub(r"[^a-zA-Z.!?]+" if keep_period else r"[^a-zA-Z!?]+", " ", text)
    return text.strip()


def tutorial_pairs(path: Path | None = None, max_length: int = 10, keep_period: bool = False) -> list[tuple[str, str]]:
    """The PyTorch tutorial's subset, as (French, English): fewer than ``max_length`` words per
    side and English starting with one of its prefixes. 11,445 pairs (10,599 with ``keep_period``)."""
    out = []
    for eng, fra in read_pairs(path):
        e, f = normalise(eng, keep_period), normalise(fra, keep_period)
        if len(e.split(" ")) < max_length and len(f.split(" ")) < max_length and e.startswith(TUTORIAL_PREFIXES):
            out.append((f, e))
    return out


def short_pairs(path: Path | None = None, max_words: int = 10, keep_period: bool = True) -> list[tuple[str, str]]:
    """Every (French, English) pair with at most ``max_words`` words per side, normalised."""
    out = []
    for eng, fra in read_pairs(path):
        e, f = normalise(eng, keep_period), normalise(fra, keep_period)
        if e and f and len(e.split()) <= max_words and len(f.split()) <= max_words:
            out.append((f, e))
    return out


def split_pairs(pairs: list[tuple[str, str]], fractions=(0.9, 0.05, 0.05), seed: int = 0) -> dict[str, list]:
    """A seeded split by source sentence: a French sentence with several translations stays in one
    split, so no test source is seen in training."""
    sources = sorted({f for f, _ in pairs})
    random.Random(seed).shuffle(sources)
    n_train = round(len(sources) * fractions[0])
    n_val = round(len(sources) * fractions[1])
    where = {s: ("train" if i < n_train else "val" if i < n_train + n_val else "test")
             for i, s in enumerate(sources)}
    out: dict[str, list] = {"train": [], "val": [], "test": []}
    for pair in pairs:
        out[where[pair[0]]].append(pair)
    return out
