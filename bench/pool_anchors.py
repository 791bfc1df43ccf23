#!/usr/bin/env python3
"""The Python anchors of the pool benchmark (bench/run.js --only pool).

multiprocessing.Pool.map, ProcessPoolExecutor.map(chunksize=1000) and joblib
Parallel(n_jobs=2), 2 workers each, warm pools, medians (ms; round trips in µs).
The same tasks as bench/pool-tasks.mjs: x * 2, and a loop of about 50 ms.

    python3 bench/pool_anchors.py '{"quick": false}'

Prints one `BENCH {json}` line; a missing joblib leaves its keys out.
"""
import json
import math
import multiprocessing as mp
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

WORKERS = 2
N_TRIVIAL = 100_000
N_CPU = 40
CPU_MS = 50


def triv(x):
    return x * 2


def cpu(n):
    s = 0.0
    for i in range(n):
        s += math.sqrt(i + s * 1e-9)
    return s


def one(x):
    return x + 1


def log(s):
    print(f"bench pool (python): {s}", file=sys.stderr, flush=True)


out = {}


def record(key, samples):
    out[key] = statistics.median(samples)
    shown = [round(v, 2) for v in samples[:12]]
    log(f"{key}: median {out[key]:.3f} of {len(samples)}: {shown}{' ...' if len(samples) > 12 else ''}")


def ms(fn):
    t = time.perf_counter()
    v = fn()
    return (time.perf_counter() - t) * 1000, v


def main():
    quick = json.loads(sys.argv[1]).get("quick", False) if len(sys.argv) > 1 else False
    reps = dict(map=3, cpu=2, rtt=300, start=3) if quick else dict(map=9, cpu=4, rtt=2000, start=7)
    items = list(range(N_TRIVIAL))
    want = [triv(x) for x in items]

    # n steps ~ CPU_MS ms: grow until a run takes 100 ms, then the best of 3 runs
    steps = 1 << 12
    while ms(lambda: cpu(steps))[0] < 100:
        steps *= 2
    best = min(ms(lambda: cpu(steps))[0] for _ in range(3))
    steps = round(steps * CPU_MS / best)
    cpu_items = [steps] * N_CPU
    log(f"cpu task: {steps} steps ~ {CPU_MS} ms")

    record("py:serial:map", [ms(lambda: [triv(x) for x in items])[0] for _ in range(reps["map"])])
    record("py:serial:cpu", [ms(lambda: [cpu(x) for x in cpu_items])[0] for _ in range(reps["cpu"])])

    # multiprocessing.Pool (fork), default chunksize
    with mp.Pool(WORKERS) as pool:
        assert pool.map(triv, items) == want
        record("mp:map", [ms(lambda: pool.map(triv, items))[0] for _ in range(reps["map"])])
        record("mp:cpu", [ms(lambda: pool.map(cpu, cpu_items))[0] for _ in range(reps["cpu"])])
        for i in range(100):
            pool.apply(one, (i,))
        record("mp:rtt", [ms(lambda: pool.apply(one, (1,)))[0] * 1000 for _ in range(reps["rtt"])])
    starts = []
    for _ in range(reps["start"]):
        t = time.perf_counter()
        with mp.Pool(WORKERS) as p:
            p.apply(triv, (1,))
            starts.append((time.perf_counter() - t) * 1000)
    record("mp:start", starts)

    # concurrent.futures.ProcessPoolExecutor, map(chunksize=1000)
    with ProcessPoolExecutor(WORKERS) as ex:
        assert list(ex.map(triv, items, chunksize=1000)) == want
        record("ppe:map", [ms(lambda: list(ex.map(triv, items, chunksize=1000)))[0] for _ in range(reps["map"])])
        record("ppe:cpu", [ms(lambda: list(ex.map(cpu, cpu_items)))[0] for _ in range(reps["cpu"])])
        for i in range(100):
            ex.submit(one, i).result()
        record("ppe:rtt", [ms(lambda: ex.submit(one, 1).result())[0] * 1000 for _ in range(reps["rtt"])])
    starts = []
    for _ in range(reps["start"]):
        t = time.perf_counter()
        with ProcessPoolExecutor(WORKERS) as ex:
            ex.submit(triv, 1).result()
            starts.append((time.perf_counter() - t) * 1000)
    record("ppe:start", starts)

    # joblib Parallel(n_jobs=2) (loky; its executor is reused between calls: warm)
    try:
        import joblib
        from joblib import Parallel, delayed
    except ImportError:
        joblib = None
    if joblib is not None:
        out["joblib"] = joblib.__version__
        par = Parallel(n_jobs=WORKERS)
        assert par(delayed(triv)(x) for x in items) == want
        record("joblib:map", [ms(lambda: par(delayed(triv)(x) for x in items))[0] for _ in range(max(2, reps["map"] // 3))])
        record("joblib:cpu", [ms(lambda: par(delayed(cpu)(x) for x in cpu_items))[0] for _ in range(reps["cpu"])])

    out["python"] = sys.version.split()[0]
    print("BENCH " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
