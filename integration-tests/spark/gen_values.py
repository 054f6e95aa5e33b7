#!/usr/bin/env python3
"""Deterministic rows for the Spark function goldens (functions_*), one JSON object per line,
in event-time order: {"time","id","k","s","n","x","d","p"}, and nested rows for the nested
goldens: {"time","id","user":{"name","address":{"city","zip"}},"tags":[...],"items":[{"sku","qty"}],"attrs":{...}}.

    python3 integration-tests/spark/gen_values.py values > integration-tests/spark/values_input.jsonl
    python3 integration-tests/spark/gen_values.py nested > integration-tests/spark/nested_input.jsonl

Standard library only (random.Random(seed)), so the output is byte-for-byte reproducible.
Values cover what functions trip over: NULLs in every column, empty and one-character strings,
mixed case, punctuation, digits, non-ASCII letters, spaces at either end; zero, negative,
large and boundary integers; doubles at .5 boundaries, negative, tiny and large; dates around
month, year and leap-day boundaries; decimals with two digits.
"""

import json
import random
import sys

SEED = 7203
ROWS = 400
START_MS = 1469491200000  # 2016-07-26T00:00:00Z
MINUTE = 60_000

WORDS = ["alpha", "Beta", "gamma ray", "delta-9", "EPSILON", "zeta_eta", "théta", "iota kappa lambda", "a", "", "  padded  ", "x1y2z3", "Hello, World!", "ünï cödé", "ab-cd-ef", "q u i e t"]
DATES = ["2016-02-28", "2016-02-29", "2016-03-01", "2015-12-31", "2016-01-01", "2016-07-26", "1999-12-31", "2000-01-01", "2024-02-29", "1970-01-01", "1969-12-31"]
INTS = [0, 1, -1, 7, -7, 42, 100, -100, 123456789, -987654321, 9223372036854775807, -9223372036854775807, 2147483647, -2147483648]
DOUBLES = [0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.14159, -2.71828, 1e-7, 123456.789, 9.995, 38.785, 55.894999999999996, 1e7, -0.125, 100.0]


def rfc3339(ms):
    secs, milli = divmod(ms, 1000)
    days, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
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


def maybe(rng, v, p=0.1):
    return None if rng.random() < p else v


def values(rng):
    for i in range(ROWS):
        # Irregular gaps across hours and a day boundary: 0-20 minutes and some milliseconds.
        ms = START_MS + i * 7 * MINUTE + int(rng.random() * 999) + (i % 13) * 1_013
        yield {
            "time": rfc3339(ms),
            "id": i,
            "k": ["red", "green", "blue"][i % 3],
            "s": maybe(rng, rng.choice(WORDS)),
            "n": maybe(rng, rng.choice(INTS) if rng.random() < 0.5 else int(rng.random() * 2000) - 1000),
            "x": maybe(rng, rng.choice(DOUBLES) if rng.random() < 0.5 else round(rng.random() * 200 - 100, 3)),
            "d": maybe(rng, rng.choice(DATES)),
            "p": maybe(rng, round(rng.random() * 2000 - 1000, 2)),
        }


CITIES = ["Lisbon", "Porto", "Braga", None]


def nested(rng):
    for i in range(ROWS):
        ms = START_MS + i * 5 * MINUTE + int(rng.random() * 999)
        city = rng.choice(CITIES)
        user = maybe(rng, {"name": f"user-{i % 17}", "address": maybe(rng, {"city": city, "zip": f"{1000 + i % 50}"}, 0.1)}, 0.05)
        tags = maybe(rng, [rng.choice(["new", "vip", "promo", "b2b", "gift"]) for _ in range(int(rng.random() * 4))], 0.1)
        items = [{"sku": f"sku-{int(rng.random() * 9)}", "qty": int(rng.random() * 5)} for _ in range(1 + int(rng.random() * 3))]
        attrs = maybe(rng, {"channel": rng.choice(["web", "app"]), "ab": rng.choice(["A", "B"])}, 0.2)
        yield {"time": rfc3339(ms), "id": i, "user": user, "tags": tags, "items": items, "attrs": attrs}


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "values"
    rng = random.Random(SEED if kind == "values" else SEED + 1)
    rows = values(rng) if kind == "values" else nested(rng)
    for r in rows:
        sys.stdout.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
