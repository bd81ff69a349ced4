"""The doubler: a stdlib-only executor for the AuspexAI executor contract.

Each work unit's payload carries an integer `value`; the result payload is
`{"value": v, "doubled": 2 * v}`. The worker runs it as
`python3 executor.py --input IN --output OUT --models DIR --timeout S`
inside its sandbox (no network, read-only package, private workspace).
"""
import argparse
import datetime
import json
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--timeout", type=int, default=600)
    args = ap.parse_args()
    with open(args.input, encoding="utf-8") as f:
        unit = json.load(f)
    value = int(unit["payload"]["value"])
    out = {
        "schema_version": "0.1",
        "unit_id": unit["unit_id"],
        "completed_at": datetime.datetime.now(datetime.timezone.utc)
        .isoformat()
        .replace("+00:00", "Z"),
        "exit_code": 0,
        "payload": {"value": value, "doubled": 2 * value},
    }
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f)
    os.replace(tmp, args.output)


if __name__ == "__main__":
    main()
