"""Golden pages: every field of every case in ``cases/`` against its ``expected.json``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from crawler.extract import extract_article

sys.path.insert(0, str(Path(__file__).resolve().parent))  # --import-mode=importlib: our helper
from extract_golden import FIELDS, case_names, expected, extract, meta, response

CASES = case_names()
FIELD_CASES = [(name, f) for name in CASES for f in FIELDS[meta(name)["kind"]]]


def test_cases_are_present_and_complete() -> None:
    assert len(CASES) >= 16
    for name in CASES:
        data = expected(name)  # a case without expected.json fails here, it is never skipped
        assert set(data) == set(FIELDS[meta(name)["kind"]]), name


@pytest.mark.parametrize(("name", "field"), FIELD_CASES, ids=[f"{n}-{f}" for n, f in FIELD_CASES])
def test_field(name: str, field: str) -> None:
    assert extract(name)[field] == expected(name)[field]


@pytest.mark.parametrize("name", [n for n in CASES if meta(n).get("same_as")])
def test_malformed_variant_extracts_like_the_well_formed_page(name: str) -> None:
    twin = meta(name)["same_as"]
    assert extract(name) == extract(twin)
    assert expected(name) == expected(twin)


def test_gbk_page_is_decoded_with_the_declared_charset() -> None:
    resp = response("gbk_chinese")
    assert resp.encoding in ("gbk", "gb18030")
    page = extract_article(resp.text, resp.url)
    assert page.title == "津门故里迎来春节游客高峰"
    assert page.source == "新华网"
    # The same bytes read with the wrong charset would not give this text.
    wrong = resp.body.decode("latin-1")
    assert extract_article(wrong, resp.url).title != page.title
