#!/usr/bin/env python3
"""Deterministic order events for the Spark compatibility goldens, one JSON object per line
in ARRIVAL order: {"time","customer","amount","qty"}.

    python3 integration-tests/spark/gen_orders.py > integration-tests/spark/orders_input.jsonl

Standard library only; uses nothing but random.Random(seed).random(), whose sequence is
stable across Python versions, so the output is byte-for-byte reproducible. What it contains:

- 5,000 orders over 24 hours of event time from 2016-07-26T00:00:00Z, 40 customers;
- amounts with two decimals (some negative refunds, some written as JSON integers such as
  `25`, about 2% null); quantities from -2 to 9 (some zero or negative, about 1% null);
- arrival order: each order arrives up to 5 minutes after its time; 3% arrive 30-90 minutes
  late (disordered, but within the 2-hour watermark delay, so on time for any engine), and
  0.4% arrive 5 hours late (always behind a 2-hour watermark, for Spark's per-micro-batch
  watermark as well as eddy's per-record one).
"""

import json
import random
import sys

SEED = 20160726
ORDERS = 5000
HOURS = 24
CUSTOMERS = 40
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


def main():
    rng = random.Random(SEED)
    r = rng.random
    orders = []
    for i in range(ORDERS):
        t = START_MS + int(r() * HOURS * HOUR)
        # Customers are skewed: low numbers order more often.
        customer = f"customer-{int(CUSTOMERS * r() * r()):02d}"
        kind = r()
        if kind < 0.02:
            amount = None
        elif kind < 0.05:
            amount = -round(1 + r() * 50, 2)  # refund
        elif kind < 0.10:
            amount = int(5 + r() * 20) * 5  # a round price, written as a JSON integer
        else:
            amount = round(1 + r() * 199, 2)
        q = r()
        qty = None if q < 0.01 else int(r() * 12) - 2
        lateness = r()
        if lateness < 0.004:
            arrival = t + 5 * HOUR
        elif lateness < 0.034:
            arrival = t + 30 * MINUTE + int(r() * 60 * MINUTE)
        else:
            arrival = t + int(r() * 5 * MINUTE)
        orders.append((arrival, t, i, customer, amount, qty))
    orders.sort()
    out = sys.stdout
    for _, t, _, customer, amount, qty in orders:
        rec = {"time": rfc3339(t), "customer": customer, "amount": amount, "qty": qty}
        out.write(json.dumps(rec, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
