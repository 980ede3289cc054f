"""What the dashboard draws of drift: the cumulative view beside the histogram (checked
against scipy's empirical CDF), readable bin labels, and a drift table that names the
test behind each p-value and the effect size behind each verdict."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitoring import charts, drift, services
from monitoring.views import drift_rows
from tests.monitoring.test_checks import ingest, run_check


def test_the_cumulative_view_equals_scipys_empirical_cdf_at_the_bin_edges() -> None:
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"income": rng.lognormal(10, 0.5, 5000)})
    current = pd.DataFrame({"income": rng.lognormal(10.3, 0.6, 3000)})
    profile = drift.build_profile(reference)
    column = profile.columns["income"]
    summary = drift.summarize(current, profile).columns["income"]
    edges = np.asarray(column.edges, dtype=float)
    shares = charts.cumulative_shares([float(c) for c in summary.counts])
    expected = stats.ecdf(current["income"].to_numpy()).cdf.evaluate(edges)
    assert shares == pytest.approx(expected.tolist())
    ref_shares = charts.cumulative_shares([float(c) for c in column.counts])
    # Reference edges are the reference's own quantiles: rows equal to an edge count
    # in the bin above it, so this is the CDF just below each edge.
    ref_values = reference["income"].to_numpy()
    assert ref_shares == pytest.approx([(ref_values < e).mean() for e in edges])
    # The largest gap at the edges is a lower bound of the two-sample KS statistic.
    chart = charts._cumulative_chart(
        "income", edges.tolist(), [float(c) for c in column.counts], shares_to_counts(summary)
    )
    ks = stats.ks_2samp(ref_values, current["income"].to_numpy()).statistic
    assert 0 < chart["largest_gap"] <= ks + 1e-12


def shares_to_counts(summary: Any) -> list[float]:
    return [float(c) for c in summary.counts]


@pytest.mark.parametrize(
    ("value", "label"),
    [(20450.0, "20.4k"), (1_530_000.0, "1.53M"), (0.000123456, "0.000123"), (12.345, "12.3")],
)
def test_bin_edges_read_as_plain_numbers(value: float, label: str) -> None:
    assert charts.short_number(value) == label
    assert "e+" not in charts.short_number(value) and "e-" not in charts.short_number(value)


def test_bin_labels_cover_the_open_ended_outer_bins() -> None:
    assert charts.bin_labels([20450.0, 24100.0]) == ["< 20.4k", "20.4k to 24.1k", "≥ 24.1k"]


def test_the_drift_table_names_the_p_value_test_and_the_effect_used() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {"age": rng.normal(40, 10, 3000), "city": rng.choice(["a", "b", "c"], 3000)}
    )
    current = pd.DataFrame(
        {"age": rng.normal(45, 10, 400), "city": rng.choice(["a", "b", "c"], 400)}
    )
    result = drift.compare(reference, current, tests={"age": "wasserstein"}).to_dict()
    rows = {r["column"]: r for r in drift_rows(result["columns"])}
    assert rows["age"]["p_test_label"] == "KS"
    assert rows["age"]["p_value"] == pytest.approx(
        stats.ks_2samp(reference["age"], current["age"]).pvalue
    )
    assert (rows["age"]["test_label"], rows["age"]["effect_label"]) == (
        "Wasserstein",
        "Wasserstein",
    )
    assert rows["age"]["effect_value"] == rows["age"]["wasserstein"]
    assert rows["city"]["p_test_label"] == "chi-square"
    table = pd.crosstab(
        np.r_[np.zeros(3000), np.ones(400)],
        np.r_[reference["city"].to_numpy(), current["city"].to_numpy()],
    )
    assert rows["city"]["p_value"] == pytest.approx(stats.chi2_contingency(table).pvalue)
    assert rows["city"]["effect_label"] == "PSI" and rows["city"]["effect_value"] == pytest.approx(
        rows["city"]["psi"]
    )


@pytest.mark.django_db
def test_the_dashboard_draws_the_cumulative_view_and_the_test_columns(
    monitored: Any, personas: Any
) -> None:
    from tests.monitoring.conftest import prediction_frame
    from tests.monitoring.test_dashboard import web

    monitor = services.monitor_create(
        actor=personas.owner,
        model=monitored.registered_model,
        version=monitored,
        name="m",
        checks=["drift"],
        min_rows=50,
    )
    ingest(monitored, personas.bot, prediction_frame(800, shift=1.0), "a")
    run_check(monitor, dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    html = web(personas.viewer).get("/monitoring/models/credit/?feature=income").content.decode()
    assert 'data-chart="feature-chart"' in html and 'data-chart="feature-cdf-chart"' in html
    assert "cumulative share" in html
    assert "p-value (test)" in html and "Effect used by the verdict" in html
    assert "(KS)" in html or "(chi-square)" in html
    assert "e+0" not in html.split('id="feature-chart"')[1].split("</script>")[0]
