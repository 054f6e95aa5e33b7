#!/usr/bin/env python3
"""Deterministic click events with duplicates, for the deduplication goldens, one JSON object
per line in ARRIVAL order: {"time","id","user","copy"}.

    python3 integration-tests/spark/gen_clicks.py > integration-tests/spark/clicks_input.jsonl

Standard library only; random.Random(seed).random() is stable across Python versions. What it
contains (24 hours of event time from 2016-07-26T00:00:00Z, 3,000 clicks, 50 users):

- each click arrives up to 5 minutes after its time; 0 to 2 replays of it (the same time, id
  and user; `copy` 1, 2) arrive up to 15 minutes after its time, so the first arrival is not
  always the original;
- every 10th click id is used again 8 hours later (a new click: by then the first one's state
  has expired under a 2-hour watermark, for Spark's per-micro-batch watermark as well as
  eddy's per-record one);
- 0.5% of the clicks before 18:45, with their replays, arrive 5 hours late (behind any 2-hour
  watermark, also for a session of a 10-minute gap).
"""

import json
import random
import sys

SEED = 31337
CLICKS = 3000
HOURS = 24
USERS = 50
START_MS = 1469491200000  # 2016-07-26T00:00:00Z
MINUTE = 60_000
HOUR = 60 * MINUTE

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from gen_temps_loads import rfc3339  # noqa: E402


def main():
    rng = random.Random(SEED)
    r = rng.random
    records = []  # (arrival, sequence, record)
    for i in range(CLICKS):
        t = START_MS + int(r() * HOURS * HOUR)
        click = {"time": rfc3339(t), "id": f"c{i:04d}", "user": f"user-{int(r() * USERS):02d}"}
        # Late only where the late arrival is still inside the input: one arriving after the end
        # would come right after the last record, behind it by less than 5 hours.
        late = 5 * HOUR if r() < 0.005 and t + 5 * HOUR + 15 * MINUTE < START_MS + HOURS * HOUR else 0
        records.append((t + late + int(r() * 5 * MINUTE), len(records), dict(click, copy=0)))
        for copy in range(1, int(r() * 3) + 1):
            records.append((t + late + int(r() * 15 * MINUTE), len(records), dict(click, copy=copy)))
        if i % 10 == 0 and t + 8 * HOUR < START_MS + HOURS * HOUR:
            again = t + 8 * HOUR
            records.append((again + int(r() * 5 * MINUTE), len(records), dict(click, time=rfc3339(again), copy=0)))
    records.sort(key=lambda x: (x[0], x[1]))
    for _, _, rec in records:
        sys.stdout.write(json.dumps(rec, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
