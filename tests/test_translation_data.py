"""The data of lessons 05 and 06: dates in many locales, and Tatoeba English-French."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date
from pathlib import Path

import pytest

from seqcourse.data import dates, tatoeba

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tatoeba-eng-fra" / "eng-fra.txt"


# ---------------------------------------------------------------- dates
def test_dates_are_deterministic_and_split_by_day():
    a = dates.make_dates(600, per_day=3, seed=5)
    assert a == dates.make_dates(600, per_day=3, seed=5)
    assert a != dates.make_dates(600, per_day=3, seed=6)
    days = {k: {e.target for e in v} for k, v in a.items()}
    assert not days["train"] & days["test"] and not days["train"] & days["val"] and not days["val"] & days["test"]
    assert [len(a[k]) for k in ("train", "val", "test")] == [480 * 3, 60 * 3, 60 * 3]
    every = [e for v in a.values() for e in v]
    assert len({e.locale for e in every}) >= 10 and {e.format for e in every} == set(dates.FORMATS)
    for e in every:
        assert date.fromisoformat(e.target) and dates.FIRST_DAY <= date.fromisoformat(e.target) <= dates.LAST_DAY
        assert e.source == dates.render(date.fromisoformat(e.target), e.locale, e.format)


def test_short_numeric_dates_carry_their_locale():
    day = date(2024, 3, 7)
    us, es = dates.render(day, "en_US", "short"), dates.render(day, "es_ES", "short")
    assert us == "en_US: 3/7/24" and es == "es_ES: 7/3/24"   # same digits, other order: tagged
    assert dates.render(day, "fr_FR", "full") == "jeudi 7 mars 2024"
    assert dates.render(date(1957, 4, 7), "id_ID", "short").endswith("/57")   # 57 -> 1957 (pivot)
    with pytest.raises(ValueError):
        dates.render(day, "xx_XX", "short")
    with pytest.raises(ValueError):
        dates.make_dates(2)
    with pytest.raises(ValueError):
        dates.make_dates(10, fractions=(0.5, 0.5, 0.5))
    assert "locales" in dates.coverage(dates.make_dates(30))


# ---------------------------------------------------------------- Tatoeba
def test_without_a_copy_it_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(tatoeba.ENV_FILE, raising=False)
    monkeypatch.setenv(tatoeba.ENV_CACHE, str(tmp_path / "cache"))
    with pytest.raises(tatoeba.DataUnavailable, match=tatoeba.ENV_FILE):
        tatoeba.tatoeba_file()
    monkeypatch.setenv(tatoeba.ENV_FILE, str(tmp_path / "nothing.txt"))
    with pytest.raises(tatoeba.DataUnavailable, match="names no file"):
        tatoeba.tatoeba_file()
    wrong = tmp_path / "eng-fra.txt"
    wrong.write_text("Go.\tVa !\n")
    monkeypatch.setenv(tatoeba.ENV_FILE, str(wrong))
    with pytest.raises(tatoeba.DataUnavailable, match="sha256"):
        tatoeba.tatoeba_file()


def test_normalise_like_the_tutorial():
    assert tatoeba.normalise("Je suis désolé, Tom !") == "je suis desole tom !"
    assert tatoeba.normalise("I'm fine.", keep_period=True) == "i m fine ."
    assert tatoeba.normalise("I'm fine.") == "i m fine"


needs_copy = pytest.mark.skipif(not SHARED.is_file(), reason=f"no local eng-fra.txt at {SHARED}")


@needs_copy
def test_the_real_file_and_the_tutorial_subset(monkeypatch):
    monkeypatch.setenv(tatoeba.ENV_FILE, str(SHARED))
    path = tatoeba.tatoeba_file()
    pairs = tatoeba.read_pairs(path)
    assert len(pairs) == tatoeba.LINES and pairs[0] == ("Go.", "Va !")
    assert len(tatoeba.tutorial_pairs(path)) == 11_445
    assert len(tatoeba.tutorial_pairs(path, keep_period=True)) == 10_599
    splits = tatoeba.split_pairs(tatoeba.tutorial_pairs(path))
    sources = {k: {f for f, _ in v} for k, v in splits.items()}
    assert not sources["train"] & sources["test"] and sum(map(len, splits.values())) == 11_445


@needs_copy
def test_download_is_verified_and_cached(tmp_path, monkeypatch):
    """The download path, with urlopen answering from the local copy: no network in tests."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(tatoeba.MEMBER, SHARED.read_bytes())
    calls = []

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def fake_urlopen(url, timeout):
        calls.append(url)
        return Response(buf.getvalue())

    monkeypatch.delenv(tatoeba.ENV_FILE, raising=False)
    monkeypatch.setenv(tatoeba.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(tatoeba.urllib.request, "urlopen", fake_urlopen)
    path = tatoeba.tatoeba_file(download=True)
    assert calls == [tatoeba.URL] and path.parent == tmp_path / "cache"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == tatoeba.SHA256
    assert tatoeba.tatoeba_file() == path and calls == [tatoeba.URL]      # cached: no second download
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr(tatoeba.MEMBER, b"Go.\tVa !\n")
    path.unlink()
    buf = bad
    with pytest.raises(tatoeba.DataUnavailable, match="sha256"):
        tatoeba.tatoeba_file(download=True)
    assert not path.exists()
