"""Differential peer for tests/differential.rs.

Reads one tagged value per line on stdin (a lossless description of a Python
object: floats as IEEE bits, strings as code points), builds the object, and
answers one JSON line: {"c": <json.dumps canonical form>, "l": <a loose,
unsorted, indented, non-ASCII dump of the same object>}, plus, when pydantic
is importable (the official SDK's environment), "p" and "pi": pydantic-core's
compact and indent=2 dumps of the object.
"""
import json
import struct
import sys

try:
    from typing import Any

    from pydantic import TypeAdapter

    ADAPTER = TypeAdapter(Any)
except ImportError:
    ADAPTER = None


def build(t):
    kind = t["t"]
    if kind == "n":
        return None
    if kind == "b":
        return t["v"]
    if kind == "i":
        return int(t["v"])
    if kind == "f":
        return struct.unpack("<d", int(t["v"], 16).to_bytes(8, "little"))[0]
    if kind == "s":
        return "".join(map(chr, t["v"]))
    if kind == "a":
        return [build(x) for x in t["v"]]
    if kind == "o":
        return {"".join(map(chr, k)): build(v) for k, v in t["v"]}
    raise ValueError(kind)


for n, line in enumerate(sys.stdin):
    obj = build(json.loads(line))
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    loose = json.dumps(obj, ensure_ascii=False, indent=(n % 3) or None)
    answer = {"c": canonical, "l": loose}
    if ADAPTER is not None:
        answer["p"] = ADAPTER.dump_json(obj).decode("utf-8")
        answer["pi"] = ADAPTER.dump_json(obj, indent=2).decode("utf-8")
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
