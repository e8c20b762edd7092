"""Dates written in many locales, to translate to ISO 8601 (lessons 05 and 06).

Each example is a calendar day rendered by Babel (CLDR's date formats) in one of ``LOCALES`` and one
of ``FORMATS``, e.g. ``"jeudi 7 mars 2024" -> "2024-03-07"``. Everything is generated from a seed,
so the data set never needs downloading and is the same on every machine with the same Babel.

**Ambiguity.** The ``short`` formats are numeric, and they disagree on order: ``7/3/24`` is
7 March 2024 in Spain and July 3 in the United States. A short date therefore carries its locale
as a tag (``"en_US: 3/7/24"``); the long formats name the month and need no tag. Two-digit years
are read with a fixed pivot, as the generator only draws days from 1950 to 2049: ``50``-``99`` are
19xx and ``00``-``49`` are 20xx.

**Splits.** Days, not strings, are split: a day drawn for the test split appears in no training
example in any locale or format, so test accuracy measures generalisation to unseen dates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "it_IT", "pt_BR", "nl_NL", "sv_SE", "pl_PL",
           "fi_FI", "tr_TR", "cs_CZ", "id_ID")
FORMATS = ("full", "long", "medium", "short")
FIRST_DAY, LAST_DAY = date(1950, 1, 1), date(2049, 12, 31)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DateExample:
    source: str     # the date as written, e.g. "jeudi 7 mars 2024"
    target: str     # ISO 8601, e.g. "2024-03-07"
    locale: str
    format: str


def render(day: date, locale: str, fmt: str) -> str:
    """``day`` as ``locale`` writes it in format ``fmt``; short (numeric) dates carry their locale."""
    from babel.dates import format_date

    if locale not in LOCALES or fmt not in FORMATS:
        raise ValueError(f"unknown locale or format {locale!r}, {fmt!r}; choose from {LOCALES} and {FORMATS}")
    text = format_date(day, format=fmt, locale=locale)
    return f"{locale}: {text}" if fmt == "short" else text


def make_dates(n_days: int, per_day: int = 2, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
               seed: int = 0) -> dict[str, list[DateExample]]:
    """``n_days`` distinct days from 1950-2049, split by day, each written ``per_day`` ways.

    Returns ``{"train": [...], "val": [...], "test": [...]}``. Deterministic for a given seed.
    """
    span = (LAST_DAY - FIRST_DAY).days + 1
    if not 3 <= n_days <= span:
        raise ValueError(f"n_days must be between 3 and {span}, got {n_days}")
    if not 1 <= per_day <= len(LOCALES) * len(FORMATS):
        raise ValueError(f"per_day must be between 1 and {len(LOCALES) * len(FORMATS)}, got {per_day}")
    if abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions}")
    rng = random.Random(seed)
    days = [FIRST_DAY + timedelta(days=k) for k in rng.sample(range(span), n_days)]
    n_train = round(n_days * fractions[0])
    n_val = round(n_days * fractions[1])
    bounds = {"train": days[:n_train], "val": days[n_train:n_train + n_val], "test": days[n_train + n_val:]}
    styles = [(loc, fmt) for loc in LOCALES for fmt in FORMATS]
    out: dict[str, list[DateExample]] = {}
    for split, chosen in bounds.items():
        examples = []
        for day in chosen:
            for loc, fmt in rng.sample(styles, per_day):
                examples.append(DateExample(render(day, loc, fmt), day.isoformat(), loc, fmt))
        out[split] = examples
    return out


def coverage(splits: dict[str, list[DateExample]]) -> str:
    """A short table: examples per split, and how many locales and formats each covers."""
    rows = [f"{'split':<6} {'examples':>8} {'days':>6} {'locales':>7} {'formats':>7}  longest"]
    for name, ex in splits.items():
        rows.append(f"{name:<6} {len(ex):>8} {len({e.target for e in ex}):>6} {len({e.locale for e in ex}):>7} "
                    f"{len({e.format for e in ex}):>7}  {max((len(e.source) for e in ex), default=0)} chars")
    return "\n".join(rows)
