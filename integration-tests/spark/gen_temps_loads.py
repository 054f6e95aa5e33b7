#!/usr/bin/env python3
"""Deterministic temperature and load readings for Spark's stream-stream join example (the
temps/loads join of the Structured Streaming guide), one JSON object per line in ARRIVAL order:

    python3 integration-tests/spark/gen_temps_loads.py integration-tests/spark

writes temps_input.jsonl ({"temp_location_id","temp","temp_taken_time"}) and
loads_input.jsonl ({"load_location_id","load","load_taken_time"}). Standard library only;
random.Random(seed).random() is stable across Python versions, so the output is reproducible.

What it contains (24 hours of event time from 2016-07-26T00:00:00Z):

- locations 1-6: a temperature every 15 minutes (plus up to a minute), a load every 2-10
  minutes; location 3 has no temperatures from 05:00 to 08:00 (its loads there match nothing)
  and location 4 no loads from 09:00 to 12:00 (its temperatures there match nothing, so the
  left outer join pads them with nulls); location 7 has temperatures only, location 8 loads
  only; about 2% of the temperatures are null;
- the bounds: every 20th temperature gets loads at exactly its time and exactly one hour
  later (both match), one millisecond before it and one millisecond past the hour;
- a few temperatures and loads with a null location (they match nothing);
- disorder: a temperature arrives up to 50 minutes after its time, a load up to 100 minutes,
  both less than their watermark delays (1 and 2 hours), so no record is late for any engine
  whatever the interleaving of the two streams;
- last in each stream a far-future pair (ten days later, location 1, the load 30 minutes after
  the temperature): it moves both watermarks past everything else, so every unmatched
  temperature is emitted, null-padded, by the left outer join before the input ends.

It also writes temps_end_input.jsonl and loads_end_input.jsonl: the same readings in another
arrival order, without the far-future pair, plus three temperatures at location 9 (no loads)
around the end's watermark minus one hour, for what is emitted when the input just ends.
"""

import json
import os
import random
import sys

SEED = 4242
HOURS = 24
START_MS = 1469491200000  # 2016-07-26T00:00:00Z
MINUTE = 60_000
HOUR = 60 * MINUTE


def rfc3339(ms):
    secs, milli = divmod(ms, 1000)
    days, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    # Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), no time zone database.
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    mo = mp + 3 if mp < 10 else mp - 9
    y += mo <= 2
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z"


def main(out_dir):
    rng = random.Random(SEED)
    r = rng.random
    end = START_MS + HOURS * HOUR
    temps, loads = [], []  # (time, location, value)
    for loc in range(1, 9):
        if loc != 8:
            t = START_MS + int(r() * 15 * MINUTE)
            while t < end:
                outage = loc == 3 and START_MS + 5 * HOUR <= t < START_MS + 8 * HOUR
                if not outage:
                    value = None if r() < 0.02 else round(10 + r() * 25, 1)
                    temps.append((t, loc, value))
                t += 15 * MINUTE + int(r() * MINUTE)
        if loc != 7:
            t = START_MS + int(r() * 10 * MINUTE)
            while t < end:
                outage = loc == 4 and START_MS + 9 * HOUR <= t < START_MS + 12 * HOUR
                if not outage:
                    loads.append((t, loc, round(r() * 100, 2)))
                t += 2 * MINUTE + int(r() * 8 * MINUTE)
    for i, (t, loc, _) in enumerate(list(temps)):
        if i % 20 == 7:
            for dt in (0, HOUR, -1, HOUR + 1):
                loads.append((t + dt, loc, round(r() * 100, 2)))
    for k in range(3):
        t = START_MS + (2 + 4 * k) * HOUR + 17 * MINUTE
        temps.append((t, None, 20.5 + k))
        loads.append((t + 10 * MINUTE, None, 50.0 + k))

    def arrival(records, max_delay):
        keyed = [(t + int(r() * max_delay), i, rec) for i, rec in enumerate(records) for t in [rec[0]]]
        keyed.sort()
        return [rec for _, _, rec in keyed]

    # The variant without the far-future pair ends at the watermark W = min(max temp time - 1h,
    # max load time - 2h); location 9 (temperatures only) has one exactly an hour before W (its
    # last possible match is at W, so it can be emitted null-padded once the watermark is W)
    # and one a millisecond either side of that.
    w = min(max(t for t, _, _ in temps) - HOUR, max(t for t, _, _ in loads) - 2 * HOUR)
    end_temps = temps + [(w - HOUR + dt, 9, 30.0 + dt) for dt in (-1, 0, 1)]
    end_loads = list(loads)

    temps = arrival(temps, 50 * MINUTE)
    loads = arrival(loads, 100 * MINUTE)
    far = end + 10 * 24 * HOUR
    temps.append((far, 1, 21.0))
    loads.append((far + 30 * MINUTE, 1, 42.0))
    end_temps = arrival(end_temps, 50 * MINUTE)
    end_loads = arrival(end_loads, 100 * MINUTE)

    def write(name, records, prefix):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            for t, loc, value in records:
                rec = {f"{prefix}_location_id": loc, prefix: value, f"{prefix}_taken_time": rfc3339(t)}
                f.write(json.dumps(rec, separators=(",", ":")) + "\n")

    write("temps_input.jsonl", temps, "temp")
    write("loads_input.jsonl", loads, "load")
    write("temps_end_input.jsonl", end_temps, "temp")
    write("loads_end_input.jsonl", end_loads, "load")
    print(f"{len(temps)} temperatures, {len(loads)} loads", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
