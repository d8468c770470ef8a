"""Content duplicates on SQLite and PostgreSQL: re-posts, near re-posts, arrival order, edits."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

import storage.repository
from storage.db import make_engine, upgrade
from storage.repository import ArticleRecord, Repository

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
_VOCABULARY = [
    "".join(
        random.Random(n).choice("bcdfghklmnprstvwz") + random.Random(n * 7).choice("aeiou")
        for _ in range(3)
    )
    + str(n)
    for n in range(600)
]


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(_VOCABULARY) for _ in range(12)).capitalize() + "."


def body(seed: int, paragraphs: int = 10) -> list[list[str]]:
    """``paragraphs`` paragraphs of five 12-word sentences of made-up words."""
    rng = random.Random(seed)
    return [[sentence(rng) for _ in range(5)] for _ in range(paragraphs)]


def text(paragraphs: list[list[str]]) -> str:
    return "\n\n".join(" ".join(p) for p in paragraphs)


def one_sentence_changed(seed: int, where: int = 3) -> str:
    paragraphs = body(seed)
    paragraphs[where][2] = sentence(random.Random(-seed - where))
    return text(paragraphs)


def two_sentences_added(seed: int) -> str:
    paragraphs = body(seed)
    rng = random.Random(-seed - 100)
    paragraphs[0].append(sentence(rng))
    paragraphs[-1].insert(0, sentence(rng))
    return text(paragraphs)


def article(
    key: str, published: int, text_: str, title: str = "Tianjin port grows"
) -> ArticleRecord:
    return ArticleRecord(
        article_key=key,
        url=f"http://www.exploringtianjin.com/2024-05/{published:02d}/c_{key}.htm",
        title=title,
        source="chinadaily.com.cn",
        published_on=date(2024, 5, published),
        body=text_,
    )


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def repo(engine: Engine) -> Repository:
    return Repository(engine)


def marks(engine: Engine) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as connection:
        return {
            row[0]: tuple(row[1:])
            for row in connection.execute(
                sa.text(
                    "SELECT article_key, duplicate_of, near_duplicate_of, "
                    "near_duplicate_similarity FROM articles ORDER BY article_key"
                )
            )
        }


# --- exact re-posts -------------------------------------------------------------------------------

# The original is the earliest by published_on, then by numeric key (not by text order: "9" < "10").
REPOSTS = [
    article("10", 2, text(body(1))),
    article("9", 2, text(body(1))),
    article("500", 1, text(body(1))),
    article("7", 3, text(body(1))),
    article("8", 1, text(body(2))),  # another story
]
EXPECTED_REPOSTS = {
    "10": ("500", None, None),
    "500": (None, None, None),
    "7": ("500", None, None),
    "8": (None, None, None),
    "9": ("500", None, None),
}


@pytest.mark.parametrize("order", [(0, 1, 2, 3, 4), (2, 0, 1, 3, 4), (4, 3, 1, 0, 2)])
def test_repost_marked_duplicate_of_the_earliest_whatever_the_order(
    engine: Engine, repo: Repository, order: tuple[int, ...]
) -> None:
    """One article per batch (each could be another crawl): the marks end up the same."""
    for n, index in enumerate(order):
        repo.save_articles([REPOSTS[index]], T0 + timedelta(hours=n))
    assert marks(engine) == EXPECTED_REPOSTS


def test_reposts_in_one_batch(engine: Engine, repo: Repository) -> None:
    result = repo.save_articles(list(reversed(REPOSTS)), T0)
    assert marks(engine) == EXPECTED_REPOSTS
    assert result.duplicates == ["10", "7", "9"] and result.near_duplicates == []
    assert result.new == ["10", "500", "7", "8", "9"]  # stored, not dropped


def test_the_original_arriving_later_takes_over_and_moves_change_seq(
    engine: Engine, repo: Repository
) -> None:
    repo.save_articles([REPOSTS[0], REPOSTS[1]], T0)  # "9" is the original of these two
    assert marks(engine)["10"][0] == "9"
    before = {a.article_key: a.change_seq for a in repo.changes_since(0)}
    result = repo.save_articles([REPOSTS[2]], T0 + timedelta(days=1))
    assert result.duplicates == [] and result.remarked == ["10", "9"]
    after = {a.article_key: a.change_seq for a in repo.changes_since(0)}
    assert marks(engine)["10"][0] == marks(engine)["9"][0] == "500"
    # Both re-marked articles come again to a consumer, after the new one.
    assert (
        after["9"] > before["9"]
        and after["10"] > before["10"]
        and after["500"] > max(before.values())
    )
    assert repo.get_article("9").version == 1  # type: ignore[union-attr]  # a mark is no version


def test_editing_the_original_hands_the_role_on(engine: Engine, repo: Repository) -> None:
    repo.save_articles(REPOSTS, T0)
    result = repo.save_articles([article("500", 1, text(body(3)))], T0 + timedelta(1))
    assert result.updated == ["500"] and sorted(result.remarked) == ["10", "7", "9"]
    assert marks(engine)["9"] == (None, None, None)  # now the earliest with that text
    assert marks(engine)["10"][0] == marks(engine)["7"][0] == "9"
    assert marks(engine)["500"] == (None, None, None)
    # An edit that makes an article a re-post of another marks it.
    repo.save_articles([article("8", 1, text(body(3)))], T0 + timedelta(2))
    assert marks(engine)["500"][0] == "8" and marks(engine)["8"][0] is None


def test_a_changed_date_can_change_the_original(engine: Engine, repo: Repository) -> None:
    repo.save_articles(REPOSTS, T0)
    repo.save_articles([article("7", 1, text(body(1)))], T0)  # now the earliest day, and 7 < 500
    assert marks(engine)["7"][0] is None
    assert {marks(engine)[k][0] for k in ("9", "10", "500")} == {"7"}


def test_same_body_other_title_is_no_exact_duplicate(engine: Engine, repo: Repository) -> None:
    repo.save_articles(
        [article("1", 1, text(body(1))), article("2", 2, text(body(1)), title="Another headline")],
        T0,
    )
    dup, near, similarity = marks(engine)["2"]
    # The titles are 5 of some 600 shingles: the estimate may well be 1.
    assert dup is None and near == "1" and 0.8 < similarity <= 1


# --- near re-posts --------------------------------------------------------------------------------


def test_near_duplicate_one_sentence_changed(engine: Engine, repo: Repository) -> None:
    original = article("100", 1, text(body(1)))
    repost = article("200", 2, one_sentence_changed(1))
    other = article("300", 2, text(body(2)))
    result = repo.save_articles([original, repost, other], T0)
    assert result.near_duplicates == ["200"] and result.duplicates == []
    found = marks(engine)
    assert found["100"] == found["300"] == (None, None, None)
    dup, near, similarity = found["200"]
    assert dup is None and near == "100"
    assert 0.8 < similarity < 1
    stored = repo.get_article("200")
    assert stored is not None and stored.near_duplicate_of == "100"
    assert stored.near_duplicate_similarity == similarity


def test_near_duplicate_two_sentences_added_arriving_first(
    engine: Engine, repo: Repository
) -> None:
    """The re-post comes first (another run); the original's arrival marks it."""
    repo.save_articles([article("200", 2, two_sentences_added(1))], T0)
    assert marks(engine)["200"] == (None, None, None)
    result = repo.save_articles([article("100", 1, text(body(1)))], T0 + timedelta(1))
    assert result.remarked == ["200"] and result.near_duplicates == []
    dup, near, similarity = marks(engine)["200"]
    assert dup is None and near == "100" and 0.8 < similarity < 1


def test_near_marks_do_not_depend_on_arrival_order(engine: Engine, db_url: str) -> None:
    originals = [article(str(n), n, text(body(n))) for n in range(1, 4)]
    variants = [
        article("11", 5, one_sentence_changed(1)),
        article("12", 6, one_sentence_changed(1, where=7)),
        article("13", 4, two_sentences_added(2)),
        article("14", 7, text(body(1))),  # exact re-post of "1"
        article("15", 8, one_sentence_changed(3)),
    ]
    everything = originals + variants
    results = []
    for order in (list(range(len(everything))), list(reversed(range(len(everything))))):
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM articles"))
        for index in order:
            Repository(engine).save_articles([everything[index]], T0)
        results.append(marks(engine))
    together = Repository(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM articles"))
    together.save_articles(list(itertools.chain(variants, originals)), T0)
    results.append(marks(engine))
    assert results[0] == results[1] == results[2]
    found = results[0]
    assert found["11"][1] == found["12"][1] == "1" and found["13"][1] == "2"
    assert found["15"][1] == "3" and found["14"] == ("1", None, None)
    assert all(found[str(n)] == (None, None, None) for n in range(1, 4))


def test_best_match_highest_similarity_then_earliest(engine: Engine, repo: Repository) -> None:
    base = body(1)
    first = article("1", 1, text(base))
    # "2" and "3" differ from "1" in the same number of sentences; "4" is one sentence away
    # from "3" but three from "1": it resembles "3" most, though "1" is earlier.
    two = [list(p) for p in base]
    two[0][0] = sentence(random.Random(1000))
    two[9][4] = sentence(random.Random(1001))
    three = [list(p) for p in base]
    three[2][1] = sentence(random.Random(2000))
    three[5][3] = sentence(random.Random(2001))
    four = [list(p) for p in three]
    four[8][2] = sentence(random.Random(3000))
    repo.save_articles(
        [
            first,
            article("2", 2, text(two)),
            article("3", 2, text(three)),
            article("4", 3, text(four)),
        ],
        T0,
    )
    found = marks(engine)
    assert found["2"][1] == "1" and found["3"][1] == "1"
    assert found["4"][1] == "3" and found["4"][2] > similarity_of(repo, "4", "1")

    # Equal similarity: the earlier wins ("5" is "1"'s text once more under a later date, an
    # exact re-post, so every later variant resembles both alike).
    repo.save_articles([article("5", 1, text(base), title="Tianjin port grows ")], T0)
    assert marks(engine)["2"][1] == "1"


def similarity_of(repo: Repository, a: str, b: str) -> float:
    from storage.similarity import MinHasher, similarity

    hasher = MinHasher(repo.layout.permutations)
    first, second = repo.get_article(a), repo.get_article(b)
    assert first is not None and second is not None
    return similarity(hasher.sign(first.title, first.body), hasher.sign(second.title, second.body))


def test_an_edit_away_clears_the_near_mark_of_its_copies(engine: Engine, repo: Repository) -> None:
    repo.save_articles(
        [article("1", 1, text(body(1))), article("2", 2, one_sentence_changed(1))], T0
    )
    assert marks(engine)["2"][1] == "1"
    result = repo.save_articles([article("1", 1, text(body(9)))], T0 + timedelta(1))
    assert result.remarked == ["2"] and marks(engine)["2"] == (None, None, None)
    # ...and an edit that makes them alike again marks it again
    repo.save_articles([article("2", 2, one_sentence_changed(9))], T0 + timedelta(2))
    assert marks(engine)["2"][1] == "1"


def test_the_threshold_is_a_setting_and_a_new_one_reindexes(engine: Engine) -> None:
    records = [
        article("1", 1, text(body(1))),
        article("2", 2, one_sentence_changed(1)),
        article("3", 3, text(body(2))),
    ]
    Repository(engine).save_articles(records, T0)
    similarity = marks(engine)["2"][2]
    assert similarity is not None and similarity < 0.995
    strict = Repository(engine, near_duplicate_threshold=0.995)
    assert strict.ensure_similarity_index() == 3
    assert marks(engine)["2"] == (None, None, None)
    assert strict.ensure_similarity_index() == 0
    loose = Repository(engine, near_duplicate_threshold=0.5, minhash_permutations=64)
    loose.save_articles([article("4", 4, text(body(4)))], T0)  # re-indexes first, then saves
    assert marks(engine)["2"][1] == "1"
    with engine.connect() as connection:
        assert (
            connection.execute(sa.text("SELECT count(*) FROM article_lsh_bands")).scalar_one()
            == 4 * loose.layout.bands
        )
        assert connection.execute(
            sa.text("SELECT permutations, threshold FROM similarity_index")
        ).one() == (64, 0.5)


def test_candidates_come_from_the_index_not_from_every_article(
    engine: Engine, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cost of a new article does not grow with the database: no all-pairs comparison."""
    repo.save_articles([article(str(n), 1 + n % 28, text(body(n, 3))) for n in range(1, 301)], T0)
    compared: list[int] = []
    real = storage.repository.similarity

    def counting(a: bytes, b: bytes) -> float:
        compared.append(1)
        return real(a, b)

    monkeypatch.setattr(storage.repository, "similarity", counting)
    result = repo.save_articles(
        [article("1000", 28, text(body(7, 3)) + " One more sentence here.")], T0
    )
    assert result.near_duplicates == ["1000"]
    assert len(compared) < 10  # its near twin, maybe a stray candidate; not 300
    with engine.connect() as connection:
        assert (
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM article_lsh_bands WHERE article_id = "
                    "(SELECT id FROM articles WHERE article_key = '1000')"
                )
            ).scalar_one()
            == repo.layout.bands
        )


def test_an_index_of_another_signature_format_is_rebuilt_from_the_texts(
    engine: Engine, repo: Repository
) -> None:
    """A database indexed by an earlier signature scheme (one release before): on first use every
    signature is made again from the text, every band again from it, and the marks recomputed."""
    from storage.similarity import SIGNATURE_FORMAT, MinHasher

    records = [
        article("1", 1, text(body(1))),
        article("2", 2, one_sentence_changed(1)),
        article("3", 3, text(body(2))),
    ]
    repo.save_articles(records, T0)
    expected = marks(engine)
    assert expected["2"][1] == "1"
    with engine.begin() as connection:
        # What the earlier scheme left: its name, signatures of the same size, their bands and
        # marks (here made wrong, so that keeping any of them shows).
        connection.execute(
            sa.text("UPDATE similarity_index SET signature_format = 'an-earlier-scheme-v0'")
        )
        connection.execute(sa.text("UPDATE articles SET minhash = :old"), {"old": bytes(512)})
        connection.execute(sa.text("UPDATE article_lsh_bands SET bucket = 7"))
        connection.execute(
            sa.text(
                "UPDATE articles SET near_duplicate_of = '1', near_duplicate_similarity = 0.9 "
                "WHERE article_key = '3'"
            )
        )
    upgraded = Repository(engine)
    # A save re-indexes first (as the crawl's first batch would).
    upgraded.save_articles([article("4", 4, text(body(4)))], T0 + timedelta(1))
    assert {k: v for k, v in marks(engine).items() if k != "4"} == expected
    hasher = MinHasher(upgraded.layout.permutations)
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT id, title, body, minhash FROM articles ORDER BY id")
        ).all()
        bands = connection.execute(
            sa.text("SELECT article_id, band, bucket FROM article_lsh_bands")
        ).all()
        assert (
            connection.execute(
                sa.text("SELECT signature_format FROM similarity_index")
            ).scalar_one()
            == SIGNATURE_FORMAT
        )
    assert len(stored) == 4
    for row in stored:
        assert bytes(row.minhash) == hasher.sign(row.title, row.body)
    assert sorted(bands) == sorted(
        (row.id, band, bucket)
        for row in stored
        for band, bucket in enumerate(upgraded.layout.buckets(bytes(row.minhash)))
    )
    assert upgraded.ensure_similarity_index() == 0  # done once
