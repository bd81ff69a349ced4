#!/usr/bin/env bash
# Installs the official Python packages that our interoperability tests run
# against, each in its own virtual environment under target/ (never system-wide):
#   target/py-0.5.5   auspexai-tenant==0.5.5
#   target/py-0.6.67  auspexai-tenant==0.6.67
# Idempotent: an environment whose package is already installed is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

peer() {
    local dir=$1 spec=$2 module=$3
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import $module" 2>/dev/null; then
        return 0
    fi
    echo "python-peers: installing $spec into $dir" >&2
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$spec"
}

mkdir -p target
peer target/py-0.5.5 "auspexai-tenant==0.5.5" auspexai_tenant
peer target/py-0.6.67 "auspexai-tenant==0.6.67" auspexai_tenant
echo "python-peers: ready (target/py-0.5.5, target/py-0.6.67)" >&2
