"""The rollout's analysis charts: one point per analysis, the candidate against stable, the
line each check fails beyond, read from the figures that ``rollout_analysis`` writes."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from lifecycle import rollout_analysis as ra
from lifecycle import rollout_charts as rc

TH = dict(ra.DEFAULT_THRESHOLDS)


def sample(n: int, *, errors: int = 0, latency: float = 5.0, shift: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    status = [422] * errors + [200] * (n - errors)
    probability = np.clip(rng.beta(2, 5, n) + shift, 0, 1)
    return ra.Sample.of(
        {
            "status": status,
            "error_code": ["prediction_failed"] * errors + [""] * (n - errors),
            "latency_ms": list(latency + rng.random(n)),
            "prediction": [int(p > 0.5) for p in probability],
            "probability": list(probability),
        }
    )


def point(at: str, analysis: dict, *, kind: str = "step", step: int = 1, share: float = 0.1):
    return {
        "at": at,
        "kind": kind,
        "step_index": step,
        "share": share,
        "verdict": analysis["verdict"],
        "figures": analysis,
    }


@pytest.fixture
def history():
    """A replay, a step healthy on HTTP but worse on the labels that joined, a step whose
    candidate errors, is slow and drifts, and an inconclusive step (too few requests)."""
    labelled = (
        (list(np.arange(60) % 2), list(np.arange(60) % 2)),
        (list(np.arange(60) % 2), [0] * 60),
    )
    replay = ra.analyse_paired(sample(80), sample(80, latency=6), TH, task="classification")
    healthy = ra.analyse_live(sample(200, seed=1), sample(100, seed=2), TH, labelled=labelled)
    bad = ra.analyse_live(
        sample(200, seed=3), sample(100, errors=10, latency=90, shift=0.4, seed=4), TH
    )
    thin = ra.analyse_live(sample(200), sample(3), TH)
    return [
        point("2026-01-01T10:00:00+00:00", replay, kind="replay", step=0, share=0),
        point("2026-01-01T10:05:00+00:00", healthy),
        point("2026-01-01T10:10:00+00:00", bad, step=2, share=0.25),
        point("2026-01-01T10:15:00+00:00", thin, step=2, share=0.25),
    ]


def test_each_check_is_one_point_per_analysis_read_from_its_figures(history):
    drawn = rc.series(history)
    assert list(drawn) == ["error_rate", "latency_p99", "prediction_psi", "disagreement", "metric"]
    for columns in drawn.values():
        assert columns["x"] == [p["at"] for p in history]
        assert columns["label"] == ["replay", "step 1 (10%)", "step 2 (25%)", "step 2 (25%)"]
    bad = history[2]["figures"]["checks"]
    errors = drawn["error_rate"]
    assert errors["candidate"][2] == pytest.approx(0.1) == bad["error_rate"]["candidate"]
    assert errors["stable"][2] == bad["error_rate"]["stable"] == 0.0
    # Error rate fails when the candidate's exceeds the stable's by more than the limit.
    assert errors["limit"][2] == pytest.approx(bad["error_rate"]["stable"] + TH["error_rate"])
    assert errors["verdict"][2] == "fail" and errors["verdict"][1] == "pass"
    latency = drawn["latency_p99"]
    assert latency["candidate"][2] == pytest.approx(bad["latency_p99"]["candidate"])
    assert latency["limit"][2] == pytest.approx(
        bad["latency_p99"]["stable"] * TH["latency_p99_ratio"] + TH["latency_p99_slack_ms"]
    )
    psi = drawn["prediction_psi"]
    assert psi["candidate"][2] == pytest.approx(bad["prediction_psi"]["psi"])
    assert psi["limit"][2] == TH["prediction_psi"] and psi["stable"] == [None] * 4
    # Disagreement is a replay's (or a shadow's) figure; a canary step has none: a gap.
    assert drawn["disagreement"]["candidate"][0] is not None
    assert drawn["disagreement"]["candidate"][1:] == [None, None, None]
    # The metric only where labels had joined: the candidate that predicts 0 drops 0.5.
    assert drawn["metric"]["candidate"] == [None, pytest.approx(0.5), None, None]
    assert drawn["metric"]["limit"][1] == TH["metric_drop"]
    # Too few requests judged nothing: a gap in every line, still a point in time.
    assert all(columns["candidate"][3] is None for columns in drawn.values())


def test_the_fairness_gap_is_drawn_when_an_analysis_has_it_and_tolerated_when_not(history):
    assert "fairness" not in rc.series(history)
    history[1]["figures"]["checks"]["fairness"] = {
        "verdict": "fail",
        "metric": "demographic_parity_difference",
        "candidate": 0.31,
        "stable": 0.12,
        "increase": 0.19,
        "limit": 0.1,
    }
    history[2]["figures"]["checks"]["fairness"] = {"verdict": "skipped", "reason": "no labels"}
    fairness = rc.series(history)["fairness"]
    assert fairness["candidate"] == [None, 0.31, None, None]
    assert fairness["stable"] == [None, 0.12, None, None]
    assert fairness["limit"][1] == pytest.approx(0.22)  # the stable's gap + the allowed increase
    spec = rc.analysis_chart(history)
    assert spec["layout"]["grid"]["rows"] == 6
    assert "Fairness gap" in " ".join(a["text"] for a in spec["layout"]["annotations"])


def test_the_spec_is_a_valid_plotly_figure_with_failed_points_in_red(history):
    spec = rc.analysis_chart(history)
    figure = go.Figure(spec)  # plotly validates every attribute name and value
    assert len(figure.layout.annotations) == 5
    candidate = next(t for t in spec["data"] if t["name"] == "Error rate: candidate")
    assert candidate["marker"]["color"][2] == rc.FAIL_COLOUR
    assert candidate["marker"]["color"][1] == rc.CANDIDATE_COLOUR
    # Every row shares the time axis, each has its own y axis and a line it fails beyond.
    assert {t["xaxis"] for t in spec["data"]} == {"x"}
    assert {t["yaxis"] for t in spec["data"]} == {"y", "y2", "y3", "y4", "y5"}
    limits = [t for t in spec["data"] if t["name"].endswith("fails above")]
    assert len(limits) == 5 and all(t["line"]["dash"] == "dash" for t in limits)


def test_the_summary_says_how_many_analyses_failed_and_what_is_drawn(history):
    assert rc.summary(history) == (
        "4 analyses over time, 2 failed: error rate, p99 latency, prediction drift, "
        "disagreement with stable, metric drop against stable"
    )


def test_nothing_to_draw_is_no_chart():
    assert rc.analysis_chart([]) is None
    thin = ra.analyse_live(sample(200), sample(3), TH)
    assert rc.analysis_chart([point("2026-01-01T10:00:00+00:00", thin)]) is None
    assert rc.summary([point("2026-01-01T10:00:00+00:00", thin)]) == "1 analysis over time"
