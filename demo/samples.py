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
CREDIT_SENSITIVE = ["sex", "age_band"]
CREDIT_TARGET = "default"


def credit_data(n: int = 4000, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """Synthetic loan applications with a known bias against one group.

    ``sex`` and ``age_band`` are sensitive attributes: they are in the data (for
    fairness audits) but not model inputs. Historical bias: applicants with
    sex == "F" have lower recorded incomes, so a model trained on income
    approves them less often. ``shift`` moves income and debt to simulate drift.
    """
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], size=n, p=[0.45, 0.55])
    age_band = rng.choice(["18-30", "31-50", "51+"], size=n, p=[0.3, 0.5, 0.2])
    employment = rng.choice(
        ["salaried", "self-employed", "unemployed"], size=n, p=[0.7, 0.22, 0.08]
    )
    income = rng.lognormal(mean=10.6, sigma=0.45, size=n) * np.where(sex == "F", 0.82, 1.0)
    income *= 1.0 + shift * 0.3
    debt_ratio = np.clip(rng.beta(2, 5, size=n) + shift * 0.1, 0, 1.5)
    history = np.clip(rng.normal(9, 5, size=n), 0, 45) + np.where(age_band == "51+", 8, 0)
    accounts = rng.poisson(4, size=n)
    late = rng.poisson(np.where(employment == "unemployed", 2.0, 0.6))
    logit = (
        -1.2
        - 1.6 * (np.log(income) - 10.5)
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
            "credit_history_years": history.round(1),
            "open_accounts": accounts.astype("int64"),
            "late_payments": late.astype("int64"),
            "employment": employment,
            "sex": sex,
            "age_band": age_band,
            CREDIT_TARGET: default,
        }
    )


def credit_pipeline(estimator: object) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in CREDIT_FEATURES if c != "employment"]
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["employment"]),
        ]
    )
    return Pipeline([("prep", prep), ("model", estimator)])


DIABETES_TARGET = "progression"


def diabetes_data() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True)
    frame = bunch.frame.rename(columns={"target": DIABETES_TARGET})
    return frame
