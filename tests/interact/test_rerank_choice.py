"""RnR vs CUR chosen by a measurement (issue 13 item 4): calibration at build time, `search(method=...)`, budgets,
and the saved folder with and without the bi-encoder side — on synthetic score matrices (no model, no ../shared)."""

import json

import numpy as np
import pytest

from semspace.errors import InvalidParameterError, NoBiEncoderError
from semspace.interact.calibration import (
    CALIBRATION,
    METHODS,
    RerankCalibration,
    calibrate_rerank,
)
from semspace.interact.cur import CURIndex
from semspace.interact.searcher import BI_ENCODER, ITEMS, CURSearcher

N_ITEMS, N_ANCHORS, N_TEST, K_I = 300, 40, 6, 20


class MatrixCrossEncoder:
    """A cross-encoder-like scorer: the score of (query, item) is looked up in a matrix; counts every pair."""

    model_id = "matrix-ce"

    def __init__(self, queries, items, scores):
        self.row = {q: i for i, q in enumerate(queries)}
        self.col = {t: j for j, t in enumerate(items)}
        self.scores, self.calls = scores, 0

    def predict(self, pairs, **_):
        self.calls += len(pairs)
        return np.array([self.scores[self.row[q], self.col[t]] for q, t in pairs], dtype=np.float32)


class TableEncoder:
    """A bi-encoder-like encoder: each text has a fixed vector."""

    model_id = "table-bi"

    @property
    def spec(self):  # what Encoder.spec gives: how to re-open it
        return {"model": "table-bi", "pooling": "default", "max_length": None}

    def __init__(self, texts, vectors):
        self.vec = dict(zip(texts, vectors, strict=True))

    def encode(self, texts, **_):
        return np.stack([self.vec[t] for t in texts]).astype(np.float32)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def world(kind: str, seed: int = 0):
    """(anchor queries, test queries, items, CE, encoder). "de": the CE score IS the bi-encoder cosine in 64-d (so
    RnR-DE is exact and R has rank 64 > the 20 anchor items); "cur": R has rank 3 and the bi-encoder is noise."""
    rng = np.random.default_rng(seed)
    n_q = N_ANCHORS + N_TEST
    queries, items = [f"q{i}" for i in range(n_q)], [f"item {j}" for j in range(N_ITEMS)]
    if kind == "de":
        qv, iv = unit(rng.normal(size=(n_q, 64))), unit(rng.normal(size=(N_ITEMS, 64)))
        scores = qv @ iv.T
    else:
        scores = rng.normal(size=(n_q, 3)) @ rng.normal(size=(3, N_ITEMS))
        qv, iv = rng.normal(size=(n_q, 16)), rng.normal(size=(N_ITEMS, 16))
    ce = MatrixCrossEncoder(queries, items, scores)
    enc = TableEncoder(queries + items, np.vstack([qv, iv]))
    return queries[:N_ANCHORS], queries[N_ANCHORS:], items, ce, enc


@pytest.fixture(scope="module")
def built():
    """One searcher per world, built once (the calibration is the slow part)."""
    out = {}
    for kind in ("de", "cur"):
        anchors, tests, items, ce, enc = world(kind)
        searcher = CURSearcher.build(ce, anchors, items, n_anchor_items=K_I, encoder=enc)
        assert ce.calls == N_ANCHORS * N_ITEMS  # calibration made no CE call of its own
        out[kind] = (searcher, tests, ce, enc)
    return out


def test_auto_picks_rnr_when_the_bi_encoder_is_the_cross_encoder(built):
    searcher, tests, _, _ = built["de"]
    table = searcher.calibration
    assert table.n_queries == N_ANCHORS and table.n_folds == 5 and table.budgets == [10, 20, 50, 100, 200, 300]
    assert table.recall["rnr"][10][table.budgets.index(50)] == 1.0
    hit = searcher.search(tests[0], k=10, budget=50)
    assert hit.method == "rnr" and hit.calls == 50
    assert hit.reason.startswith("rnr: Top-10-Recall@50 1.00 vs cur ") and "on 40 held-out anchor queries" in hit.reason


def test_auto_picks_cur_when_scores_are_low_rank_and_the_bi_encoder_is_noise(built):
    searcher, tests, _, _ = built["cur"]
    table = searcher.calibration
    b = table.budgets.index(50)
    assert table.recall["cur"][10][b] > 0.9 > 0.5 > table.recall["rnr"][10][b]
    hit = searcher.search(tests[0], k=10, budget=50)
    assert hit.method == "cur(rounds=1)" and hit.reason.startswith("cur: Top-10-Recall@50")
    assert len(hit.ids) == 10 and hit.calls == 50


def test_calibration_table_shape_and_cur_below_its_anchor_items(built):
    table = built["cur"][0].calibration
    assert set(table.recall) == set(METHODS) and table.ks == [1, 10]
    for method in METHODS:
        for k in table.ks:
            values = table.recall[method][k]
            assert len(values) == len(table.budgets)
            assert all(v is None or 0.0 <= v <= 1.0 for v in values)
    # CUR scores its 20 anchor items first: budgets 10 (< 20) are not measured for it, RnR is
    assert table.recall["cur"][10][0] is None and table.recall["adacur"][1][0] is None
    assert table.recall["rnr"][10][0] is not None
    assert "held-out anchor queries" in table.summary()


def test_choose_nearest_budget_and_k_ties_go_to_rnr():
    table = RerankCalibration(
        budgets=[10, 100],
        ks=[1, 10],
        recall={
            "rnr": {1: [0.5, 0.8], 10: [0.3, 0.6]},
            "cur": {1: [None, 0.8], 10: [None, 0.7]},
            "adacur": {1: [None, 0.7], 10: [None, 0.9]},
        },
        n_queries=40,
        n_folds=5,
        n_anchor_items=20,
    )
    assert table.choose(1, 100).method == "rnr"  # 0.8 vs 0.8: the cheaper one
    choice = table.choose(8, 120)  # nearest measured: k=10, B=100
    assert (choice.method, choice.rounds) == ("adacur", 5)
    assert choice.reason.startswith("adacur: Top-10-Recall@100 0.90 vs rnr 0.60, cur 0.70 on 40")
    assert "nearest measured to k=8, B=120" in choice.reason
    assert table.choose(10, 12).method == "rnr"  # only RnR was measured at B=10
    assert table.choose(10, 100, available=("cur",)).method == "cur"
    assert RerankCalibration.from_dict(json.loads(json.dumps(table.to_dict()))) == table


@pytest.mark.parametrize("method", ["auto", "cur", "rnr"])
@pytest.mark.parametrize("budget", [20, 37, 120])
def test_every_method_spends_at_most_its_budget(built, method, budget):
    for kind in ("de", "cur"):
        searcher, tests, ce, _ = built[kind]
        before = ce.calls
        hit = searcher.search(tests[1], k=10, budget=budget, rounds=3, method=method)
        assert hit.calls == ce.calls - before <= budget
        assert len(hit.ids) == 10 and hit.exact_scores == sorted(hit.exact_scores, reverse=True)
        if method == "cur":
            assert hit.method == "cur(rounds=3)" and hit.reason == "cur: requested"


def test_auto_below_the_anchor_items_runs_rnr(built):
    searcher, tests, _, _ = built["cur"]
    hit = searcher.search(tests[2], k=5, budget=K_I - 1)
    assert hit.method == "rnr" and hit.calls == K_I - 1 and "below the 20 anchor items" in hit.reason


def test_adacur_choice_runs_from_the_bi_encoder(built):
    searcher, tests, _, _ = built["de"]
    table = searcher.calibration
    searcher.calibration = RerankCalibration(
        table.budgets, table.ks, {"adacur": table.recall["adacur"]}, table.n_queries, 5, K_I
    )
    try:
        hit = searcher.search(tests[0], k=10, budget=100)
    finally:
        searcher.calibration = table
    assert hit.method == "adacur(rounds=5, first=bi-encoder)" and hit.calls == 100


def test_save_load_round_trip_with_the_bi_encoder_side(built, tmp_path):
    searcher, tests, ce, enc = built["de"]
    folder = searcher.save(tmp_path / "cur")
    assert (folder / BI_ENCODER).exists() and (folder / CALIBRATION).exists()
    stored = json.loads((folder / CALIBRATION).read_text())
    assert stored["format"] == "semspace.cur_calibration" and stored["format_version"] == 1
    assert json.loads((folder / ITEMS).read_text())["encoder"]["model"] == "table-bi"
    loaded = CURSearcher.load(folder, cross_encoder=ce, encoder=enc)
    assert loaded.has_bi_encoder and loaded.calibration == searcher.calibration
    assert loaded.item_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(loaded.item_vectors, axis=1), 1.0, rtol=1e-6)
    a, b = searcher.search(tests[3], k=10, budget=50), loaded.search(tests[3], k=10, budget=50)
    assert (a.ids, a.method, a.reason) == (b.ids, b.method, b.reason)


def test_without_a_bi_encoder_side(tmp_path):
    anchors, tests, items, ce, _ = world("cur", seed=1)
    searcher = CURSearcher.build(ce, anchors, items, n_anchor_items=K_I)
    assert not searcher.has_bi_encoder and searcher.calibration is None
    hit = searcher.search(tests[0], k=10, budget=40)
    assert hit.method == "cur(rounds=1)" and "no bi-encoder side" in hit.reason and hit.calls == 40
    with pytest.raises(NoBiEncoderError, match="rebuild it with one"):
        searcher.search(tests[0], k=10, budget=40, method="rnr")
    with pytest.raises(InvalidParameterError, match="'method'"):
        searcher.search(tests[0], method="bm25")
    folder = searcher.save(tmp_path / "cur")
    assert not (folder / BI_ENCODER).exists() and not (folder / CALIBRATION).exists()
    loaded = CURSearcher.load(folder, cross_encoder=ce)
    assert not loaded.has_bi_encoder and loaded.search(tests[0], k=10, budget=40).ids == hit.ids


def test_old_folder_without_the_bi_encoder_side_still_loads(built, tmp_path):
    searcher, tests, ce, enc = built["cur"]
    folder = searcher.save(tmp_path / "cur")
    (folder / BI_ENCODER).unlink()
    (folder / CALIBRATION).unlink()
    items = json.loads((folder / ITEMS).read_text())
    del items["encoder"]  # items.json as written before the bi-encoder side
    (folder / ITEMS).write_text(json.dumps(items))
    loaded = CURSearcher.load(folder, cross_encoder=ce, encoder=enc)
    assert not loaded.has_bi_encoder and loaded.calibration is None
    assert loaded.search(tests[0], k=10, budget=30, rounds=2, method="cur").method == "cur(rounds=2)"


def test_a_model_mismatch_is_logged_and_the_saved_bi_encoder_spec_wins(built, tmp_path, caplog):
    searcher, _, ce, _ = built["de"]
    folder = searcher.save(tmp_path / "cur")

    class Other:
        model_id = "another-model"

        def encode(self, texts, **_):
            raise AssertionError("the saved bi-encoder spec should win")

    with caplog.at_level("WARNING"):
        loaded = CURSearcher.load(folder, cross_encoder=ce, encoder=Other())
    assert "not the given encoder" in caplog.text and loaded.encoder_spec["model"] == "table-bi"


def test_calibrate_rerank_needs_two_anchor_queries_and_matching_shapes():
    rng = np.random.default_rng(0)
    R, Q, V = rng.normal(size=(1, 30)), rng.normal(size=(1, 4)), rng.normal(size=(30, 4))
    assert calibrate_rerank(R, Q, V, CURIndex(5)) is None
    R, Q = rng.normal(size=(6, 30)), rng.normal(size=(6, 4))
    table = calibrate_rerank(R, Q, V, CURIndex(5), budgets=(5, 10, 50), ks=(1, 3), n_folds=5)
    assert table.budgets == [5, 10, 30] and table.n_folds == 5 and table.n_queries == 6
    assert table.recall["cur"][3][-1] == table.recall["rnr"][3][-1] == 1.0  # B = |I|: every method is exact
    from semspace.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        calibrate_rerank(R, Q[:3], V, CURIndex(5))


def test_a_bi_encoder_side_without_calibration_runs_cur_on_auto_and_rnr_on_request():
    anchors, tests, items, ce, enc = world("de", seed=2)
    searcher = CURSearcher.build(ce, anchors, items, n_anchor_items=K_I, encoder=enc, calibrate=False)
    assert searcher.has_bi_encoder and searcher.calibration is None
    auto = searcher.search(tests[0], k=5, budget=30)
    assert auto.method == "cur(rounds=1)" and "no calibration table" in auto.reason
    rnr = searcher.search(tests[0], k=5, budget=30, method="rnr")
    exact = np.argsort(-ce.scores[N_ANCHORS])[:5]
    assert rnr.method == "rnr" and rnr.ids == [str(j) for j in exact]  # the bi-encoder is the CE here
