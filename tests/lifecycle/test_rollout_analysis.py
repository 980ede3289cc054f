"""The rollout analysis (pure): its figures against scipy, numpy and scikit-learn,
and what the controller decides on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score

from lifecycle import rollout_analysis as ra
from monitoring import drift

TH = dict(ra.DEFAULT_THRESHOLDS)


def sample(n: int, *, seed: int = 0, errors: int = 0, shift: float = 0.0, latency: float = 5.0):
    rng = np.random.default_rng(seed)
    status = [200] * (n - errors) + [422] * errors
    probability = np.clip(rng.beta(2, 5, n - errors) + shift, 0, 1).tolist() + [None] * errors
    prediction = [int(p >= 0.5) for p in probability[: n - errors]] + [None] * errors
    return ra.Sample.of(
        {
            "status": status,
            "error_code": [""] * (n - errors) + ["prediction_failed"] * errors,
            "latency_ms": rng.gamma(2.0, latency / 2, n).tolist(),
            "prediction": prediction,
            "probability": probability,
        }
    )


def test_the_error_rate_and_p99_are_numpys_and_refusals_of_bad_input_do_not_count():
    stable = sample(400, seed=1)
    candidate = ra.Sample.of(
        {
            "status": [200] * 380 + [422] * 12 + [400] * 8,
            "error_code": [""] * 380 + ["prediction_failed"] * 12 + ["invalid_input"] * 8,
            "latency_ms": np.linspace(1, 100, 400).tolist(),
            "prediction": [1] * 380 + [None] * 20,
        }
    )
    check = ra.error_rate_check(stable, candidate, TH)
    assert check["candidate"] == pytest.approx(12 / 400)
    assert check["stable"] == 0.0 and check["verdict"] == "fail"  # 0.03 > 0.02
    latency = ra.latency_check(stable, candidate, TH)
    assert latency["candidate"] == pytest.approx(np.percentile(np.linspace(1, 100, 400), 99))
    assert latency["stable"] == pytest.approx(np.percentile(stable.latency_ms, 99))
    assert latency["limit"] == pytest.approx(latency["stable"] * 2.0 + 25.0)


def test_prediction_psi_of_classes_is_scipys_symmetric_kl_and_ks_is_scipys():
    rng = np.random.default_rng(3)
    a = rng.choice(["no", "yes"], 2000, p=[0.7, 0.3]).tolist()
    b = rng.choice(["no", "yes"], 1500, p=[0.4, 0.6]).tolist()
    stable = ra.Sample.of({"status": [200] * 2000, "latency_ms": [1.0] * 2000, "prediction": a})
    candidate = ra.Sample.of({"status": [200] * 1500, "latency_ms": [1.0] * 1500, "prediction": b})
    check = ra.prediction_drift_check(stable, candidate, TH)
    p = pd.Series(a).value_counts(normalize=True).sort_index().to_numpy()
    q = pd.Series(b).value_counts(normalize=True).sort_index().to_numpy()
    assert check["psi"] == pytest.approx(stats.entropy(p, q) + stats.entropy(q, p), rel=1e-9)
    assert check["verdict"] == "fail"

    stable, candidate = sample(800, seed=4), sample(700, seed=5, shift=0.3)
    check = ra.prediction_drift_check(stable, candidate, TH)
    expected = stats.ks_2samp(stable.probability, candidate.probability)
    assert check["ks_statistic"] == pytest.approx(expected.statistic)
    assert check["ks_p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
    # The same PSI as monitoring's drift engine on the same two series.
    same = drift.compare_series(
        pd.Series(stable.probability), pd.Series(candidate.probability), kind="numeric"
    )
    assert check["psi"] == pytest.approx(same.psi) and check["psi"] > 0.2
    assert check["verdict"] == "fail"


def test_disagreement_is_one_minus_sklearns_accuracy_between_the_two_versions():
    rng = np.random.default_rng(7)
    a = rng.integers(0, 3, 500).tolist()
    b = [x if rng.random() > 0.15 else (x + 1) % 3 for x in a]
    check = ra.disagreement_check(a, b, TH, task="classification")
    assert check["rate"] == pytest.approx(1 - accuracy_score(a, b))
    assert check["verdict"] == "pass"  # ~0.15 < 0.2


def test_too_few_requests_is_inconclusive_never_a_pass():
    result = ra.analyse_live(sample(500), sample(10, seed=2), TH)
    assert result["verdict"] == "inconclusive" and "fewer than 30" in result["reason"]


def test_a_healthy_candidate_passes_and_a_shifted_one_fails_on_psi_alone():
    healthy = ra.analyse_live(sample(600, seed=1), sample(300, seed=2), TH)
    assert healthy["verdict"] == "pass", healthy
    shifted = ra.analyse_live(sample(600, seed=1), sample(300, seed=2, shift=0.35), TH)
    assert shifted["verdict"] == "fail"
    assert ra.failed_checks(shifted) == ["prediction_psi"]
    assert shifted["checks"]["error_rate"]["verdict"] == "pass"


def test_the_failure_limits_decide_when_a_canary_rolls_back():
    shifted = ra.analyse_live(sample(600, seed=1), sample(300, seed=2, shift=0.35), TH)
    action, counts, _ = ra.rollout_decision(
        {}, shifted, inconclusive_in_row=0, inconclusive_limit=3
    )
    assert (action, counts) == ("wait", {"prediction_psi": 1})  # limit 2
    action, counts, why = ra.rollout_decision(
        counts, shifted, inconclusive_in_row=0, inconclusive_limit=3
    )
    assert action == "rollback" and "prediction PSI" in why
    erring = ra.analyse_live(sample(600, seed=1), sample(300, seed=2, errors=30), TH)
    action, _, why = ra.rollout_decision({}, erring, inconclusive_in_row=0, inconclusive_limit=3)
    assert action == "rollback" and why.startswith("error rate")  # limit 1


def test_inconclusive_analyses_pause_after_the_limit():
    few = ra.analyse_live(sample(500), sample(5), TH)
    assert ra.rollout_decision({}, few, inconclusive_in_row=0, inconclusive_limit=3)[0] == "wait"
    assert ra.rollout_decision({}, few, inconclusive_in_row=2, inconclusive_limit=3)[0] == "pause"


@pytest.mark.parametrize(
    "given",
    [{"accuracy": 0.1}, {"error_rate": -0.1}, {"error_rate": float("nan")}, {"psi": True}, [1]],
)
def test_unknown_or_bad_thresholds_are_refused(given):
    with pytest.raises(ValueError):
        ra.thresholds_valid(given, ra.DEFAULT_THRESHOLDS)


def test_small_samples_from_the_same_distribution_do_not_fail_on_psi_noise():
    # PSI alone at 40 against 80 requests is about 0.34 by chance; the KS test says no.
    for seed in range(5):
        check = ra.prediction_drift_check(sample(80, seed=seed), sample(40, seed=100 + seed), TH)
        assert check["verdict"] == "pass", check
        assert check["p_value_test"] == "ks" and check["p_value"] >= 0.01


def test_the_metric_check_is_sklearns_accuracy_on_each_sides_labelled_requests():
    rng = np.random.default_rng(11)
    truth_s, truth_c = rng.integers(0, 2, 200), rng.integers(0, 2, 120)
    pred_s = np.where(rng.random(200) < 0.9, truth_s, 1 - truth_s)
    pred_c = np.where(rng.random(120) < 0.7, truth_c, 1 - truth_c)
    check = ra.metric_check((truth_s, pred_s), (truth_c, pred_c), TH, task="classification")
    assert check["metric"] == "accuracy"
    assert check["stable"] == pytest.approx(accuracy_score(truth_s, pred_s))
    assert check["candidate"] == pytest.approx(accuracy_score(truth_c, pred_c))
    assert check["drop"] == pytest.approx(check["stable"] - check["candidate"])
    assert check["verdict"] == "fail"
    few = ra.metric_check((truth_s, pred_s), (truth_c[:5], pred_c[:5]), TH, task="classification")
    assert few["verdict"] == "skipped"  # labels come late: never blocks, never passes for them
    assert ra.metric_check(None, None, TH, task="classification")["verdict"] == "skipped"


def test_the_metric_check_uses_the_given_metric_with_scores_as_scikit_learn_does():
    from sklearn.metrics import f1_score, roc_auc_score

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 200)
    scores_a = np.clip(labels * 0.6 + rng.random(200) * 0.5, 0, 1)
    scores_b = rng.random(200)  # no skill
    stable = (labels.tolist(), (scores_a > 0.5).astype(int).tolist(), scores_a.tolist())
    candidate = (labels.tolist(), (scores_b > 0.5).astype(int).tolist(), scores_b.tolist())
    th = {**TH, "min_labels": 30, "metric_drop": 0.05}
    auc = ra.metric_check(
        stable, candidate, th, task="classification", metric="roc_auc", classes=([0, 1], [0, 1])
    )
    assert auc["metric"] == "roc_auc" and auc["verdict"] == "fail"
    assert auc["stable"] == pytest.approx(roc_auc_score(labels, scores_a))
    assert auc["candidate"] == pytest.approx(roc_auc_score(labels, scores_b))
    f1 = ra.metric_check(
        stable, candidate, th, task="classification", metric="f1", classes=([0, 1], [0, 1])
    )
    assert f1["stable"] == pytest.approx(f1_score(labels, stable[1]))
    # an unknown or unset metric: the task's first (accuracy)
    assert ra.metric_check(stable, candidate, th, task="classification")["metric"] == "accuracy"
    assert (
        ra.metric_check(stable, candidate, th, task="classification", metric="rmse")["metric"]
        == "accuracy"
    )


# --- the fairness gap -----------------------------------------------------------------


def biased(n: int, *, seed: int, bias: float, groups=("F", "M")):
    """Labels, a sensitive column, and predictions right 85 % of the time, except that
    ``bias`` of group F's positives are predicted negative (a wider gap between groups)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(groups, n, p=[0.45, 0.55])
    band = rng.choice(["young", "old"], n)
    truth = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < 0.85, truth, 1 - truth)
    pred = np.where((sex == "F") & (pred == 1) & (rng.random(n) < bias), 0, pred)
    return truth, pred, sex, band


def test_the_fairness_gap_is_fairlearns_on_each_sides_labelled_requests():
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        selection_rate,
    )

    ts, ps, ss, _ = biased(300, seed=1, bias=0.0)
    tc, pc, sc, _ = biased(200, seed=2, bias=0.8)
    check = ra.fairness_check(
        ra.Labelled(ts, ps, {"sex": ss}),
        ra.Labelled(tc, pc, {"sex": sc}),
        TH,
        task="classification",
        sensitive=["sex"],
        positive=1,
    )
    gaps = check["gaps"]
    for side, (t, p, s) in (("stable", (ts, ps, ss)), ("candidate", (tc, pc, sc))):
        assert gaps["demographic_parity_difference"][side] == pytest.approx(
            demographic_parity_difference(t, p, sensitive_features=s)
        )
        assert gaps["equalized_odds_difference"][side] == pytest.approx(
            equalized_odds_difference(t, p, sensitive_features=s)
        )
        by_group = MetricFrame(metrics=selection_rate, y_true=t, y_pred=p, sensitive_features=s)
        rates = {g["group"]: g["selection_rate"] for g in check["groups"][side]["sex"]}
        assert rates == pytest.approx({f"sex={k}": v for k, v in by_group.by_group.items()})
    worst = max(gaps, key=lambda name: gaps[name]["increase"])
    assert check["metric"] == worst and check["scope"] == "sex"
    assert check["increase"] == pytest.approx(gaps[worst]["candidate"] - gaps[worst]["stable"])
    assert check["increase"] > TH["fairness_gap_increase"] and check["verdict"] == "fail"
    assert check["stable_labelled"] == 300 and check["candidate_labelled"] == 200
    same = ra.fairness_check(
        ra.Labelled(ts, ps, {"sex": ss}),
        ra.Labelled(*biased(200, seed=2, bias=0.0)[:2], {"sex": sc}),
        TH,
        task="classification",
        sensitive=["sex"],
        positive=1,
    )
    assert same["verdict"] == "pass", same["gaps"]


def test_the_gap_is_the_widest_over_each_sensitive_column_and_their_intersection():
    from fairlearn.metrics import demographic_parity_difference

    t, p, sex, band = biased(600, seed=3, bias=0.5)
    labelled = ra.Labelled(
        [str(v) for v in t], [str(v) for v in p], {"sex": sex.tolist(), "band": band.tolist()}
    )
    check = ra.fairness_check(
        labelled, labelled, TH, task="classification", sensitive=["sex", "band"], positive=1
    )
    expected = max(
        demographic_parity_difference(t, p, sensitive_features=sex),
        demographic_parity_difference(t, p, sensitive_features=band),
        demographic_parity_difference(
            t, p, sensitive_features=pd.DataFrame({"sex": sex, "band": band})
        ),
    )
    gap = check["gaps"]["demographic_parity_difference"]
    assert gap["stable"] == pytest.approx(expected) == pytest.approx(gap["candidate"])
    assert gap["increase"] == 0 and check["verdict"] == "pass"
    assert set(check["groups"]["stable"]) == {"sex", "band", "sex & band"}


def test_groups_smaller_than_the_minimum_are_left_out_of_the_gap():
    from fairlearn.metrics import demographic_parity_difference

    t, p, sex, _ = biased(200, seed=4, bias=0.3)
    sex = sex.astype(object)
    sex[:5] = "X"  # five rows of a rare group, all predicted positive
    p = p.copy()
    p[:5] = 1
    labelled = ra.Labelled(t, p, {"sex": sex})
    check = ra.fairness_check(
        labelled, labelled, TH, task="classification", sensitive=["sex"], positive=1
    )
    big = sex != "X"
    assert check["gaps"]["demographic_parity_difference"]["stable"] == pytest.approx(
        demographic_parity_difference(t[big], p[big], sensitive_features=sex[big])
    )
    rare = next(g for g in check["groups"]["stable"]["sex"] if g["group"] == "sex=X")
    assert rare["excluded"] and rare["count"] == 5


def test_the_fairness_check_is_skipped_with_its_reason_when_it_cannot_judge():
    t, p, sex, _ = biased(100, seed=5, bias=0.0)
    side = ra.Labelled(t, p, {"sex": sex})

    def run(stable=side, candidate=side, **kw):
        kw = {"task": "classification", "sensitive": ["sex"], "positive": 1, **kw}
        return ra.fairness_check(stable, candidate, TH, **kw)

    assert run(sensitive=[])["reason"] == "the model has no sensitive features"
    assert "binary classifiers" in run(task="regression")["reason"]
    assert "binary classifiers" in run(positive=None)["reason"]
    few = run(candidate=ra.Labelled(t[:10], p[:10], {"sex": sex[:10]}))
    assert few["reason"] == "fewer than 30 labelled requests" and few["candidate_labelled"] == 10
    assert run(candidate=None)["verdict"] == "skipped"
    unlogged = run(sensitive=["sex", "race"])
    assert unlogged["reason"] == "the requests do not carry the sensitive feature(s) race"
    one_group = ra.Labelled(t, p, {"sex": ["F"] * 100})
    assert "no gap computable" in run(one_group, one_group)["reason"]
    assert {run(**k)["verdict"] for k in ({"sensitive": []}, {"positive": None})} == {"skipped"}


def test_a_fairness_failure_rolls_back_at_its_limit_and_says_why():
    ts, ps, ss, _ = biased(300, seed=1, bias=0.0)
    tc, pc, sc, _ = biased(200, seed=2, bias=0.8)
    analysis = ra.analyse_live(
        sample(300, seed=1),
        sample(200, seed=2),
        TH,
        task="classification",
        classes=([0, 1], [0, 1]),
        fairness=(ra.Labelled(ts, ps, {"sex": ss}), ra.Labelled(tc, pc, {"sex": sc})),
        sensitive=["sex"],
    )
    assert ra.failed_checks(analysis) == ["fairness"]
    action, counts, _ = ra.rollout_decision(
        {}, analysis, inconclusive_in_row=0, inconclusive_limit=3
    )
    assert (action, counts) == ("wait", {"fairness": 1})  # limit 2
    action, _, why = ra.rollout_decision(
        counts, analysis, inconclusive_in_row=0, inconclusive_limit=3
    )
    assert action == "rollback" and why.startswith("fairness equalized_odds_difference")
    assert "by sex" in why
    # without sensitive features the check is there, skipped
    plain = ra.analyse_live(sample(300, seed=1), sample(200, seed=2), TH)
    assert plain["checks"]["fairness"]["verdict"] == "skipped" and plain["verdict"] == "pass"


def test_a_replay_judges_the_metric_and_the_gap_on_the_same_labelled_rows_only_when_given():
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 2, 200)
    worse = np.where(rng.random(200) < 0.6, truth, 1 - truth)
    stable = ra.Sample.of(
        {"status": [200] * 200, "latency_ms": [1.0] * 200, "prediction": truth.tolist()}
    )
    candidate = ra.Sample.of(
        {"status": [200] * 200, "latency_ms": [1.0] * 200, "prediction": worse.tolist()}
    )
    th = {**TH, "disagreement": 1.0}
    plain = ra.analyse_paired(stable, candidate, th, task="classification")
    assert set(plain["checks"]) == {"error_rate", "latency_p99", "prediction_psi", "disagreement"}
    judged = ra.analyse_paired(
        stable,
        candidate,
        th,
        task="classification",
        labelled=((truth, truth), (truth, worse)),
    )
    metric = judged["checks"]["metric"]
    assert metric["stable"] == 1.0
    assert metric["candidate"] == pytest.approx(accuracy_score(truth, worse))
    assert judged["verdict"] == "fail" and ra.failed_checks(judged) == ["metric"]
    unlabelled = ra.analyse_paired(
        stable, candidate, th, task="classification", labelled=(None, None), fairness=(None, None)
    )
    assert unlabelled["checks"]["metric"]["verdict"] == "skipped"
    assert unlabelled["checks"]["fairness"]["verdict"] == "skipped"
    assert unlabelled["verdict"] == "pass"


def test_the_new_thresholds_are_known_and_checked():
    merged = ra.thresholds_valid({"fairness_gap_increase": 0.05}, ra.DEFAULT_THRESHOLDS)
    assert merged["fairness_gap_increase"] == 0.05 and merged["fairness_min_group"] == 10
    assert ra.DEFAULT_FAILURE_LIMITS["fairness"] == 2
    with pytest.raises(ValueError, match="unknown threshold"):
        ra.thresholds_valid({"fairness_gap": 0.05}, ra.DEFAULT_THRESHOLDS)
    with pytest.raises(ValueError):
        ra.thresholds_valid({"fairness_gap_increase": -1}, ra.DEFAULT_THRESHOLDS)


def test_a_gap_wider_by_chance_on_few_labelled_requests_does_not_fail():
    # The same fair predictor on two small samples: the gaps differ by more than the
    # limit by chance in some draws; the bootstrap interval says it is noise.
    wider = 0
    for seed in range(20):
        ts, ps, ss, _ = biased(60, seed=100 + seed, bias=0.0)
        tc, pc, sc, _ = biased(60, seed=200 + seed, bias=0.0)
        check = ra.fairness_check(
            ra.Labelled(ts, ps, {"sex": ss}),
            ra.Labelled(tc, pc, {"sex": sc}),
            TH,
            task="classification",
            sensitive=["sex"],
            positive=1,
        )
        assert check["verdict"] == "pass", check["gaps"]
        wider += check["increase"] > TH["fairness_gap_increase"]
    assert wider >= 3  # the guard is what passed them
