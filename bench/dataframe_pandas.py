"""pandas anchors for bench/dataframe.js: the same row function over the same
data, df.apply(axis=1) serially and over a 2-process multiprocessing.Pool
(the way Pandaral·lel splits a frame). Prints one JSON object on stdout.

usage: /usr/bin/python3 bench/dataframe_pandas.py DATA_FILE ROWS RUNS WORKERS
DATA_FILE holds 4 float64 columns (a, b, c, d) back to back, little-endian.
"""
import json
import math
import sys
import time
from multiprocessing import Pool

import numpy as np
import pandas as pd

LOOP = 8


def row_fn(row):
    a, b, c, d = row
    s = 0.0
    for k in range(LOOP):
        s += math.sqrt(a * a + b * b + k) + math.sin(c + k) * d
    return s


def part_apply(part):
    return part.apply(row_fn, axis=1)


def pool_apply(pool, df, workers):
    n = len(df)
    parts = [df.iloc[n * i // workers : n * (i + 1) // workers] for i in range(workers)]
    return pd.concat(pool.map(part_apply, parts))


def main():
    path, rows, runs, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    cols = np.fromfile(path, dtype="<f8").reshape(4, rows)
    df = pd.DataFrame({name: cols[i] for i, name in enumerate("abcd")})
    out = {"pandas": pd.__version__, "serial": [], "pool": [], "pool_cold": None}

    for _ in range(runs):
        t = time.perf_counter()
        serial = df.apply(row_fn, axis=1)
        out["serial"].append(time.perf_counter() - t)

    # First: the Pool's start included; then a started Pool, as a warm tsmpi pool.
    t = time.perf_counter()
    with Pool(workers) as pool:
        pooled = pool_apply(pool, df, workers)
        out["pool_cold"] = time.perf_counter() - t
        for _ in range(runs):
            t = time.perf_counter()
            pooled = pool_apply(pool, df, workers)
            out["pool"].append(time.perf_counter() - t)

    out["same"] = bool(np.array_equal(serial.to_numpy(), pooled.to_numpy()))
    out["checksum"] = float(serial.sum())
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
