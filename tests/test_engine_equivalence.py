"""The engine against its plain definitions: text coding, key normalisation, threads, as_of.

``oafin.engine.codes`` codes text by hashing and ``oafin.engine.keys.norm_keys`` normalises in
Arrow; both must give exactly what the one-value-at-a-time definitions give (``pandas.factorize``,
``norm_key``), whatever the text.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oafin.engine import codes as C
from oafin.engine.keys import _ASCII_SPACE, norm_key, norm_keys, split_keys, split_list

# keys as sources write them: ASCII, full-width forms, every kind of space, controls, CJK, missing
ALPHABET = st.sampled_from(
    list("bxBX0129-_/ ,.")
    + ["\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\x00", "\x7f", "\x85", "\xa0"]
    + ["\u3000", "\u2003", "Ｂ", "Ｘ", "１", "ﬁ", "é", "報", "𝟘"]
)
KEY = st.one_of(st.none(), st.just(""), st.text(ALPHABET, max_size=8))
KEYS = st.lists(KEY, max_size=40)


def _partition(codes: np.ndarray) -> set[tuple[int, ...]]:
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(codes):
        groups.setdefault(int(c), []).append(i)
    return {tuple(v) for v in groups.values()}


def test_the_ascii_space_class_is_what_python_calls_space() -> None:
    below_128 = "".join(chr(i) for i in range(128))
    assert re.findall(r"\s", below_128) == [c for c in below_128 if re.fullmatch(_ASCII_SPACE, c)]


@settings(max_examples=300, deadline=None)
@given(KEYS, st.sampled_from(["object", "str"]))
def test_norm_keys_is_norm_key_of_each_value(values: list[str | None], dtype: str) -> None:
    series = pd.Series(values, dtype=dtype, index=np.arange(len(values)) * 3)
    got = norm_keys(series)
    assert got.tolist() == [norm_key(v) for v in values]
    assert got.index.equals(series.index)


@settings(max_examples=200, deadline=None)
@given(KEYS)
def test_split_keys_explodes_like_split_list(values: list[str | None]) -> None:
    series = pd.Series(values, dtype=object)
    frame = split_keys(series)
    expected = [(i, k) for i, keys in enumerate(split_list(series)) for k in keys]
    assert list(zip(frame["pos"].tolist(), frame["key"].tolist(), strict=True)) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(KEYS, min_size=1, max_size=3))
def test_text_codes_number_text_as_factorize_does(parts: list[list[str | None]]) -> None:
    series = [pd.Series(p, dtype="str") for p in parts]
    got = C.text_codes(series)
    joined = pd.concat(series, ignore_index=True)
    missing = (joined.isna() | (joined == "")).to_numpy(dtype=bool)
    expected, _ = pd.factorize(joined.where(~missing))
    assert (got == -1).tolist() == missing.tolist()
    # the same codes, numbered in order of first appearance, as pandas numbers them
    assert got.tolist() == expected.tolist()


def test_factorize_text_keeps_empty_text_and_codes_missing_as_minus_one() -> None:
    codes, uniques = C.factorize_text(pd.Series(["b", None, "", "a", "b", ""], dtype=object))
    assert codes.tolist() == [0, -1, 1, 2, 0, 1]
    assert uniques.tolist() == ["b", "", "a"]


def test_a_hash_collision_is_found_and_the_text_coded_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every value given the same first hash: the second hash disagrees, the strings decide."""
    parts = [pd.Series(["BX1", "BX2", None], dtype="str"), pd.Series(["BX1", "BX3", "", "BX2"], dtype="str")]
    assert C.text_codes(parts).tolist() == [0, 1, -1, 0, 2, -1, 1]
    real = C._hash

    def colliding(series: pl.Series, seed: int) -> np.ndarray:
        hashes = real(series, seed)
        return np.zeros_like(hashes) if seed == C._SEEDS[0] else hashes

    monkeypatch.setattr(C, "_hash", colliding)
    assert C._codes_of_hashes(np.zeros(3, dtype=np.int64), np.array([1, 2, 1], dtype=np.uint64)) is None
    assert C.text_codes(parts).tolist() == [0, 1, -1, 0, 2, -1, 1]


def test_threads_do_not_change_the_result() -> None:
    """The key spaces coded side by side give what one thread gives, field for field."""
    from bench.reconcile import PERIOD, make_frames
    from oafin.engine.reconcile import ReconcileParams, reconcile

    frames = make_frames(6000, seed=11)
    params = ReconcileParams(period=PERIOD, as_of=PERIOD.end)
    one, three = (
        reconcile(
            frames["claims"],
            frames["docs"],
            params,
            invoices=frames["invoices"],
            invalid_invoices=frames["invoices"]
            .iloc[:40]
            .assign(invoice_key="X", reasons="r")[["claim_id", "invoice_key", "reasons"]],
            references=frames["references"],
            threads=threads,
        )
        for threads in (1, 3)
    )
    assert len(one.exceptions) > 100 and len(one.matches) > 5000
    pd.testing.assert_frame_equal(one.exceptions, three.exceptions)
    pd.testing.assert_frame_equal(one.matches, three.matches)
    assert one.stats == three.stats


def test_documents_after_as_of_are_as_if_absent() -> None:
    """Masking the documents dated after ``as_of`` gives what leaving them out gives."""
    from datetime import timedelta

    from bench.reconcile import PERIOD, make_frames
    from oafin.engine.reconcile import ReconcileParams, reconcile
    from oafin.engine.scope import doc_dates

    frames = make_frames(6000, seed=5)
    as_of = PERIOD.end - timedelta(days=16)
    params = ReconcileParams(period=PERIOD, as_of=as_of)
    docs = frames["docs"]
    later = (doc_dates(docs) > pd.Timestamp(as_of)).to_numpy(dtype=bool)
    assert 300 < later.sum() < len(docs) - 300
    masked, dropped = (
        reconcile(frames["claims"], d, params, references=frames["references"])
        for d in (docs, docs.loc[~later])
    )
    assert len(masked.exceptions) > 100
    pd.testing.assert_frame_equal(masked.exceptions, dropped.exceptions)
    pd.testing.assert_frame_equal(masked.matches, dropped.matches)
    assert masked.stats == dropped.stats
    pd.testing.assert_frame_equal(masked.ambiguous, dropped.ambiguous)


def test_links_sorted_packed_or_by_positions_alike() -> None:
    from oafin.engine.reconcile import _by_claim_then_doc

    rng = np.random.default_rng(3)
    pairs = np.unique(rng.integers(0, 5000, size=(4000, 2)), axis=0)[rng.permutation(3900)]
    c, d = pairs[:, 0], pairs[:, 1]
    pass_, rule = rng.integers(0, 3, len(c)), rng.integers(0, 5, len(c))
    packed = _by_claim_then_doc(c, d, pass_, rule, 5000)
    by_positions = _by_claim_then_doc(c, d, pass_, rule, 2**62)  # too wide to pack
    order = np.lexsort((d, c))
    for got in (packed, by_positions):
        for column, expected in zip(got, (c, d, pass_, rule), strict=True):
            assert column.tolist() == expected[order].tolist()


def test_text_codes_across_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """First positions and the collision check run in chunks; tiny chunks give the same codes."""
    monkeypatch.setattr(C, "_CHUNK", 3)
    values = pd.Series(list("abacdbaecfghaa") + [None, "", "b"], dtype="str")
    missing = (values.isna() | (values == "")).to_numpy()
    expected, _ = pd.factorize(values.where(~missing))
    assert C.text_codes([values]).tolist() == expected.tolist()


def test_links_keep_the_first_of_each_pair_in_order() -> None:
    from oafin.engine.matching import Links

    c = np.array([0, 1, 0, 2, 1, 0])
    d = np.array([5, 6, 5, 7, 6, 8])
    links = Links(c, d, np.arange(6), np.arange(6) * 2, np.arange(6) * 10).unique(n_docs=9)
    assert links.c.tolist() == [0, 1, 2, 0] and links.d.tolist() == [5, 6, 7, 8]
    assert links.match_pass.tolist() == [0, 1, 3, 5] and links.share_fen.tolist() == [0, 10, 30, 50]
    same = Links(c[:2], d[:2], c[:2], c[:2], c[:2]).unique(n_docs=9)
    assert same.d.tolist() == [5, 6]


def test_norm_keys_in_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import oafin.engine.keys as K

    monkeypatch.setattr(K, "_NORM_CHUNK", 3)
    values = pd.Series([" ＢＸ2026 1001 ", "bx1\t", None, "", "a\x1cb", "ok", "x\u3000y", "a b"], dtype="str")
    got = norm_keys(values)
    assert got.tolist() == [norm_key(v) for v in values]
    assert got.array._pa_array.num_chunks == 3


def test_a_child_forked_after_polars_ran_codes_text_without_it() -> None:
    """polars' thread pool does not survive a fork: a child forked after polars ran must not wait
    for it (the crash tests fork a run after others ran the engine in the same worker)."""
    import multiprocessing

    parts = [pd.Series(["BX1", "BX2", None, "BX1", ""], dtype="str")]
    expected = C.text_codes(parts).tolist()  # polars has run in this process now
    assert expected == [0, 1, -1, 0, -1]
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        send.send((C._fork_state["forked_after_polars"], C.text_codes(parts).tolist()))

    proc = context.Process(target=child, daemon=True)
    proc.start()
    assert receive.poll(60), "the forked child hung coding text"
    flagged, codes = receive.recv()
    proc.join(10)
    assert flagged and codes == expected
