#!/usr/bin/env bash
# The main job, end to end on one machine: a real experiment on the embedded
# devnet, ending in a verified table.
#
#   1. a fresh tenant key, and a devnet on 127.0.0.1 (coordinator, Rekor-shaped
#      transparency log, three workers that run tenant code in a bubblewrap sandbox);
#   2. the example experiment (examples/doubler): package digest, manifest
#      validated and signed by auspex, package and manifest uploaded;
#   3. ten work units, each computed by three workers with their own keys,
#      consensus, receipts, an attestation anchored in the devnet's log;
#   4. the anchor verified offline by auspex against the log's trusted root; the
#      evidence bundle taken into custody and verified, then flattened into a
#      CSV table.
#
# Steps 2–4 use the official Python SDK (auspexai-tenant, installed under
# target/) where auspex has no client command yet: it cannot tell the devnet
# from the real network.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/python-peers.sh
cargo build --release --quiet --bin auspex --bin auspex-landlock-shim
auspex=$PWD/target/release/auspex
sdk=$PWD/target/py-0.6.67/bin
py055=$PWD/target/py-0.5.5/bin/python
work=$(mktemp -d)
devnet_pid=
cleanup() {
    if [ -n "$devnet_pid" ]; then kill "$devnet_pid" 2>/dev/null || true; wait "$devnet_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
# auspex finds the running devnet through a file under $HOME: keep it private.
export HOME="$work/home"
mkdir -p "$HOME"
key="$work/tenant_key"

step() { printf '\n== %s\n' "$*"; }

step "a tenant key (PKCS#8 PEM, mode 0600)"
"$auspex" key generate -o "$key"

step "a devnet on 127.0.0.1 with three sandboxed workers"
"$auspex" devnet up --state "$work/devnet" --workers 3 --auto-approve &
devnet_pid=$!
for _ in $(seq 300); do [ -f "$work/devnet/devnet.json" ] && break; sleep 0.1; done
field() { "$sdk/python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/devnet/devnet.json" "$1"; }
url=$(field coordinator_url)
coordinator_key=$(field coordinator_pubkey)
"$auspex" devnet tenant add auspex-examples --key "$key"

step "the experiment: package digest pinned in the manifest, validated and signed"
mkdir -p "$work/pkg"
cp examples/doubler/executor.py "$work/pkg/"
digest=$("$auspex" package digest "$work/pkg")
"$sdk/python" - "$work/pkg/manifest.json" "$digest" <<'PY'
import json, sys
m = json.load(open("examples/doubler/manifest.json"))
m["executor"]["package_sha256"] = sys.argv[2]
open(sys.argv[1], "w").write(json.dumps(m, indent=2, ensure_ascii=False) + "\n")
PY
"$auspex" manifest validate "$work/pkg/manifest.json"
"$auspex" manifest sign "$work/pkg/manifest.json" --key "$key"

step "upload the package and the signed manifest (official SDK)"
"$sdk/auspexai-tenant" package upload "$work/pkg" --coordinator "$url" --key "$key"
"$sdk/auspexai-tenant" manifest upload "$work/pkg/manifest.json" --coordinator "$url" --key "$key" >/dev/null
exp=$("$sdk/auspexai-tenant" experiment list --coordinator "$url" --key "$key" | awk '{print $1; exit}')
echo "experiment $exp"

step "ten work units, finalized; the workers compute them (replication 3)"
"$py055" - "$url" "$key" "$exp" <<'PY'
import pathlib, sys, time
from auspexai_tenant import Experiment, MaintainerKey, Unit
url, key, exp = sys.argv[1], MaintainerKey.load(pathlib.Path(sys.argv[2])), sys.argv[3]
e = Experiment(url, key, exp)
e.submit_units([Unit(f"u-{i:03}", {"value": i}) for i in range(10)])
e.finalize()
deadline = time.time() + 300
while True:
    if e.reader.get_experiment(exp).get("status") == "completed":
        break
    if time.time() > deadline:
        sys.exit("the experiment did not complete in time")
    time.sleep(0.5)
print("completed")
PY

step "the attestation's transparency-log entry, verified offline by auspex"
"$py055" - "$url" "$key" "$exp" "$work" <<'PY'
import base64, hashlib, pathlib, sys, time, urllib.request, json
from auspexai_tenant import MaintainerKey, TenantClient
url, key, exp, work = sys.argv[1], MaintainerKey.load(pathlib.Path(sys.argv[2])), sys.argv[3], pathlib.Path(sys.argv[4])
client = TenantClient(url, key)
for _ in range(100):
    att = client.get_attestation(exp)
    if att.rekor_entry_uuid not in (None, "", "lab-mode-no-rekor"):
        break
    time.sleep(0.2)
info = json.load(open(work / "devnet" / "devnet.json"))
entry = urllib.request.urlopen(f"{info['tlog_url']}/api/v1/log/entries/{att.rekor_entry_uuid}").read()
(work / "entry.json").write_bytes(entry)
cose = base64.b64decode(att.cose_b64)
(work / "artifact.sha256").write_text(hashlib.sha256(cose).hexdigest())
PY
"$auspex" tlog verify-entry "$work/entry.json" \
    --trusted-root "$work/devnet/tlog/trusted_root.json" \
    --artifact-sha256 "$(cat "$work/artifact.sha256")"

step "custody: the evidence bundle, verified (signer pinned to the coordinator key)"
"$sdk/auspexai-tenant" experiment export "$exp" -o "$work/bundle.json" \
    --coordinator "$url" --key "$key" --signer "$coordinator_key"

step "the verified table"
"$sdk/auspexai-tenant" bundle table "$work/bundle.json" -o "$work/results.csv" --signer "$coordinator_key"
"$sdk/python" -c "import csv,sys; rows=list(csv.reader(open(sys.argv[1]))); cols=[i for i,c in enumerate(rows[0]) if c in ('unit_id','input.value','output.value','output.doubled','semantic_hash')]; [print('  '.join(r[i][:16] for i in cols)) for r in rows]" "$work/results.csv"

"$auspex" devnet down
devnet_pid=
