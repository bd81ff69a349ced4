#!/usr/bin/env bash
# The most complete end-to-end flow that exists today: a fresh tenant key, the
# example manifest validated, signed and verified by auspex and by the official
# Python SDK (auspexai-tenant 0.5.5); then a devnet on 127.0.0.1, to which the
# official SDK uploads the experiment and on which auspex approves it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin auspex
auspex=$PWD/target/release/auspex
work=$(mktemp -d)
devnet_pid=
cleanup() {
    if [ -n "$devnet_pid" ]; then kill "$devnet_pid" 2>/dev/null || true; wait "$devnet_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
export HOME_FOR_DEMO="$work/home"
mkdir -p "$HOME_FOR_DEMO"

step() { printf '\n== %s\n' "$*"; }

step "a new tenant key (PKCS#8 PEM, mode 0600)"
"$auspex" key generate -o "$work/tenant_key"
ls -l "$work/tenant_key"

step "validate the example manifest"
cp examples/doubler/manifest.json "$work/manifest.json"
"$auspex" manifest validate "$work/manifest.json"

step "sign it, check the signature, and print its content address"
"$auspex" manifest sign "$work/manifest.json" --key "$work/tenant_key"
"$auspex" manifest verify "$work/manifest.json" --signer "$("$auspex" key pubkey --key "$work/tenant_key")"
echo "manifest hash: $("$auspex" manifest hash "$work/manifest.json")"

step "a receipt signed by the coordinator key of the shared vectors"
"$auspex" receipts show crates/auspex-crypto/tests/fixtures/receipt.cose

step "the official SDK checks our key and signature"
bash scripts/python-peers.sh
target/py-0.5.5/bin/python - "$work" <<'PY'
import json, sys, pathlib
from auspexai_tenant import MaintainerKey, Manifest, ManifestSignature, verify_manifest
work = pathlib.Path(sys.argv[1])
key = MaintainerKey.load(work / "tenant_key")
manifest = Manifest.model_validate(json.loads((work / "manifest.json").read_text()))
sig = ManifestSignature.model_validate_json((work / "manifest.json.sig").read_text())
assert sig.maintainer_pubkey == key.pubkey_hex, "official SDK reads another public key"
assert verify_manifest(manifest, sig), "official SDK rejects our signature"
print(f"auspexai-tenant 0.5.5: key {key.pubkey_hex[:16]}… loads, signature verifies")
PY

step "a devnet on 127.0.0.1 (coordinator with a persistent key, state in $work/devnet)"
HOME="$HOME_FOR_DEMO" "$auspex" devnet up --state "$work/devnet" &
devnet_pid=$!
for _ in $(seq 100); do [ -f "$work/devnet/devnet.json" ] && break; sleep 0.1; done
url=$(target/py-0.5.5/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['coordinator_url'])" "$work/devnet/devnet.json")
HOME="$HOME_FOR_DEMO" "$auspex" devnet tenant add auspex-examples --key "$work/tenant_key"

step "the official SDK uploads the signed experiment to the devnet"
target/py-0.5.5/bin/auspexai-tenant manifest upload "$work/manifest.json" --coordinator "$url" --key "$work/tenant_key"

step "the devnet's maintainer approves it"
exp=$(target/py-0.5.5/bin/auspexai-tenant experiment list --coordinator "$url" --key "$work/tenant_key" | awk '{print $1; exit}')
HOME="$HOME_FOR_DEMO" "$auspex" devnet approve "$exp"
HOME="$HOME_FOR_DEMO" "$auspex" devnet status
HOME="$HOME_FOR_DEMO" "$auspex" devnet down
devnet_pid=
