"""Drives the devnet coordinator with the official auspexai-tenant SDK
(0.5.5 or 0.6.67, whichever venv runs this script).

Usage: sdk_flow.py PHASE COORDINATOR_URL KEY_PATH STATE_JSON
Environment: AUSPEX_REKOR_URL (the devnet transparency log), AUSPEX_TENANT,
AUSPEX_LABEL, AUSPEX_WORKDIR (where bundles and tables are written).

Phases:
  upload  sign + submit a manifest (0.6.67: also package upload, pinned)
  submit  work units
  finish  checkpoint attestation, finalize woken by the SSE doorbell,
          progress(), results in both include modes, receipts, the
          attestation (API with the Rekor inclusion check against the devnet
          log; CLI with --verify-against-results), `experiment export
          --verify`, `bundle verify`, `bundle table` (when pandas is
          installed), request/catalog CLIs (0.5.5)
Every phase asserts on the Python side and writes what the Rust side needs
into STATE_JSON.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import auspexai_tenant as t
from auspexai_tenant.attestation import ResultSetAttestation, verify_attestation
from auspexai_tenant.evidence import verify_bundle

phase, url, key_path, state_path = sys.argv[1:5]
V0667 = hasattr(t, "TenantKey")
KeyClass = t.TenantKey if V0667 else t.MaintainerKey
key = KeyClass.load(Path(key_path))
state_file = Path(state_path)
state = json.loads(state_file.read_text()) if state_file.exists() else {}
tenant = os.environ.get("AUSPEX_TENANT", "sdk-lab")
label = os.environ.get("AUSPEX_LABEL", "sdk-flow")
rekor = os.environ.get("AUSPEX_REKOR_URL")
workdir = Path(os.environ.get("AUSPEX_WORKDIR", state_file.parent))
cli = Path(sys.executable).parent / "auspexai-tenant"


def run_cli(*args, ok=True):
    """Runs the console script; asserts the exit code; returns stdout."""
    p = subprocess.run(
        [str(cli), *args], capture_output=True, text=True, timeout=120, cwd=str(workdir)
    )
    if ok:
        assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
    else:
        assert p.returncode != 0, (args, p.stdout, p.stderr)
    return p.stdout + p.stderr


def coord(*args):
    return [*args, "--coordinator", url, "--key", key_path]


if phase == "upload":
    executor = {"command": ["python", "run.py"]}
    if V0667:
        pkg = workdir / "pkg"
        pkg.mkdir(exist_ok=True)
        (pkg / "run.py").write_text("print('devnet')\n")
        digest = t.TenantClient(url, key).upload_package(pkg)
        assert digest.get("status") == "stored", digest
        executor["package_sha256"] = digest["package_digest"]
        again = t.TenantClient(url, key).upload_package(pkg)
        assert again.get("status") == "already_exists", again
        state["package_digest"] = digest["package_digest"]
    manifest = t.Manifest(
        schema_version="0.1",
        tenant_id=tenant,
        tenant_maintainer_contact="alice@example.com",
        experiment_id=label,
        research_goal_paragraph="Check that the official SDK drives the devnet coordinator end to end.",
        models=[t.Model(id="m", version="1", local_weights_required=False)],
        prompt_set_characteristics="Synthetic prompts.",
        expected_duration_hours=1,
        replication_factor=2,
        work_unit_source=t.StaticWorkUnitSource(kind="static", tarball_sha256="0" * 64),
        executor=t.Executor(**executor),
        reducer=t.BuiltinReducer(kind="builtin_hash_agreement"),
    )
    sig = t.sign_manifest(manifest, key)
    # 0.6.67's model dumps members of later schema versions with their
    # defaults (`requires_real_execution`), which a 0.1 manifest may not carry.
    raw = json.loads(manifest.model_dump_json(exclude_defaults=V0667))
    res = t.submit_experiment(raw, json.loads(sig.model_dump_json()), url, key)
    assert res.ok, (res.status_code, res.body)
    assert res.status_code == 201, res.status_code
    body = res.body if isinstance(res.body, dict) else json.loads(res.body)
    state["experiment_id"] = body["experiment_id"]
    state["manifest_hash"] = body["manifest_hash"]
    assert body["status"] == "submitted"
    # Re-upload: 409 duplicate_manifest, reported as not ok.
    time.sleep(1.1)  # a new `created`, so this is not a byte-identical replay
    again = t.submit_experiment(raw, json.loads(sig.model_dump_json()), url, key)
    assert not again.ok and again.status_code == 409, again.status_code
    listed = t.TenantClient(url, key).list_experiments()
    assert [e["experiment_id"] for e in listed] == [state["experiment_id"]]

elif phase == "submit":
    exp = t.Experiment(url, key, state["experiment_id"])
    units = [t.Unit(unit_id=f"u{i}", payload={"i": i, "x": 0.5}) for i in range(7)]
    r = exp.submit_units(units)
    assert r.count == 7, r
    # Idempotency: the same batch again is a typed 409 or a CoordinatorError.
    try:
        exp.submit_units(units)
        raise AssertionError("duplicate batch accepted")
    except (t.UnitsAlreadySubmittedError, t.CoordinatorError) as e:
        assert "unit_id_already_submitted" in str(e) or isinstance(
            e, t.UnitsAlreadySubmittedError
        ), str(e)
    state["units"] = [u.unit_id for u in units]
    p = exp.progress()
    assert p.total_work_units == 7 and p.status == "approved", p
    assert p.replication_target_total == 14, p

elif phase == "finish":
    exp_id = state["experiment_id"]
    exp = t.Experiment(url, key, exp_id)
    client = t.TenantClient(url, key)

    # Before completion: a checkpoint attestation (CLI), and the plain one
    # is refused with HTTP 425.
    out = run_cli(*coord("experiment", "attestation", exp_id, "--checkpoint"))
    assert "PARTIAL" in out and "verified" in out, out
    out = run_cli(*coord("experiment", "attestation", exp_id), ok=False)
    assert "425" in out and "experiment_not_completed" in out, out

    # The SSE doorbell: finalize in a second thread, the wait ends early.
    wake = t.SseWake(
        t.sse_line_source(url, key, exp_id, read_timeout=2.0),
        floor=t.Backoff(start=25.0, max=25.0),
    )

    def finalize_soon():
        time.sleep(1.5)
        exp.finalize()

    th = threading.Thread(target=finalize_soon)
    t0 = time.monotonic()
    th.start()
    wake.wait()
    waited = time.monotonic() - t0
    th.join()
    wake.close()
    assert waited < 20.0, f"the doorbell did not ring ({waited:.1f}s)"
    state["doorbell_seconds"] = round(waited, 2)

    detail = client.get_experiment(exp_id)
    assert detail["status"] == "completed", detail
    assert detail["submissions_finalized"] is True
    p = exp.progress()
    assert p.status == "completed" and p.reduce_ready and p.is_terminal, p
    assert p.total_work_units == 7 and p.work_unit_counts == {"completed": 7}, p
    assert p.completions_total == 14 and p.replication_target_total == 14, p
    assert p.active_contributor_count == 2, p
    assert isinstance(p.network_active_workers, int), p

    consensus = list(client.iter_results(exp_id, include="consensus"))
    assert sorted(r["unit_id"] for r in consensus) == sorted(state["units"]), consensus
    raw = list(client.iter_results(exp_id, include="raw"))
    assert len(raw) == 14, len(raw)
    assert len({r["result_id"] for r in raw}) == 14
    page = client.get_results(exp_id, include="raw")
    assert len(page["results"]) == 14 and "next_cursor" not in page
    first = exp.results_page(include="consensus")
    assert len(first.results) == 7 and first.next_cursor is None
    assert len(list(exp.results(include="consensus"))) == 7
    for r in consensus:
        assert r["is_consensus"] is True
        assert r["payload"]["x"] == 0.5
        assert r["receipt_id"].startswith("rcpt-")
    receipts = client.get_receipts(exp_id)
    assert len(receipts) == 14, len(receipts)
    assert all(r["receipt_id"].startswith("rcpt-") and r["issued_at"] for r in receipts)
    time.sleep(1.1)  # lifecycle actions are replay-checked: use a new `created`
    try:
        exp.finalize()
        raise AssertionError("finalize after completion accepted")
    except t.LifecycleConflictError:
        pass

    # The attestation: API (with the devnet log's inclusion proof) and CLI.
    att = client.get_attestation(exp_id)
    body = att
    assert isinstance(att, ResultSetAttestation)
    assert att.algorithm == "sha256-merkle-v1" and att.unit_count == 7, body
    assert not att.partial
    again = client.get_attestation(exp_id)
    assert again == att, "the final attestation changed between GETs"
    coordinator_key = att.signing_key_pubkey_hex
    v = verify_attestation(att, authorized_signers=[coordinator_key])
    assert v.ok, v
    if rekor:
        assert att.rekor_entry_uuid not in ("", "lab-mode-no-rekor"), body
        assert att.rekor_log_index > 0, body
        assert att.rekor_inclusion_proof, body
        v = verify_attestation(att, check_rekor=True, rekor_url=rekor)
        assert v.ok and v.rekor_inclusion.included, v.rekor_inclusion
        state["rekor_log_index"] = att.rekor_log_index
    out = run_cli(*coord("experiment", "attestation", exp_id, "--verify-against-results"))
    assert "verified ✓" in out, out
    assert "signature:   valid" in out and "root match:  ok" in out, out
    assert "vs results:  ok" in out, out
    if rekor:
        assert f"logIndex {att.rekor_log_index}" in out, out

    # Export with verification, then the offline bundle commands.
    bundle_path = workdir / f"{label}-bundle.json"
    export_args = ["experiment", "export", exp_id, "-o", str(bundle_path)]
    if V0667:
        export_args += ["--signer", coordinator_key]
    out = run_cli(*coord(*export_args))
    assert "verified ✓" in out, out
    assert "root_kind=sha256-merkle-v1" in out and "attestation present" in out, out
    bundle = json.loads(bundle_path.read_text())
    assert bundle["schema"] == "auspexai-evidence-bundle/v1"
    if V0667:
        bv = verify_bundle(bundle, authorized_signers=[coordinator_key])
    else:
        bv = verify_bundle(bundle, authorized_signers=[coordinator_key])
    assert bv.ok, bv
    assert bv.root_unified is True and bv.completeness_ok is True, bv
    assert bv.inputs_bound_ok is True, bv
    assert bv.worker_signatures.verified == 7 and not bv.worker_signatures.failed, bv
    if V0667:
        assert bv.manifest_bound_ok is True, bv
        assert bv.signer_pin_mode == "explicit", bv
    if rekor:
        bv = verify_bundle(bundle, check_rekor=True, rekor_url=rekor)
        assert bv.ok and bv.attestation.rekor_inclusion.included, bv
    out = run_cli("bundle", "verify", str(bundle_path))
    assert "verified ✓" in out, out
    out = run_cli("bundle", "verify", str(bundle_path), "--signer", coordinator_key)
    assert "signer pin:  ok" in out and "verified ✓" in out, out
    try:
        import pandas  # noqa: F401

        table = workdir / f"{label}.csv"
        out = run_cli("bundle", "table", str(bundle_path), "-o", str(table))
        assert "verified ✓" in out and table.exists(), out
        lines = table.read_text().splitlines()
        assert len(lines) == 8, lines
        state["table"] = "written"
    except ImportError:
        state["table"] = "skipped: pandas is not installed in this venv"

    if V0667:
        exp.driver_heartbeat("exiting", reason="done", round=1)
    else:
        # The 0.5.5 request and catalog commands.
        out = run_cli(*coord("model", "catalog"))
        assert "active worker(s)" in out, out
        out = run_cli(*coord("model", "request", "big:70b", "--reason", "a big model"))
        assert "pending" in out, out
        out = run_cli(
            *coord("software", "request", "numpy", "--description", "arrays", "--reason", "maths")
        )
        assert "pending" in out, out
        out = run_cli(*coord("software", "list"))
        assert "numpy" in out, out
        out = run_cli("apply", "--status", "--coordinator", url, "--key", key_path)
        assert "(no applications)" in out, out
    state["checked"] = True

state_file.write_text(json.dumps(state))
print(json.dumps(state))
