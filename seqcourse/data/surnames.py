"""Surnames by language, built deterministically from Faker's locale name lists.

Faker (MIT licence) ships lists of common surnames per locale. We take the union of each locale's
``last_names``, ``last_names_male`` and ``last_names_female``, drop names found in more than one of
the chosen languages (their label would be ambiguous), cap each language at ``MAX_PER_LANGUAGE``
names by a seeded draw, and split each language 70/15/15 into train/val/test. The built set is
committed as ``datasets/surnames/surnames.tsv`` together with its sha256, so the lessons never
depend on the installed Faker; ``build_surnames()`` rebuilds it (``course data surnames``).
"""

from __future__ import annotations

import hashlib
import importlib
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from seqcourse.paths import datasets_dir

# language name -> Faker locale. Latin-script languages only: the model must learn spelling
# patterns, not spot the alphabet.
LANGUAGES: dict[str, str] = {
    "Croatian": "hr_HR",
    "Czech": "cs_CZ",
    "Dutch": "nl_NL",
    "English": "en_US",
    "Estonian": "et_EE",
    "Finnish": "fi_FI",
    "French": "fr_FR",
    "German": "de_DE",
    "Indonesian": "id_ID",
    "Irish": "ga_IE",
    "Italian": "it_IT",
    "Latvian": "lv_LV",
    "Slovak": "sk_SK",
    "Slovenian": "sl_SI",
    "Spanish": "es_ES",
    "Swedish": "sv_SE",
}
MAX_PER_LANGUAGE = 300
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
SEED = 2024
MIN_LEN, MAX_LEN = 2, 20
FILE_NAME = "surnames/surnames.tsv"
SPLITS = ("train", "val", "test")


def _faker_surnames(locale: str) -> set[str]:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    names: set[str] = set()
    for attr in ("last_names", "last_names_male", "last_names_female"):
        values = getattr(provider, attr, None) or ()
        names.update(values.keys() if hasattr(values, "keys") else values)
    cleaned = {unicodedata.normalize("NFC", n.strip()) for n in names}
    return {n for n in cleaned if MIN_LEN <= len(n) <= MAX_LEN}


def build_rows(max_per_language: int = MAX_PER_LANGUAGE, seed: int = SEED) -> list[tuple[str, str, str]]:
    """Return ``(split, language, surname)`` rows, grouped by split and language.

    Within a group the order is the seeded shuffle, so any prefix of a group is a random sample
    (``load_surnames(max_per_language=...)`` relies on it). Deterministic for a given Faker.
    """
    per_language = {lang: _faker_surnames(loc) for lang, loc in LANGUAGES.items()}
    counts = Counter(n for names in per_language.values() for n in names)
    rows = []
    for lang in sorted(per_language):
        unique = sorted(n for n in per_language[lang] if counts[n] == 1)
        rng = random.Random(f"{seed}:{lang}")  # str seeds hash deterministically
        rng.shuffle(unique)
        chosen = unique[:max_per_language]
        n_train = round(len(chosen) * SPLIT_FRACTIONS[0])
        n_val = round(len(chosen) * SPLIT_FRACTIONS[1])
        for i, name in enumerate(chosen):
            split = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            rows.append((split, lang, name))
    return sorted(rows, key=lambda r: (SPLITS.index(r[0]), r[1]))  # stable: keeps the shuffle


def rows_to_tsv(rows: list[tuple[str, str, str]]) -> str:
    return "split\tlanguage\tsurname\n" + "".join(f"{s}\t{lang}\t{n}\n" for s, lang, n in rows)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_surnames(out: Path | None = None) -> tuple[Path, str]:
    """Rebuild the committed TSV from Faker; return its path and sha256."""
    out = Path(out) if out else datasets_dir() / FILE_NAME
    text = rows_to_tsv(build_rows())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out, sha256_text(text)


# sha256 of datasets/surnames/surnames.tsv; datasets/README.md records the same value.
SHA256 = "525ff52d8bc579f1047136ed595b26d4288cdd7d28803a2557873d48ce89599a"


@dataclass(frozen=True)
class SurnameSplit:
    """One split: parallel lists of names and integer labels, and the label names."""

    names: list[str]
    labels: list[int]
    languages: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def counts(self) -> dict[str, int]:
        c = Counter(self.labels)
        return {lang: c[i] for i, lang in enumerate(self.languages)}


def load_surnames(max_per_language: int | None = None, path: Path | None = None,
                  verify: bool = True) -> dict[str, SurnameSplit]:
    """Load ``{"train", "val", "test"}`` splits.

    ``max_per_language`` keeps the first names of each language in each split, in file order and
    in proportion to the split sizes, so a smaller profile sees a subset of the same data.
    """
    path = Path(path) if path else datasets_dir() / FILE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"surnames file not found at {path}; rebuild it with "
                                "`course data surnames`")
    text = path.read_text(encoding="utf-8")
    if verify and path.name == Path(FILE_NAME).name and sha256_text(text) != SHA256:
        raise ValueError(f"{path} does not match its recorded sha256 ({SHA256[:12]}...): the file "
                         "was changed. Restore it with git, or rebuild it with `course data surnames`.")
    lines = text.splitlines()
    if not lines or lines[0] != "split\tlanguage\tsurname":
        raise ValueError(f"{path} has no 'split, language, surname' header")
    rows = [line.split("\t") for line in lines[1:] if line]
    languages = sorted({lang for _, lang, _ in rows})
    index = {lang: i for i, lang in enumerate(languages)}
    if max_per_language is not None and max_per_language < 1:
        raise ValueError(f"max_per_language must be at least 1, got {max_per_language}")
    out = {}
    for split, frac in zip(SPLITS, SPLIT_FRACTIONS, strict=True):
        cap = None if max_per_language is None else max(1, round(max_per_language * frac))
        taken: Counter = Counter()
        names, labels = [], []
        for s, lang, name in rows:
            if s != split or (cap is not None and taken[lang] >= cap):
                continue
            taken[lang] += 1
            names.append(name)
            labels.append(index[lang])
        out[split] = SurnameSplit(names, labels, languages)
    return out


def balance_report(splits: dict[str, SurnameSplit]) -> str:
    """A small table of names per language and split."""
    languages = next(iter(splits.values())).languages
    header = f"{'language':<12}" + "".join(f"{s:>7}" for s in splits)
    lines = [header]
    for lang in languages:
        lines.append(f"{lang:<12}" + "".join(f"{splits[s].counts()[lang]:>7}" for s in splits))
    lines.append(f"{'total':<12}" + "".join(f"{len(splits[s]):>7}" for s in splits))
    return "\n".join(lines)
