"""Search for the Thai course site: Thai has no spaces between words and Sphinx no Thai search.

The index (``split``, in Python) and the search box (``splitQuery``, in JavaScript) cut every run
of Thai letters into overlapping pairs of characters, the same way on both sides; a query matches
a page where all of its pairs occur. Other text is split into words as usual. Loaded by the Thai
site's conf.py (:mod:`seqcourse_grader.site`).
"""

from __future__ import annotations

import re

from sphinx.search import SearchLanguage

_THAI_RUN = re.compile(r"[\u0e00-\u0e7f]+|\w+")
_THAI = re.compile(r"[\u0e00-\u0e7f]+")


def split_thai(text: str) -> list[str]:
    out = []
    for run in _THAI_RUN.findall(text):
        if _THAI.fullmatch(run) and len(run) > 1:
            out += [run[i:i + 2] for i in range(len(run) - 1)]
        else:
            out.append(run)
    return out


class SearchThai(SearchLanguage):
    lang = "th"
    language_name = "Thai"
    js_splitter_code = r"""
function splitQuery(query) {
  const out = [];
  for (const run of query.match(/[\u0e00-\u0e7f]+|[\p{Letter}\p{Number}_]+/gu) || []) {
    if (/^[\u0e00-\u0e7f]+$/.test(run) && run.length > 1) {
      for (let i = 0; i + 1 < run.length; i++) out.push(run.slice(i, i + 2));
    } else out.push(run);
  }
  return out;
}
"""

    def split(self, input: str) -> list[str]:   # noqa: A002 (Sphinx's name)
        return split_thai(input)


def setup(app):
    app.add_search_language(SearchThai)
    return {"parallel_read_safe": True}
