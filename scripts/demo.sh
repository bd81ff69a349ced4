#!/usr/bin/env bash
# The most complete end-to-end flow that exists today: a fresh tenant key, the
# example manifest validated, signed and verified by auspex — and then verified
# again by the official Python SDK (auspexai-tenant 0.5.5), byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin auspex
auspex=$PWD/target/release/auspex
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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
