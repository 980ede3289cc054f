#!/usr/bin/env bash
# Creates bench/.venv-compare: a separate virtualenv holding the two drift
# libraries that bench/drift_bench.py measures ModelGate's drift engine against,
# and MLflow, whose `mlflow models serve` bench/serving_bench.py runs side by
# side with ModelGate's serving process on the same fitted pipeline.
#
# Why separate: Evidently 0.7.x and NannyML need pandas 2 (ModelGate runs on
# pandas 3) and pull in a large dependency tree that has no place in the
# project's requirements. The directory is gitignored; nothing here is imported
# by ModelGate itself.
#
# Usage:  bash bench/setup_compare_env.sh          (idempotent; re-run to repair)
#         PYTHON=/path/to/python3.11 bash bench/setup_compare_env.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-compare"
python="${PYTHON:-python3.11}"

# Exact pins. NannyML 0.13.1 supports Python < 3.13; both libraries cap plotly < 6.
# numpy 1.26 / pandas 2.2 / scipy 1.14 is the newest combination both libraries
# were released against.
pins=(
    "evidently==0.7.23"
    "nannyml==0.13.1"
    "pandas==2.2.3"
    "numpy==1.26.4"
    "scipy==1.14.1"
    "pyarrow==18.1.0"
    # serving_bench.py: the same fitted pipeline (the project's scikit-learn,
    # read from its skops artifact) saved with mlflow.sklearn and served by
    # `mlflow models serve --env-manager local`.
    "mlflow==3.17.2"
    "scikit-learn==1.9.1"
    "skops==0.16.0"
)

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${pins[@]}"

# Both libraries phone home by default; keep the benchmark offline.
"$venv/bin/python" - <<'EOF'
import evidently, nannyml, pandas, numpy, mlflow, sklearn
print(f"compare env ready: evidently {evidently.__version__}, nannyml {nannyml.__version__}, "
      f"mlflow {mlflow.__version__}, scikit-learn {sklearn.__version__}, "
      f"pandas {pandas.__version__}, numpy {numpy.__version__}")
EOF
