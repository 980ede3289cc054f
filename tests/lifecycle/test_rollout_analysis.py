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
