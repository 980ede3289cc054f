#!/usr/bin/env python
"""Drift engine benchmark: ModelGate's monitoring/drift.py against Evidently and NannyML.

    .venv/bin/python bench/drift_bench.py                    # 1M vs 1M rows x 25 columns
    .venv/bin/python bench/drift_bench.py --rows 200000 --no-competitors

Prints figures; never fails on timing. It does fail (exit 1) if a statistic that must
equal scipy's does not. The competitors run in bench/.venv-compare (pandas 2), created by
``bash bench/setup_compare_env.sh``; this same file runs there standalone
(``--competitor evidently|nannyml``), generates the same data with the same code, and
prints one JSON line. A fingerprint of the data proves both sides saw the same rows.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COMPARE_PYTHON = HERE / ".venv-compare" / "bin" / "python"
SEED = 20240607
NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{j}" for j in range(5)]
LEVELS = (5, 10, 20, 35, 50)
COMPETITOR_TIMEOUT = 900  # seconds per competitor run before retrying at a smaller size


# --------------------------------------------------------------------------- data


SMALL_SHIFT = 0.02  # --small-shift: how far the 16 "undrifted" numeric columns move


def make_data(rows: int, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current windows: 20 float64 columns, 5 categoricals (3 'category',
    2 plain strings) with 5-50 levels. In the current window num_00..num_03 shift by half
    a unit, cat_0 changes its mix, every other numeric column moves by ``SMALL_SHIFT``
    (default 0.02: significant at this size, not drift, and the worst case for exact KS
    p-values; 0 leaves them unchanged), and num_05/num_06 have 0.1% NaN on both sides.

    Uses only numpy Generator distributions whose streams are the same in numpy 1.26 and
    2.x, so the compare env (pandas 2) rebuilds identical data; see :func:`fingerprint`.
    """
    rng = np.random.default_rng(seed)
    return _window(rng, rows, drifted=False), _window(rng, rows, drifted=True)


def _window(rng: np.random.Generator, rows: int, *, drifted: bool) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        shift = (0.5 if i < 4 else SMALL_SHIFT) if drifted else 0.0
        family = i % 4
        if family == 0:
            values = rng.normal(shift, 1.0, rows)
        elif family == 1:
            values = rng.lognormal(shift, 0.5, rows)
        elif family == 2:
            values = rng.exponential(1.0, rows) + shift
        else:
            values = rng.standard_t(5, rows) + shift
        if name in ("num_05", "num_06"):
            values[rng.random(rows) < 0.001] = np.nan
        columns[name] = values
    for j, (name, levels) in enumerate(zip(CATEGORICAL, LEVELS, strict=True)):
        weights = np.linspace(1.0, 2.0, levels)
        if drifted and j == 0:
            weights[0] *= 2.0
        codes = rng.choice(levels, rows, p=weights / weights.sum())
        labels = np.array([f"{name}_v{v:02d}" for v in range(levels)], dtype=object)
        if j < 3:
            columns[name] = pd.Categorical.from_codes(codes, categories=list(labels))
        else:
            columns[name] = labels[codes]
    return pd.DataFrame(columns)


def fingerprint(*frames: pd.DataFrame) -> str:
    """SHA-256 over the raw numbers and the category labels, equal across pandas 2 and 3."""
    digest = hashlib.sha256()
    for frame in frames:
        for name in frame.columns:
            column = frame[name]
            if name in CATEGORICAL:
                codes, uniques = pd.factorize(column.astype(object), sort=True)
                digest.update("\x1f".join(map(str, uniques)).encode())
                digest.update(np.asarray(codes, dtype="<i8").tobytes())
            else:
                digest.update(np.asarray(column, dtype="<f8").tobytes())
    return digest.hexdigest()[:16]


def frames_mb(*frames: pd.DataFrame) -> float:
    return sum(float(f.memory_usage(deep=True).sum()) for f in frames) / 1e6


# --------------------------------------------------------------------------- ours


CPU_SECONDS: dict[int, float] = {}  # id(times list) -> CPU seconds of its fastest run


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _timed(fn: Any, repeats: int) -> tuple[list[float], Any]:
    """Wall times of ``repeats`` runs; the CPU time (all threads) of the fastest run is
    kept in CPU_SECONDS, so a reader can tell a busy machine from a slow engine."""
    times, cpus, result = [], [], None
    for _ in range(repeats):
        gc.collect()
        cpu, start = _cpu(), time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    CPU_SECONDS[id(times)] = cpus[times.index(min(times))]
    return times, result


def run_ours(ref: pd.DataFrame, cur: pd.DataFrame, repeats: int) -> dict[str, Any]:
    from monitoring import drift

    drift.compare(ref.iloc[:2000], cur.iloc[:2000])  # warm imports and caches
    frames_times, result = _timed(lambda: drift.compare(ref, cur), repeats)
    fast_times, fast = _timed(lambda: drift.compare(ref, cur, exact_ks_pvalue=False), repeats)
    build_times, profile = _timed(lambda: drift.build_profile(ref), 1)
    profile_times, from_profile = _timed(lambda: drift.compare(profile, cur), repeats)
    profile_fast_times, _ = _timed(
        lambda: drift.compare(profile, cur, exact_ks_pvalue=False), repeats
    )
    batches = [cur.iloc[b] for b in np.array_split(np.arange(len(cur)), 10)]
    summarize_times, summaries = _timed(lambda: [drift.summarize(b, profile) for b in batches], 1)
    merge_times, merged = _timed(lambda: drift.merge_summaries(summaries), 3)
    summary_times, from_summary = _timed(lambda: drift.compare_summary(profile, merged), 5)
    assert from_profile.to_dict() == result.to_dict(), "profile and frame results differ"
    assert fast.drifted_columns == result.drifted_columns, "fast p-values changed a verdict"
    return {
        "frames": frames_times,
        "frames_fast": fast_times,
        "build_profile": build_times,
        "profile": profile_times,
        "profile_fast": profile_fast_times,
        "bounded_p_values": sum(1 for c in fast.columns if c.ks_p_value_exact is False),
        "summarize_10_batches": summarize_times,
        "merge_summaries": merge_times,
        "compare_summary": summary_times,
        "result": result,
        "summary_result": from_summary,
    }


def memory_child(rows: int, mode: str) -> None:
    """Runs in a fresh process: peak RSS and tracemalloc increase of one compare()."""
    from monitoring import drift

    ref, cur = make_data(rows)
    reference: Any = drift.build_profile(ref) if mode == "profile" else ref
    if mode == "profile":
        del ref
    drift.compare(cur.iloc[:2000], cur.iloc[:2000])
    gc.collect()
    before = _proc_status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to the current RSS
    drift.compare(reference, cur)
    peak_rss = _proc_status("VmHWM") - before
    gc.collect()
    tracemalloc.start()
    drift.compare(reference, cur)
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"rss_mb": peak_rss / 1e3, "tracemalloc_mb": peak_traced / 1e6}))


def _proc_status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
    raise KeyError(key)


def measure_memory(rows: int, mode: str) -> dict[str, float] | None:
    out = subprocess.run(
        [sys.executable, __file__, *_data_args(rows), "--memory-child", mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        check=False,
    )
    if out.returncode != 0:
        print(f"memory child failed: {out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- scipy check


def scipy_equality(ref: pd.DataFrame, cur: pd.DataFrame, result: Any) -> dict[str, float]:
    """Max |ours - reference implementation| per statistic, on the same data."""
    from scipy import stats
    from scipy.spatial import distance

    diffs: dict[str, list[float]] = {
        k: []
        for k in (
            "ks_statistic",
            "ks_p_value",
            "psi",
            "jensenshannon",
            "wasserstein_rel",
            "chi2_statistic",
            "chi2_p_value",
        )
    }
    for name in NUMERIC:
        a = ref[name].to_numpy()
        b = cur[name].to_numpy()
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        col = result[name]
        ks = stats.ks_2samp(a, b)
        diffs["ks_statistic"].append(abs(col.ks_statistic - ks.statistic))
        diffs["ks_p_value"].append(abs(col.ks_p_value - ks.pvalue))
        edges = np.unique(np.quantile(a, np.linspace(0, 1, 11)[1:-1]))
        p = np.bincount(np.digitize(a, edges), minlength=edges.size + 1) / a.size
        q = np.bincount(np.digitize(b, edges), minlength=edges.size + 1) / b.size
        pe, qe = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
        diffs["psi"].append(abs(col.psi - float(np.sum((qe - pe) * np.log(qe / pe)))))
        diffs["jensenshannon"].append(abs(col.jensenshannon - distance.jensenshannon(p, q)))
        if name in NUMERIC[:5]:  # scipy's wasserstein is slow: five columns are enough
            w = stats.wasserstein_distance(a, b) / np.std(a)
            diffs["wasserstein_rel"].append(abs(col.wasserstein - w) / w)
    for name in CATEGORICAL:
        labels = np.concatenate([ref[name].astype(object), cur[name].astype(object)])
        side = np.repeat([0, 1], [len(ref), len(cur)])
        table = pd.crosstab(side, labels).to_numpy()
        chi = stats.chi2_contingency(table)
        col = result[name]
        diffs["chi2_statistic"].append(abs(col.chi2_statistic - chi.statistic))
        diffs["chi2_p_value"].append(abs(col.chi2_p_value - chi.pvalue))
    return {k: max(v) for k, v in diffs.items()}


# --------------------------------------------------------------------------- competitors


def _data_args(rows: int) -> list[str]:
    """The arguments a child process needs to generate the same data."""
    return ["--rows", str(rows), "--small-shift", repr(SMALL_SHIFT)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env |= {"DO_NOT_TRACK": "1", "NML_DISABLE_USAGE_LOGGING": "1", "PYTHONPATH": str(ROOT)}
    return env


def competitor_child(name: str, rows: int) -> None:
    """Runs inside bench/.venv-compare: time one library on make_data(rows)."""
    import warnings

    warnings.simplefilter("ignore")
    ref, cur = make_data(rows)
    out: dict[str, Any] = {"fingerprint": fingerprint(ref, cur), "rows": rows}
    if name == "evidently":
        out |= _run_evidently(ref, cur)
    else:
        out |= _run_nannyml(ref, cur)
    print(json.dumps(out))


def _run_evidently(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, Any]:
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    cpu, start = _cpu(), time.perf_counter()
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        column = metric.get("config", {}).get("column")
        threshold = metric.get("config", {}).get("threshold")
        value = metric.get("value")
        method = str(metric.get("config", {}).get("method", ""))
        if not (column and isinstance(value, float) and threshold is not None):
            continue
        # p-value methods are named "K-S p_value", "chi-square p_value", ...
        if (value < threshold) if "p_value" in method.lower() else (value >= threshold):
            drifted.append(column)
    return {
        "library": f"evidently {evidently.__version__}",
        "seconds": elapsed,
        "cpu": cpu,
        "drifted": sorted(drifted),
    }


def _run_nannyml(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, Any]:
    import nannyml

    cpu, start = _cpu(), time.perf_counter()
    calculator = nannyml.UnivariateDriftCalculator(
        column_names=NUMERIC + CATEGORICAL,
        treat_as_categorical=CATEGORICAL,
        continuous_methods=["kolmogorov_smirnov", "jensen_shannon", "wasserstein"],
        categorical_methods=["chi2", "jensen_shannon"],
        chunk_number=1,
    )
    calculator.fit(ref)
    results = calculator.calculate(cur)
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
    frame = results.filter(period="analysis").to_df()
    drifted = sorted(
        {
            c
            for c in NUMERIC + CATEGORICAL
            if any(
                bool(frame[(c, m, "alert")].iloc[0])
                for m in ("kolmogorov_smirnov", "jensen_shannon", "wasserstein", "chi2")
                if (c, m, "alert") in frame.columns
            )
        }
    )
    return {
        "library": f"nannyml {nannyml.__version__}",
        "seconds": elapsed,
        "cpu": cpu,
        "drifted": drifted,
        "methods": "KS+JS+Wasserstein / chi2+JS, one chunk",
    }


def run_competitor(name: str, rows: int, expected_fingerprint: str) -> dict[str, Any] | None:
    if not COMPARE_PYTHON.exists():
        print(f"{name}: skipped, run `bash bench/setup_compare_env.sh` first", file=sys.stderr)
        return None
    for size in (rows, rows // 10):
        try:
            out = subprocess.run(
                [str(COMPARE_PYTHON), __file__, *_data_args(size), "--competitor", name],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=_env(),
                check=False,
                timeout=COMPETITOR_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            print(
                f"{name}: over {COMPETITOR_TIMEOUT}s at {size:,} rows; retrying smaller",
                file=sys.stderr,
            )
            continue
        if out.returncode != 0:
            print(f"{name} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
            return None
        data = json.loads(out.stdout.strip().splitlines()[-1])
        data["same_data"] = size != rows or data["fingerprint"] == expected_fingerprint
        return data
    return None


# --------------------------------------------------------------------------- report


def _row(
    label: str,
    seconds: float | list[float],
    note: str = "",
    *,
    cpu: float | None = None,
    bases: tuple[float, ...] = (),
) -> str:
    if isinstance(seconds, list):
        cpu = CPU_SECONDS.get(id(seconds))
        seconds = min(seconds)
    cpu_text = f"{cpu:8.2f}" if cpu is not None else " " * 8
    ratios = " | ".join(f"{seconds / b:7.1f}x" for b in bases) if bases else f"{'':8} | {'':8}"
    return f"| {label:<64} | {seconds:8.3f} | {cpu_text} | {ratios} | {note}"


def report(
    args: argparse.Namespace,
    ours: dict[str, Any],
    competitors: dict[str, Any],
    memory: dict[str, Any],
    equality: dict[str, float] | None,
    size_mb: float,
) -> bool:
    """Print the figures; return True when a must-be-identical statistic differs."""
    exact, fast = min(ours["frames"]), min(ours["frames_fast"])
    med = statistics.median
    print()
    print(f"| {'what':<64} | {'wall s':>8} | {'cpu s':>8} | {'/ ours':>8} | {'/ fast':>8} | note")
    print(f"|{'-' * 66}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 10}|------")
    print(
        _row(
            "ours: compare(reference_df, current_df)",
            ours["frames"],
            f"target < 2 s; KS p-values identical to scipy; median {med(ours['frames']):.2f}",
        )
    )
    print(
        _row(
            "ours: compare(reference_df, current_df, exact_ks_pvalue=False)",
            ours["frames_fast"],
            f"{ours['bounded_p_values']} KS p-values bounded, same "
            f"verdicts; median {med(ours['frames_fast']):.2f}",
        )
    )
    print(_row("ours: build_profile(reference_df)", ours["build_profile"], "once per reference"))
    print(
        _row(
            "ours: compare(profile, current_df)",
            ours["profile"],
            f"target < 1.5 s; median {med(ours['profile']):.2f}",
        )
    )
    print(
        _row(
            "ours: compare(profile, current_df, exact_ks_pvalue=False)",
            ours["profile_fast"],
            f"median {med(ours['profile_fast']):.2f}",
        )
    )
    print(
        _row(
            "ours: summarize(current) as 10 batches",
            ours["summarize_10_batches"],
            "ingest-time cost, spread over the batches",
        )
    )
    print(_row("ours: merge_summaries(10 summaries)", ours["merge_summaries"]))
    print(
        _row(
            "ours: compare_summary(profile, merged)",
            ours["compare_summary"],
            "target < 0.1 s whatever the row count",
        )
    )
    for name, data in competitors.items():
        if data is None:
            print(f"| {name:<64} | {'n/a':>8} | not run (see stderr)")
            continue
        scale = args.rows / data["rows"]
        label = data["library"] + (
            " DataDriftPreset()" if name == "evidently" else " UnivariateDriftCalculator"
        )
        if data["rows"] == args.rows:
            note = "same data (fingerprint match)" if data["same_data"] else "DATA DIFFERS"
        else:
            note = f"timed at {data['rows']:,} rows, x{scale:.0f} extrapolated linearly"
        if name == "nannyml":
            note += f"; {data['methods']}"
        print(
            _row(label, data["seconds"] * scale, note, cpu=data["cpu"] * scale, bases=(exact, fast))
        )
    print()
    limit = size_mb / 2
    for mode, mem in memory.items():
        if mem:
            verdict = "within" if max(mem.values()) < limit else "OVER"
            print(
                f"memory of compare({'profile' if mode == 'profile' else 'reference_df'}, "
                f"current_df): peak RSS +{mem['rss_mb']:.0f} MB, tracemalloc peak "
                f"{mem['tracemalloc_mb']:.0f} MB; {verdict} half the input ({limit:.0f} MB)"
            )
    failed = False
    if equality:
        print(
            "max |ours - scipy or reference formula| over columns: "
            + ", ".join(f"{k} {v:.3g}" for k, v in equality.items())
        )
        identical = ("ks_statistic", "ks_p_value", "psi", "chi2_statistic", "chi2_p_value")
        failed = any(equality[k] != 0 for k in identical)
        print(
            "KS statistic, KS p-value, PSI and chi-square identical to scipy: "
            + ("NO" if failed else "yes")
        )
    print()
    print(
        f"drifted (ours, rows):    {ours['result'].drifted_columns}, "
        f"drift_share {ours['result'].drift_share:.2f}"
    )
    print(f"drifted (ours, summary): {ours['summary_result'].drifted_columns}")
    if competitors.get("evidently"):
        print(f"drifted (evidently):     {competitors['evidently']['drifted']}")
    if competitors.get("nannyml"):
        print(
            "drifted (nannyml):       not compared: its alert thresholds come from the "
            "spread over several reference chunks, and the single chunk timed here has none"
        )
    return failed


def main() -> int:
    global SMALL_SHIFT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-competitors", action="store_true")
    parser.add_argument("--no-scipy-check", action="store_true")
    parser.add_argument("--competitor", choices=["evidently", "nannyml"])
    parser.add_argument("--memory-child", choices=["frames", "profile"])
    parser.add_argument(
        "--small-shift",
        type=float,
        default=SMALL_SHIFT,
        help="shift of the 16 undrifted numeric columns (0.02: worst case for exact KS "
        "p-values; 0: unchanged columns)",
    )
    args = parser.parse_args()
    SMALL_SHIFT = args.small_shift
    if args.competitor:
        competitor_child(args.competitor, args.rows)
        return 0
    sys.path.insert(0, str(ROOT))
    if args.memory_child:
        memory_child(args.rows, args.memory_child)
        return 0

    print(
        f"drift bench: {args.rows:,} reference rows vs {args.rows:,} current rows x "
        f"{len(NUMERIC) + len(CATEGORICAL)} columns ({len(NUMERIC)} float64, "
        f"{len(CATEGORICAL)} categorical with {min(LEVELS)}-{max(LEVELS)} levels; "
        f"small shift {SMALL_SHIFT}); "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start"
    )
    start = time.perf_counter()
    ref, cur = make_data(args.rows)
    size_mb = frames_mb(ref, cur)
    digest = fingerprint(ref, cur)
    print(
        f"data: generated in {time.perf_counter() - start:.1f}s, {size_mb:.0f} MB in memory "
        f"(both frames), fingerprint {digest}"
    )

    ours = run_ours(ref, cur, args.repeats)
    print(
        f"load average after our timings: {os.getloadavg()[0]:.2f} "
        "(other work on the machine inflates wall times; cpu s does not depend on it)"
    )
    competitors = (
        {}
        if args.no_competitors
        else {name: run_competitor(name, args.rows, digest) for name in ("evidently", "nannyml")}
    )
    memory = {mode: measure_memory(args.rows, mode) for mode in ("frames", "profile")}
    equality = None if args.no_scipy_check else scipy_equality(ref, cur, ours["result"])
    return 1 if report(args, ours, competitors, memory, equality, size_mb) else 0


if __name__ == "__main__":
    sys.exit(main())
