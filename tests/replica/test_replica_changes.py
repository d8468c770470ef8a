"""Re-posts (exact and near duplicates), edits of live articles and newly published articles."""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from urllib.parse import urljoin

import lxml.html
import pytest

from crawler.replica import Fault, ReplicaServer, ReplicaSite, shingle_jaccard
from crawler.text import clean_text
from crawler.urls import parse_article_url

from .conftest import HOST, decode, get, leaf_blocks, page_text

REPOST_ROLES = ("repost", "repost_of", "near_repost", "near_repost_of")


def plain_jaccard(a: str, b: str, k: int = 3) -> float:
    """Word-3-shingle Jaccard written out independently of the replica's helper."""

    def grams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.lower())
        return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)}

    sa, sb = grams(a), grams(b)
    return len(sa & sb) / len(sa | sb)


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode("utf-8")


# -- re-posts -------------------------------------------------------------------------------


def test_repost_repeats_an_older_articles_title_and_body(site: ReplicaSite) -> None:
    keys = site.fault_keys
    new, old = site.article_by_key(keys["repost"]), site.article_by_key(keys["repost_of"])
    assert new.key != old.key
    assert site.index_of(new.key) < site.index_of(old.key) and site.index_of(new.key) < 40
    assert int(new.key) > int(old.key) and new.published_on > old.published_on
    assert (new.title, new.source, new.pages, new.template) == (
        old.title,
        old.source,
        old.pages,
        old.template,
    )
    assert new.body == old.body
    # The same pictures, uploaded again under the re-post's date.
    assert [(im.alt, im.caption, im.page) for im in new.images] == [
        (im.alt, im.caption, im.page) for im in old.images
    ]
    assert not {im.src_path for im in new.images} & {im.src_path for im in old.images}
    for im in new.images:
        assert im.src_path[5:13] == new.published_on.strftime("%Y%m%d")
    # What the pages show: every paragraph of the original, under the same title.
    for page in range(1, new.page_count + 1):
        blocks = leaf_blocks(decode(get(site, new.path(page))))
        assert new.title in blocks
        assert [b for b in blocks if b in old.pages[page - 1]] == list(old.pages[page - 1])


def test_near_repost_changes_a_sentence_and_adds_a_paragraph(site: ReplicaSite) -> None:
    keys = site.fault_keys
    new, old = site.article_by_key(keys["near_repost"]), site.article_by_key(keys["near_repost_of"])
    assert int(new.key) > int(old.key) and new.published_on > old.published_on
    assert (new.title, new.source, new.page_count) == (old.title, old.source, old.page_count)
    assert 0.8 < plain_jaccard(new.body, old.body) < 1.0
    assert plain_jaccard(new.body, old.body) == pytest.approx(shingle_jaccard(new.body, old.body))
    assert 0.85 < shingle_jaccard(new.body, old.body) < 0.98
    # One paragraph of page 1 rewritten (its last sentence), one short paragraph closing the end.
    old_flat = [p for page in old.pages for p in page]
    new_flat = [p for page in new.pages for p in page]
    assert len(new_flat) == len(old_flat) + 1 and new_flat[-1] == new.pages[-1][-1]
    changed = [i for i, (a, b) in enumerate(zip(old_flat, new_flat)) if a != b]
    assert len(changed) == 1 and changed[0] < len(new.pages[0])
    before, after = old_flat[changed[0]], new_flat[changed[0]]
    assert after[:20] == before[:20] and after != before
    added = new.pages[-1][-1]
    assert added not in old.body and len(added.split()) < 60
    assert added in page_text(decode(get(site, new.path(new.page_count))))


def test_reposts_are_distinct_roles_and_their_truth_is_marked(site: ReplicaSite) -> None:
    keys = site.fault_keys
    assert set(REPOST_ROLES) <= set(keys) and len(set(keys.values())) == len(keys)
    expected = site.expected()
    marked = {k: (e.duplicate_of, e.near_duplicate_of) for k, e in expected.items()}
    assert marked.pop(keys["repost"]) == (keys["repost_of"], None)
    assert marked.pop(keys["near_repost"]) == (None, keys["near_repost_of"])
    assert set(marked.values()) == {(None, None)}
    assert site.expected_article(site.index_of(keys["repost"])) == expected[keys["repost"]]
    assert expected[keys["repost"]].body == expected[keys["repost_of"]].body
    assert expected[keys["repost"]].images != expected[keys["repost_of"]].images


@pytest.mark.parametrize(("articles", "seed"), [(40, 1), (40, 22), (41, 185), (100, 5), (300, 9)])
def test_every_site_of_40_articles_or_more_has_both_reposts(articles: int, seed: int) -> None:
    site = ReplicaSite(articles=articles, seed=seed)
    keys = site.fault_keys
    assert len(set(keys.values())) == len(keys)
    for role in ("repost", "near_repost"):
        assert site.index_of(keys[role]) < 40
        new, old = site.article_by_key(keys[role]), site.article_by_key(keys[f"{role}_of"])
        assert new.title == old.title and new.published_on > old.published_on
    assert site.article_by_key(keys["repost"]).body == site.article_by_key(keys["repost_of"]).body
    near = site.article_by_key(keys["near_repost"]).body
    assert 0.8 < plain_jaccard(near, site.article_by_key(keys["near_repost_of"]).body) < 1.0


def test_reposts_can_be_turned_off_and_small_sites_have_none() -> None:
    for site in (ReplicaSite(articles=60, reposts=False), ReplicaSite(articles=39)):
        assert not set(REPOST_ROLES) & set(site.fault_keys)
        assert all(
            (e.duplicate_of, e.near_duplicate_of) == (None, None) for e in site.expected().values()
        )
    # Only the two re-posts differ from the site without them; every key stays.
    on, off = ReplicaSite(articles=60), ReplicaSite(articles=60, reposts=False)
    assert [a.key for a in on] == [a.key for a in off]
    differ = {a.key for a, b in zip(on, off) if a != b}
    assert differ == {on.fault_keys["repost"], on.fault_keys["near_repost"]}


def test_marks_follow_faults_and_edits() -> None:
    site = ReplicaSite(articles=45)
    keys = site.fault_keys
    original = site.article_by_key(keys["repost_of"])
    site.faults[original.path()] = Fault.NOT_FOUND
    assert site.expected()[keys["repost"]].duplicate_of is None
    del site.faults[original.path()]
    assert site.expected()[keys["repost"]].duplicate_of == keys["repost_of"]
    # An edit to the re-post makes it a near duplicate; an edit of the original does the same.
    site.edit_article(keys["repost"])
    item = site.expected()[keys["repost"]]
    assert (item.duplicate_of, item.near_duplicate_of) == (None, keys["repost_of"])
    rewrite = " ".join(f"word{n}" for n in range(3000))
    site.edit(keys["near_repost"], paragraph=(1, 0, rewrite))
    near = site.expected()[keys["near_repost"]]
    assert (near.duplicate_of, near.near_duplicate_of) == (None, None)


def test_shingle_jaccard() -> None:
    assert shingle_jaccard("", "") == 1.0
    assert shingle_jaccard("a b c", "") == 0.0
    assert shingle_jaccard("The port, grew!", "the PORT grew") == 1.0
    assert shingle_jaccard("a b c d", "a b c e") == pytest.approx(1 / 3)
    assert shingle_jaccard("a b", "a b") == 1.0 and shingle_jaccard("a b", "a c") == 0.0
    assert shingle_jaccard("a b c d", "a b c e", k=1) == pytest.approx(3 / 5)
    with pytest.raises(ValueError):
        shingle_jaccard("a", "b", k=0)


# -- edits ----------------------------------------------------------------------------------


def test_an_edit_is_served_at_once_and_is_the_new_truth(
    served: tuple[ReplicaSite, ReplicaServer],
) -> None:
    site, server = served
    article = next(
        site.article(i)
        for i in range(len(site))
        if site.article(i).key not in site.fault_keys.values() and site.article(i).images
    )
    index = site.index_of(article.key)
    url = server.url(article.path())
    status, before = fetch(url)
    assert status == 200 and article.pages[0][1] in page_text(before)

    text = "Port\u00a0officials   said the R&amp;D “hub” would open in Heping district in 2027."
    title = "Haihe ferry  service&nbsp;resumes after 20 years"
    site.edit(article.key, paragraph=(1, 1, text), title=title, caption=(1, "[Photo/Xinhua]"))
    truth = clean_text(text)
    assert truth == "Port officials said the R&D “hub” would open in Heping district in 2027."
    status, after = fetch(url)
    assert status == 200 and after != before
    blocks = leaf_blocks(after)
    assert truth in blocks and article.pages[0][1] not in blocks
    assert "Haihe ferry service resumes after 20 years" in blocks
    assert "[Photo/Xinhua]" in page_text(after)
    assert "R&amp;amp;D" in after or "R&#38;amp;D" in after  # rendered like generated text

    edited = site.article(index)
    assert (
        edited.pages[0][1] == truth and edited.title == "Haihe ferry service resumes after 20 years"
    )
    assert edited.pages[0][0] == article.pages[0][0] and edited.pages[1:] == article.pages[1:]
    assert edited.images[0].caption == "[Photo/Xinhua]"
    item = site.expected()[article.key]
    assert item.title == edited.title and item.body == edited.body
    assert item.images[0][2] == "[Photo/Xinhua]"
    # Listings show the new title too.
    listing = "".join(
        fetch(server.url(site.listing_path(p)))[1] for p in range(1, site.listing_pages + 1)
    )
    assert "Haihe ferry" in listing
    # Edits accumulate; a later paragraph edit keeps the title.
    site.edit(article.key, paragraph=(1, -1, "The last paragraph, rewritten."))
    assert site.article(index).pages[0][-1] == "The last paragraph, rewritten."
    assert site.article(index).title == edited.title
    assert site.edits()[article.key] == (title, 2)


def test_edit_article_appends_a_sentence_deterministically() -> None:
    one, two = ReplicaSite(articles=45), ReplicaSite(articles=45)
    sixteen = one.fault_keys["sixteen_pages"]
    original = one.article_by_key(sixteen)
    first = one.edit_article(sixteen)
    assert first == two.edit_article(sixteen)  # same site, same edit
    assert first.key == sixteen and first.page_count == 16
    new_first = one.article_by_key(sixteen).pages[0][0]
    assert new_first.startswith(original.pages[0][0] + " ") and new_first != original.pages[0][0]
    assert first.body == "\n\n".join([new_first, *original.body.split("\n\n")[1:]])
    assert one.expected()[sixteen] == first
    second = one.edit_article(one.index_of(sixteen))
    assert second.body != first.body and second.body.startswith(new_first)
    assert get(one, original.path(1)).body != get(two, original.path(1)).body
    assert get(one, original.path(2)).body == get(two, original.path(2)).body
    # Page 2 of a 16-page article, through edit().
    one.edit(sixteen, paragraph=(2, 0, "Second page, first paragraph."))
    assert one.article_by_key(sixteen).pages[1][0] == "Second page, first paragraph."
    assert "Second page, first paragraph." in leaf_blocks(decode(get(one, original.path(2))))
    with pytest.raises(ValueError):
        one.edit_article(one.fault_keys["not_found"])


def test_edit_rejects_what_does_not_exist() -> None:
    site = ReplicaSite(articles=45)
    article = site.article(0)
    with pytest.raises(KeyError):
        site.edit("12", title="x")
    with pytest.raises(ValueError):
        site.edit(article.key)
    with pytest.raises(ValueError):
        site.edit(article.key, paragraph=(article.page_count + 1, 0, "x"))
    with pytest.raises(IndexError):
        site.edit(article.key, paragraph=(1, len(article.pages[0]), "x"))
    with pytest.raises(ValueError):
        site.edit(article.key, title=" &nbsp; ")
    with pytest.raises(IndexError):
        site.edit(article.key, caption=(len(article.images) + 1, "[Photo]"))
    assert site.edits() == {}
    assert site.article(0) == article


# -- publishing -----------------------------------------------------------------------------


def _listed_keys(site: ReplicaSite, page: int) -> list[str]:
    path = site.listing_path(page)
    doc = lxml.html.document_fromstring(decode(get(site, path)))
    keys = []
    for a in doc.xpath('//div[@class="lis_box"]/h3/a'):
        ref = parse_article_url(urljoin(f"http://{HOST}{path}", a.get("href")))
        assert ref is not None
        keys.append(ref.article_key)
    return keys


def test_publish_puts_new_articles_on_top_and_shifts_the_rest() -> None:
    site = ReplicaSite(articles=45, per_page=10)
    old_keys = [site.article(i).key for i in range(len(site))]
    old_pages = {
        site.article(i).path(n): get(site, site.article(i).path(n)).body
        for i in range(len(site))
        for n in range(1, site.article(i).page_count + 1)
    }
    old_expected = site.expected()
    old_listing = [_listed_keys(site, p) for p in range(1, site.listing_pages + 1)]
    newest = site.article(0)

    keys = site.publish(3)
    assert len(site) == 48 and site.published == 3
    assert keys == [site.article(i).key for i in range(3)]
    assert [site.article(i).key for i in range(3, 48)] == old_keys
    assert all(site.index_of(k) == i + 3 for i, k in enumerate(old_keys))
    assert int(keys[2]) > int(newest.key) and int(keys[0]) > int(keys[1]) > int(keys[2])
    assert site.article(2).published_on > newest.published_on
    # The listing: the new ones first, every other item three places down.
    listing = [_listed_keys(site, p) for p in range(1, site.listing_pages + 1)]
    flat = [key for keys_on in listing for key in keys_on]
    old_flat = [key for keys_on in old_listing for key in keys_on]
    assert flat[:3] == keys and flat[3:13] == old_flat[:10]
    assert listing[1][:3] == old_listing[0][-3:]
    assert sorted(set(flat)) == sorted(keys + old_keys)
    twice = site.fault_keys["listed_twice"]
    assert [k for k in flat if flat.count(k) > 1] == [twice, twice]
    pages_of_twice = [p for p, keys_on in enumerate(listing, 1) if twice in keys_on]
    assert site.dup_page is not None and pages_of_twice == [site.dup_page, site.dup_page + 1]
    # Existing articles: same pages, byte for byte, same truth.
    for path, body in old_pages.items():
        assert get(site, path).body == body, path
    expected = site.expected()
    assert {k: v for k, v in expected.items() if k in old_expected} == old_expected
    assert set(expected) == set(old_expected) | set(keys)
    for key in keys:
        article = site.article_by_key(key)
        assert expected[key].body == article.body and expected[key].complete
        assert get(site, article.path(article.page_count)).status == 200

    later = site.publish(2)
    assert int(later[-1]) > int(keys[0])
    assert site.article(1).published_on > site.article_by_key(keys[0]).published_on
    assert [site.article(i).key for i in range(5)] == later + keys
    assert site.publish(0) == [] and len(site) == 50
    with pytest.raises(ValueError):
        site.publish(-1)


def test_published_articles_are_served_and_unpublished_ids_are_not(
    served: tuple[ReplicaSite, ReplicaServer],
) -> None:
    site, server = served
    twin = ReplicaSite(articles=45)
    ahead = twin.publish(2)  # what this site will publish next
    status, listing = fetch(server.url(site.section_path))
    assert status == 200 and ahead[0] not in listing
    path = twin.article_by_key(ahead[0]).path()
    with pytest.raises(urllib.error.HTTPError) as error:
        fetch(server.url(path))
    assert error.value.code == 404
    with pytest.raises(KeyError):
        site.index_of(ahead[0])

    assert site.publish(2) == ahead
    status, listing = fetch(server.url(site.section_path))
    hrefs = re.findall(r'<div class="lis_box"><h3><a href="([^"]+)"', listing)[:2]
    refs = [parse_article_url(urljoin(server.url(site.section_path), h)) for h in hrefs]
    assert [ref.article_key if ref else None for ref in refs] == ahead
    status, body = fetch(server.url(path))
    assert status == 200 and site.article(0).title in page_text(body)
    assert get(site, path).body == get(twin, path).body
    # Published articles can be edited like any other.
    site.edit_article(ahead[1])
    assert site.article(1).pages[0][0] != twin.article(1).pages[0][0]


def test_publish_on_a_hundred_thousand_article_site_is_cheap() -> None:
    site = ReplicaSite(articles=100_000)
    keys = site.publish(5)
    assert len(site) == 100_005 and site.listing_pages == 5001
    assert _listed_keys(site, 1)[:5] == keys
    # 100,005 articles and the repeated one: the last page holds the six oldest entries.
    assert site.listing_entries(site.listing_pages) == list(range(99_999, 100_005))
    assert site.article(100_004).key == ReplicaSite(articles=100_000).article(99_999).key


def test_same_history_gives_byte_identical_sites() -> None:
    def build() -> ReplicaSite:
        site = ReplicaSite(articles=50, seed=11)
        site.publish(4)
        site.edit_article(7)
        site.edit(site.article(0).key, title="A new headline &amp; more")
        site.publish(1)
        return site

    one, two = build(), build()
    assert one.fault_keys == two.fault_keys
    paths = ["/", one.section_path, one.listing_path(2)]
    for i in range(len(one)):
        article = one.article(i)
        paths += [article.path(n) for n in range(1, article.page_count + 1)]
    for path in paths:
        a, b = get(one, path), get(two, path)
        if a.status >= 500:
            continue
        assert (a.status, a.body) == (b.status, b.body), path
    assert one.expected() == two.expected()


def test_publish_and_edit_while_serving(served: tuple[ReplicaSite, ReplicaServer]) -> None:
    site, server = served
    paths = [site.section_path, site.listing_path(2), "/"] + [
        site.article(i).path() for i in (5, 9)
    ]
    statuses: list[int] = []

    def crawl() -> None:
        for _ in range(6):
            for path in paths:
                statuses.append(fetch(server.url(path))[0])

    threads = [threading.Thread(target=crawl) for _ in range(4)]
    for thread in threads:
        thread.start()
    for n in range(10):
        site.publish(1)
        site.edit_article(n)
    for thread in threads:
        thread.join(timeout=30)
    assert not server.errors and set(statuses) == {200} and len(statuses) == 4 * 6 * len(paths)
    assert len(site) == 55 and len(site.expected()) == len(site) - 2
