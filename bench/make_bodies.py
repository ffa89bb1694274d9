#!/usr/bin/env python3
"""Writes the request bodies the benchmark sends: one eta row, and batches of 100 and 1,000 rows."""
import json
import sys
from pathlib import Path

models, out = Path(sys.argv[1]), Path(sys.argv[2])
cases = [json.loads(l) for l in (models / "eta/2/selftest.jsonl").read_text().splitlines() if l]
rows = [c["features"] for c in cases if None not in c["features"].values()]
out.mkdir(parents=True, exist_ok=True)
(out / "eta_one.json").write_text(json.dumps({"model_id": "eta", "features": rows[0]}))
batch = [rows[i % len(rows)] for i in range(100)]
(out / "eta_batch100.json").write_text(json.dumps({"model_id": "eta", "instances": batch}))
batch = [rows[i % len(rows)] for i in range(1000)]
(out / "eta_batch1000.json").write_text(json.dumps({"model_id": "eta", "instances": batch}))
