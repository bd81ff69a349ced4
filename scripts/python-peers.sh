#!/usr/bin/env bash
# Installs the official Python packages that our interoperability tests run
# against, each in its own virtual environment under target/ (never system-wide):
#   target/py-0.5.5   auspexai-tenant[analysis]==0.5.5   (pandas + pyarrow for `bundle table`)
#   target/py-0.6.67  auspexai-tenant[analysis]==0.6.67
#   target/py-worker-0.2.80  auspexai-worker==0.2.80   (the official volunteer worker daemon)
# Idempotent: an environment whose package is already installed is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

peer() {
    local dir=$1 spec=$2 modules=$3
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import $modules" 2>/dev/null; then
        return 0
    fi
    echo "python-peers: installing $spec into $dir" >&2
    if [ ! -x "$dir/bin/python" ]; then
        "$python" -m venv "$dir"
    fi
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$spec"
}

mkdir -p target
peer target/py-0.5.5 "auspexai-tenant[analysis]==0.5.5" "auspexai_tenant, pandas, pyarrow"
peer target/py-0.6.67 "auspexai-tenant[analysis]==0.6.67" "auspexai_tenant, pandas, pyarrow"
peer target/py-worker-0.2.80 "auspexai-worker==0.2.80" "auspexai_worker"
echo "python-peers: ready (target/py-0.5.5, target/py-0.6.67, target/py-worker-0.2.80)" >&2
