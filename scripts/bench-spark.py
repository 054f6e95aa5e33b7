#!/usr/bin/env python3
"""Spark Structured Streaming running the tutorial's hourly count on the same events as
`eddy bench`, for a side-by-side ratio (scripts/bench-spark.sh runs both).

    /tmp/spark-venv/bin/python scripts/bench-spark.py EVENTS.json [RECORDS_PER_BATCH]

The NDJSON file is cut into files of RECORDS_PER_BATCH lines (default 50,000, eddy's
commit_max_records) read with maxFilesPerTrigger = 1, so each micro-batch is the next 50,000
events, like a Kafka partition read batch by batch. The query is config/tutorial.yaml's:
withWatermark(time, '2 hours'), groupBy(action, window(time, '1 hour')).count(), append mode,
noop sink, local[1], one shuffle partition. It runs twice (cold: first JIT; warm: a fresh
checkpoint in the same JVM) and prints one JSON line per run with events, wall seconds and
CPU seconds of the JVM (user + system from /proc, JVM start-up excluded).
"""

import json
import os
import shutil
import sys
import tempfile
import time


def descendants(pid):
    """Pids of every process below `pid`."""
    children = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(p))
        except OSError:
            pass
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def cpu_seconds(pids):
    """User + system CPU seconds of `pids` (and this process)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(os.times()[:2])
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def split(path, into, per_file):
    n = 0
    out = None
    with open(path) as f:
        for line in f:
            if n % per_file == 0:
                if out:
                    out.close()
                name = os.path.join(into, f"part-{n // per_file:06d}.json")
                out = open(name, "w")
                # Spark's file source orders files by modification time.
                os.utime(name, (1_000_000 + n // per_file, 1_000_000 + n // per_file))
            out.write(line)
            n += 1
    if out:
        out.close()
        for i, name in enumerate(sorted(os.listdir(into))):
            os.utime(os.path.join(into, name), (1_000_000 + i, 1_000_000 + i))
    return n


def main():
    events_path = sys.argv[1]
    per_file = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    work = tempfile.mkdtemp(prefix="eddy-spark-bench-")
    data = os.path.join(work, "in")
    os.makedirs(data)
    events = split(events_path, data, per_file)

    from pyspark.sql import SparkSession
    from pyspark.sql.functions import col, window
    from pyspark.sql.types import StringType, StructField, StructType, TimestampType

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("eddy-bench-tutorial")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    schema = StructType([
        StructField("time", TimestampType()),
        StructField("action", StringType()),
        StructField("id", StringType()),
    ])
    jvm = descendants(os.getpid())
    for run in ("cold", "warm"):
        checkpoint = os.path.join(work, f"checkpoint-{run}")
        df = (
            spark.readStream.schema(schema)
            .option("maxFilesPerTrigger", 1)
            .option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")
            .json(data)
        )
        counts = df.withWatermark("time", "2 hours").groupBy(col("action"), window(col("time"), "1 hour")).count()
        cpu0, t0 = cpu_seconds(jvm), time.monotonic()
        q = (
            counts.writeStream.outputMode("append")
            .format("noop")
            .option("checkpointLocation", checkpoint)
            .trigger(availableNow=True)
            .start()
        )
        q.awaitTermination()
        wall, cpu = time.monotonic() - t0, cpu_seconds(jvm) - cpu0
        rows = sum(p.get("numInputRows", 0) for p in q.recentProgress)
        print(json.dumps({"system": "spark", "run": run, "events": events, "input_rows_seen": rows,
                          "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                          "events_per_s": round(events / wall), "events_per_core_s": round(events / cpu)}), flush=True)
    spark.stop()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
