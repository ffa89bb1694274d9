#!/usr/bin/env python3
"""Trains the example model and writes it, with its self-tests, into a model repository.

Usage: train.py SOURCE_MODELS OUTPUT_MODELS
SOURCE_MODELS is this repository's models/ (model.yaml and friends, copied as they are); the
TorchScript model.pt and a selftest.jsonl of PyTorch's own outputs go beside them in OUTPUT_MODELS.
Replace the synthetic data with your training data.
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch


def synthetic(rows, rng):
    x = np.column_stack([rng.gamma(2.0, 3.0, rows), rng.integers(0, 24, rows),
                         rng.random(rows) < 2 / 7]).astype(np.float32)
    y = 1.5 + 2.0 * x[:, 0] + 0.1 * x[:, 1] - 0.5 * x[:, 2] + rng.normal(0, 0.2, rows)
    return x, y.astype(np.float32)


class Score(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(),
                                          torch.nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(1)


def main():
    source, output = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(output, ignore_errors=True)
    shutil.copytree(source, output)
    torch.set_num_threads(1)
    for version_dir in sorted(p for p in output.glob("*/*") if p.is_dir()):
        torch.manual_seed(int(version_dir.name))
        x, y = synthetic(5000, np.random.default_rng(int(version_dir.name)))
        model = Score()
        optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        for _ in range(300):
            optimiser.zero_grad()
            torch.nn.functional.mse_loss(model(xt), yt).backward()
            optimiser.step()
        model.eval()
        torch.jit.save(torch.jit.script(model), str(version_dir / "model.pt"))
        loaded = torch.jit.load(str(version_dir / "model.pt"))
        cases, _ = synthetic(8, np.random.default_rng(100))
        with torch.inference_mode():
            predicted = loaded(torch.from_numpy(cases)).numpy()
        with open(version_dir / "selftest.jsonl", "w") as f:
            for row, want in zip(cases, predicted):
                features = {"distance_km": float(row[0]), "hour_of_day": int(row[1]),
                            "is_weekend": bool(row[2])}
                f.write(json.dumps({"features": features, "expected": float(want),
                                    "rtol": 1e-5}) + "\n")
        print(f"trained {version_dir}")


if __name__ == "__main__":
    main()
