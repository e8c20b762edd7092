import re
import shutil
from pathlib import Path

import faker
import pytest

from seqcourse.data import surnames
from seqcourse.paths import REPO_ROOT


def test_surnames_load_and_verify():
    splits = surnames.load_surnames()
    assert set(splits) == {"train", "val", "test"}
    languages = splits["train"].languages
    assert len(languages) >= 15
    names = {s: set(v.names) for s, v in splits.items()}
    assert not names["train"] & names["val"] and not names["train"] & names["test"]
    assert not names["val"] & names["test"]
    for split in splits.values():
        assert all(0 <= y < len(languages) for y in split.labels)
        assert min(split.counts().values()) > 0


def test_subset_is_a_sample_not_alphabetical():
    small = surnames.load_surnames(max_per_language=20)
    assert all(v <= 14 for v in small["train"].counts().values())
    firsts = {n[0].upper() for n in small["train"].names}
    assert len(firsts) > 10, "a capped split should not be only names starting with A"
    with pytest.raises(ValueError):
        surnames.load_surnames(max_per_language=0)


def test_changed_file_is_refused(tmp_path):
    copy = tmp_path / "surnames.tsv"
    shutil.copy(REPO_ROOT / "datasets" / surnames.FILE_NAME, copy)
    copy.write_text(copy.read_text(encoding="utf-8") + "train\tEnglish\tExtra\n", encoding="utf-8")
    with pytest.raises(ValueError, match="sha256"):
        surnames.load_surnames(path=copy)


def test_readme_records_the_sha256():
    readme = (REPO_ROOT / "datasets" / "README.md").read_text(encoding="utf-8")
    assert surnames.SHA256 in readme
    text = (REPO_ROOT / "datasets" / surnames.FILE_NAME).read_text(encoding="utf-8")
    assert surnames.sha256_text(text) == surnames.SHA256


def test_rebuild_from_faker_is_identical(tmp_path):
    pinned = re.search(r'"faker==([\d.]+)"', (REPO_ROOT / "pyproject.toml").read_text()).group(1)
    if faker.VERSION != pinned:
        pytest.skip(f"Faker {faker.VERSION} installed, the data was built with {pinned}")
    path, sha = surnames.build_surnames(tmp_path / "s.tsv")
    assert sha == surnames.SHA256
    assert Path(path).read_bytes() == (REPO_ROOT / "datasets" / surnames.FILE_NAME).read_bytes()


def test_balance_report_lists_every_language():
    splits = surnames.load_surnames()
    report = surnames.balance_report(splits)
    for lang in splits["train"].languages:
        assert lang in report
    assert report.splitlines()[-1].startswith("total")
