#!/usr/bin/env python3
"""Records Spark Structured Streaming's own answers to the queries in queries.json, as the
golden files <query>.spark.jsonl that integration-tests/spark_compat.rs compares eddy with.

How to run (from the repository root; needs Java 17 and PySpark, nothing else):

    python3 -m venv /tmp/spark-venv
    /tmp/spark-venv/bin/pip install pyspark==4.0.0
    /tmp/spark-venv/bin/python integration-tests/spark/spark_reference.py            # every query
    /tmp/spark-venv/bin/python integration-tests/spark/spark_reference.py orders     # just these

It takes a few minutes on two cores (see manifest.json for the last run). The inputs are
checked in; to regenerate them as well:

    target/release/eddy gen tutorial --events 20000 --hours 48 --seed 11 \
        --late-fraction 0.002 --late-by 4h > integration-tests/spark/tutorial_input.jsonl
    python3 integration-tests/spark/gen_orders.py > integration-tests/spark/orders_input.jsonl

How Spark sees the data: each input file is cut, in arrival order, into files of
RECORDS_PER_FILE records whose modification times increase in the same order (Spark's file
source orders files by modification time), and read with maxFilesPerTrigger = 1, so each
micro-batch is the next RECORDS_PER_FILE records in arrival order, like a Kafka partition read
in small batches. Every query runs in its own streaming query with a fresh checkpoint:
withWatermark(time, '2 hours'), output mode append, trigger availableNow (every file, then the
final no-data batch that closes the windows the last watermark passed), local[1], one shuffle
partition, session time zone UTC, ANSI mode off. foreachBatch collects every emitted row with
Spark's own JSON writer (to_json), and the rows are written sorted, keys sorted, one per line.

The script checks what makes the recording trustworthy: every input record was read, the last
batch of an aggregation was a no-data batch with watermark = max event time - 2 hours, and no
row (key) was emitted twice.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDS_PER_FILE = 50
WATERMARK_DELAY = "2 hours"
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"  # 2016-07-26T00:00:00.000Z in UTC


def canonical(row):
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def delay_ms(text):
    """A Spark delay such as "2 hours" or "30 minutes" in milliseconds."""
    n, unit = text.split()
    return int(n) * {"hour": 3600_000, "minute": 60_000, "second": 1000}[unit.rstrip("s")]


def split_input(path, into, event_time="time"):
    """Cuts `path` into files of RECORDS_PER_FILE lines; returns (records, max event time ms)."""
    from datetime import datetime, timezone

    os.makedirs(into)
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    base = time.time() - len(lines)  # one second apart, all in the past, none older than maxFileAge
    for n, i in enumerate(range(0, len(lines), RECORDS_PER_FILE)):
        name = os.path.join(into, f"part-{n:06d}.json")
        with open(name, "w", encoding="utf-8") as f:
            f.write("\n".join(lines[i : i + RECORDS_PER_FILE]) + "\n")
        os.utime(name, (base + n, base + n))
    max_ms = max(
        int(datetime.strptime(json.loads(line)[event_time], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() * 1000)
        for line in lines
    )
    return len(lines), max_ms


def sources_of(q):
    """The input names a query reads: `sources` (a join) or `source`."""
    return q.get("sources") or [q["source"]]


def run_query(spark, name, q, inputs, work):
    """`inputs`: source name -> (its entry in queries.json, the directory of its files)."""
    from pyspark.sql import functions as F

    sql = q.get("spark_sql", q["sql"])
    for source_name, (source, files_dir) in inputs.items():
        stream = spark.readStream.schema(source["spark_schema"]).option("maxFilesPerTrigger", 1).json(files_dir)
        stream = stream.withWatermark(source.get("event_time", "time"), source.get("watermark_delay", WATERMARK_DELAY))
        stream.createOrReplaceTempView(source_name)
    dedup = q.get("spark_dedup")
    if dedup:
        # Spark's SQL DISTINCT on a stream is an aggregation; eddy's DISTINCT / DISTINCT ON are
        # dropDuplicates / dropDuplicatesWithinWatermark, which only the DataFrame API offers.
        # With `view`, the deduplicated stream is registered as that temporary view and
        # `spark_sql` runs over it (a deduplication feeding further stateful operators).
        table = spark.table(q["source"])
        method = "dropDuplicatesWithinWatermark" if dedup["within_watermark"] else "dropDuplicates"
        table = getattr(table, method)(dedup["columns"])
        code = f"{q['source']}.{method}({dedup['columns']})"
        if dedup.get("select"):
            table = table.select(*dedup["select"])
            code += f".select({dedup['select']})"
        if dedup.get("view"):
            table.createOrReplaceTempView(dedup["view"])
            result = spark.sql(sql)
            sql = f"{code}.createOrReplaceTempView({dedup['view']!r}); {sql}"
        else:
            result = table
            sql = code
    else:
        result = spark.sql(sql)
    rows = []

    per_batch = q.get("spark_per_batch")
    if per_batch:
        sql = f"{sql}; per micro-batch, as {per_batch['view']}: {per_batch['sql']}"

    complete = q.get("spark_output_mode") == "complete"

    def collect(batch, batch_id):
        if complete:
            # Complete mode emits the whole (sorted, limited) table at every batch: the last
            # batch's rows are the final table.
            if batch.isEmpty():
                return
            rows.clear()
        if per_batch:
            # Append mode emits each window's rows once, all in one micro-batch: ranking each
            # batch ranks each window (Spark has no streaming window functions over rows).
            batch.createOrReplaceTempView(per_batch["view"])
            batch = batch.sparkSession.sql(per_batch["sql"])
        js = F.to_json(F.struct("*"), {"timestampFormat": TIMESTAMP_FORMAT, "ignoreNullFields": "false"})
        for r in batch.select(js.alias("j")).collect():
            rows.append(json.loads(r["j"]))

    started = time.time()
    query = (
        result.writeStream.queryName(name)
        .outputMode("complete" if complete else "append")
        .foreachBatch(collect)
        .option("checkpointLocation", os.path.join(work, "checkpoint-" + name))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    seconds = time.time() - started
    progress = query.recentProgress
    return rows, progress, seconds, sql


def main(only):
    from pyspark.sql import SparkSession

    spec = json.load(open(os.path.join(HERE, "queries.json"), encoding="utf-8"))
    names = [n for n in spec["queries"] if not only or n in only]
    unknown = set(only) - set(spec["queries"])
    if unknown:
        sys.exit(f"unknown queries {sorted(unknown)}; known: {sorted(spec['queries'])}")

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("eddy-spark-reference")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "true")
        .config("spark.sql.streaming.numRecentProgressUpdates", "1000000")
        # Filters pushed into the JSON scan would make numInputRows count only matching rows.
        .config("spark.sql.json.filterPushdown.enabled", "false")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = tempfile.mkdtemp(prefix="eddy-spark-reference-")
    manifest_path = os.path.join(HERE, "manifest.json")
    manifest = json.load(open(manifest_path, encoding="utf-8")) if os.path.exists(manifest_path) else {}
    manifest.update(
        {
            "spark_version": spark.version,
            "records_per_file": RECORDS_PER_FILE,
            "watermark_delay": WATERMARK_DELAY,
            "settings": "local[1], shuffle partitions 1, session time zone UTC, ANSI off, maxFilesPerTrigger 1, trigger availableNow, output mode append",
        }
    )
    manifest.setdefault("inputs", {})
    manifest.setdefault("queries", {})
    total_started = time.time()
    try:
        split = {}
        for name in names:
            q = spec["queries"][name]
            for source_name in sources_of(q):
                source = spec["inputs"][source_name]
                if source_name not in split:
                    path = os.path.join(HERE, source["file"])
                    files_dir = os.path.join(work, "input-" + source_name)
                    records, max_ms = split_input(path, files_dir, source.get("event_time", "time"))
                    split[source_name] = (files_dir, records, max_ms)
                    with open(path, "rb") as f:
                        manifest["inputs"][source["file"]] = {"records": records, "sha256": hashlib.sha256(f.read()).hexdigest()}
            inputs = {s: (spec["inputs"][s], split[s][0]) for s in sources_of(q)}
            records = sum(split[s][1] for s in sources_of(q))
            # Spark's global watermark is the minimum over the inputs (the default policy).
            expected_wm = min(split[s][2] - delay_ms(spec["inputs"][s].get("watermark_delay", WATERMARK_DELAY)) for s in sources_of(q))
            rows, progress, seconds, _ = run_query(spark, name, q, inputs, work)

            read = sum(p["numInputRows"] for p in progress)
            assert read == records, f"{name}: Spark read {read} of {records} records"
            last = progress[-1]
            # Deduplication emits rows as they arrive; Spark runs no final batch for it (nothing to
            # close) unless an aggregation follows it (`spark_dedup.view`).
            dedup_only = "spark_dedup" in q and not q["spark_dedup"].get("view")
            # Complete mode closes nothing at the watermark: no final no-data batch to check.
            stateful = bool(last["stateOperators"]) and not dedup_only and q.get("spark_output_mode") != "complete"
            final_wm = last["eventTime"].get("watermark")
            from datetime import datetime, timezone

            want = datetime.fromtimestamp(expected_wm / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{expected_wm % 1000:03d}Z"
            # A stateless query needs no final batch to close windows; Spark runs none. Nor does
            # it when the last data batch already ran at the final watermark (a join whose last
            # file does not hold the maximum event time).
            assert last["numInputRows"] == 0 or not stateful or final_wm == want, f"{name}: the last batch was not the final no-data batch"
            assert final_wm == want or not stateful, f"{name}: final watermark {final_wm}, expected {want}"
            if q.get("key"):  # without a key (a join) rows are a multiset: duplicates are legitimate
                keys = [tuple(canonical(r[k]) for k in q["key"]) for r in rows]
                assert len(set(keys)) == len(keys), f"{name}: a row was emitted twice in append mode"

            lines = sorted(canonical(r) for r in rows)
            with open(os.path.join(HERE, f"{name}.spark.jsonl"), "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
            manifest["queries"][name] = {
                "golden": f"{name}.spark.jsonl",
                "rows": len(lines),
                "micro_batches": len(progress),
                "final_watermark": final_wm,
                "spark_sql": None if dedup_only else q.get("spark_sql", q["sql"]),
                "spark_per_batch": q.get("spark_per_batch"),
                "spark_output_mode": q.get("spark_output_mode", "append"),
                "spark_dataframe": None if "spark_dedup" not in q else q["spark_dedup"],
                "seconds": round(seconds, 1),
            }
            print(f"{name}: {len(lines)} rows from {len(progress)} micro-batches in {seconds:.1f} s, final watermark {final_wm}", flush=True)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    manifest["last_run_seconds"] = round(time.time() - total_started, 1)
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
