#!/usr/bin/env python3
"""Trains the example TorchScript model `fraud` (a small MLP on synthetic card transactions) and
writes OUTPUT_DIR/fraud/1/{model.yaml, model.pt, selftest.jsonl}.

Usage: make_fraud_model.py SOURCE_DIR OUTPUT_DIR   (SOURCE_DIR: examples/optional-models)
The self-test expectations are PyTorch's own outputs for the saved module, so they check that
forklift's runtime feeds it exactly what Python would.
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

SELFTEST_CASES = 16


def synthetic_transactions(rows, rng):
    amount = rng.gamma(2.0, 40.0, rows)
    avg = amount * rng.uniform(0.5, 1.5, rows)
    x = np.column_stack([
        amount,
        avg,
        rng.integers(0, 3650, rows),            # account_age_days
        rng.poisson(3, rows),                   # txn_count_24h
        rng.poisson(5, rows),                   # distinct_merchants_7d
        rng.integers(0, 24, rows),              # hour_of_day
        rng.random(rows) < 0.1,                 # is_international
        rng.random(rows) < 0.6,                 # card_present
    ]).astype(np.float32)
    logit = (2.0 * np.log1p(x[:, 0] / (x[:, 1] + 1)) - x[:, 2] / 1000 + 0.3 * x[:, 3]
             + 1.5 * x[:, 6] - 1.2 * x[:, 7] + 0.4 * ((x[:, 5] < 5) | (x[:, 5] > 22)) - 2.5)
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return x, y


class FraudMLP(torch.nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        # Standardisation lives in the module, so callers send raw features.
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(8, 32), torch.nn.ReLU(),
            torch.nn.Linear(32, 16), torch.nn.ReLU(),
            torch.nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.layers((x - self.mean) / self.std)).squeeze(1)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, output = Path(sys.argv[1]) / "fraud" / "1", Path(sys.argv[2]) / "fraud" / "1"
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    shutil.copy(source / "model.yaml", output / "model.yaml")
    names = [f["name"] for f in yaml.safe_load((source / "model.yaml").read_text())["features"]]

    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    x, y = synthetic_transactions(20000, rng)
    model = FraudMLP(x.mean(axis=0), x.std(axis=0) + 1e-6)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(300):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy(model(xt), yt)
        loss.backward()
        optimiser.step()
    model.eval()
    scripted = torch.jit.script(model)
    torch.jit.save(scripted, str(output / "model.pt"))

    loaded = torch.jit.load(str(output / "model.pt"))
    cases, _ = synthetic_transactions(SELFTEST_CASES, np.random.default_rng(1000))
    with torch.inference_mode():
        predicted = loaded(torch.from_numpy(cases)).numpy()
    kinds = {f["name"]: f["type"] for f in yaml.safe_load((source / "model.yaml").read_text())["features"]}
    with open(output / "selftest.jsonl", "w") as f:
        for i, (row, want) in enumerate(zip(cases, predicted)):
            features = {}
            for n, v in zip(names, row):
                features[n] = bool(v) if kinds[n] == "bool" else int(v) if kinds[n] == "int" else float(v)
            f.write(json.dumps({"name": f"synthetic transaction {i}", "features": features,
                                "expected": float(want), "rtol": 1e-5}) + "\n")
    print(f"trained fraud/1 (loss {loss.item():.4f}) -> {output}")


if __name__ == "__main__":
    main()
