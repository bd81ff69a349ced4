"""Drives the devnet coordinator with the official auspexai-tenant SDK.

Usage: sdk_flow.py PHASE COORDINATOR_URL KEY_PATH STATE_JSON
Phases: upload (sign + submit a manifest), submit (units), finish (finalize,
results in both include modes, receipts, progress). Every phase asserts on the
Python side and writes what the Rust side needs into STATE_JSON.
"""

import json
import sys
import time
from pathlib import Path

import auspexai_tenant as t

phase, url, key_path, state_path = sys.argv[1:5]
key = t.MaintainerKey.load(Path(key_path))
state_file = Path(state_path)
state = json.loads(state_file.read_text()) if state_file.exists() else {}

if phase == "upload":
    manifest = t.Manifest(
        schema_version="0.1",
        tenant_id="sdk-lab",
        tenant_maintainer_contact="alice@example.com",
        experiment_id="sdk-flow",
        research_goal_paragraph="Check that the official SDK drives the devnet coordinator end to end.",
        models=[t.Model(id="m", version="1", local_weights_required=False)],
        prompt_set_characteristics="Synthetic prompts.",
        expected_duration_hours=1,
        replication_factor=2,
        work_unit_source=t.StaticWorkUnitSource(kind="static", tarball_sha256="0" * 64),
        executor=t.Executor(command=["python", "run.py"]),
        reducer=t.BuiltinReducer(kind="builtin_hash_agreement"),
    )
    sig = t.sign_manifest(manifest, key)
    raw = json.loads(manifest.model_dump_json())
    res = t.submit_experiment(raw, json.loads(sig.model_dump_json()), url, key)
    assert res.ok, (res.status_code, res.body)
    assert res.status_code == 201, res.status_code
    body = res.body if isinstance(res.body, dict) else json.loads(res.body)
    state["experiment_id"] = body["experiment_id"]
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
        assert "unit_id_already_submitted" in str(e), str(e)
    state["units"] = [u.unit_id for u in units]

elif phase == "finish":
    exp = t.Experiment(url, key, state["experiment_id"])
    client = t.TenantClient(url, key)
    exp.finalize()
    detail = client.get_experiment(state["experiment_id"])
    assert detail["status"] == "completed", detail
    assert detail["submissions_finalized"] is True
    # (exp.progress() needs GET …/activity, which is not served yet.)
    consensus = list(client.iter_results(state["experiment_id"], include="consensus"))
    assert sorted(r["unit_id"] for r in consensus) == sorted(state["units"]), consensus
    raw = list(client.iter_results(state["experiment_id"], include="raw"))
    assert len(raw) == 14, len(raw)
    assert len({r["result_id"] for r in raw}) == 14
    page = client.get_results(state["experiment_id"], include="raw")
    assert len(page["results"]) == 14 and "next_cursor" not in page
    first = exp.results_page(include="consensus")
    assert len(first.results) == 7 and first.next_cursor is None
    via_exp = list(exp.results(include="consensus"))
    assert len(via_exp) == 7
    for r in consensus:
        assert r["is_consensus"] is True
        assert r["payload"]["x"] == 0.5
        assert r["receipt_id"].startswith("rcpt-")
    receipts = client.get_receipts(state["experiment_id"])
    assert len(receipts) == 14, len(receipts)
    assert all(r["receipt_id"].startswith("rcpt-") and r["issued_at"] for r in receipts)
    time.sleep(1.1)  # lifecycle actions are replay-checked: use a new `created`
    try:
        exp.finalize()
        raise AssertionError("finalize after completion accepted")
    except t.LifecycleConflictError:
        pass
    state["checked"] = True

state_file.write_text(json.dumps(state))
print(json.dumps(state))
