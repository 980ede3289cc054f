"""Sample data generated in code, for the demo and the tests (pure: no Django).

Nothing is downloaded: the credit data is synthetic, the regression data is
scikit-learn's bundled diabetes set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CREDIT_FEATURES = [
    "income",
    "debt_ratio",
    "credit_history_years",
    "open_accounts",
    "late_payments",
    "employment",
]
# The columns whose records carry no group gap (see ``credit_data``).
CREDIT_SCORECARD_FEATURES = ["debt_ratio", "open_accounts", "late_payments", "employment"]
CREDIT_SENSITIVE = ["sex", "age_band"]
CREDIT_TARGET = "default"


def credit_data(n: int = 4000, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """Synthetic loan applications whose records carry a known bias.

    ``sex`` and ``age_band`` are sensitive attributes: they are in the data (for
    fairness audits) but not inputs of the pipeline's models. The risk of default is
    the same in every group; the records are not: applicants with sex == "F" have
    incomes recorded 18% lower for the same earnings (a pay gap), and applicants
    aged 51+ have 8 more years of recorded credit history for the same risk. A
    model that learns from income and credit history treats the groups differently
    for no reason in the outcome; one without those columns does not. ``shift``
    moves income and debt to simulate drift.
    """
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n, p=[0.45, 0.55])
    age_band = rng.choice(["18-30", "31-50", "51+"], size=n, p=[0.3, 0.5, 0.2])
    employment = rng.choice(
        ["salaried", "self-employed", "unemployed"], size=n, p=[0.7, 0.22, 0.08]
    )
    earnings = rng.lognormal(mean=10.6, sigma=0.45, size=n)
    income = earnings * np.where(sex == "F", 0.82, 1.0) * (1.0 + shift * 0.3)
    debt_ratio = np.clip(rng.beta(2, 5, size=n) + shift * 0.1, 0, 1.5)
    history = np.clip(rng.normal(9, 5, size=n), 0, 45)
    recorded_history = history + np.where(age_band == "51+", 8, 0)
    accounts = rng.poisson(4, size=n)
    late = rng.poisson(np.where(employment == "unemployed", 2.0, 0.6))
    logit = (
        -1.2
        - 1.6 * (np.log(earnings) - 10.5)
        + 3.2 * (debt_ratio - 0.3)
        - 0.05 * history
        + 0.45 * late
        + np.where(employment == "unemployed", 0.9, 0.0)
    )
    default = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "income": income.round(2),
            "debt_ratio": debt_ratio.round(4),
            "credit_history_years": recorded_history.round(1),
            "open_accounts": accounts.astype("int64"),
            "late_payments": late.astype("int64"),
            "employment": employment,
            "sex": sex,
            "age_band": age_band,
            CREDIT_TARGET: default,
        }
    )


def credit_pipeline(estimator: object, features: list[str] | None = None) -> object:
    """Scaling and one-hot encoding of ``features`` (default: every applicant column)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = list(features or CREDIT_FEATURES)
    numeric = [c for c in features if c != "employment"]
    steps = [("num", StandardScaler(), numeric)]
    if "employment" in features:
        steps.append(("cat", OneHotEncoder(handle_unknown="ignore"), ["employment"]))
    return Pipeline([("prep", ColumnTransformer(steps)), ("model", estimator)])


DIABETES_TARGET = "progression"


def diabetes_data() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True)
    frame = bunch.frame.rename(columns={"target": DIABETES_TARGET})
    return frame
