#!/usr/bin/env python3
"""Writes sample training rows for the example model: OUT.jsonl with --rows rows of
{"features": {...}, "score": y}. Replace with your data (train.yaml's data: section can also read
CSV files, a PostgreSQL query, or forklift's own prediction events joined with feedback labels)."""
import argparse
import json
import random


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with open(args.out, "w") as f:
        for _ in range(args.rows):
            distance = rng.gammavariate(2.0, 3.0)
            hour = rng.randrange(24)
            weekend = rng.random() < 2 / 7
            score = 1.5 + 2.0 * distance + 0.1 * hour - 0.5 * weekend + rng.gauss(0, 0.2)
            f.write(json.dumps({"features": {"distance_km": distance, "hour_of_day": hour,
                                             "is_weekend": weekend}, "score": score}) + "\n")


if __name__ == "__main__":
    main()
