# Collectives, mpi4py side, the same loop as bench/coll-rank.mjs:
#   mpirun --bind-to none [--oversubscribe] -n N /usr/bin/python3 bench/mpi4py_coll.py 'JSON'
# Small objects go through the pickle path (lowercase bcast/scatter/gather/reduce/
# allreduce of Python objects); the 8 MiB bcast and the 1M-element reductions
# through the buffer path (Bcast/Reduce/Allreduce of numpy float64 arrays, into
# arrays allocated once, as MPI programs do).
# Before each call: comm.Barrier(); each rank times its own call; rank 0 reports
# per call the max over ranks (`samples`) and its own time (`root`), in µs.
import json
import sys
import time

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
n = comm.Get_size()
p = json.loads(sys.argv[1])

BIG = 8 * 1024 * 1024 // 8
VEC = 1 << 20
big = np.arange(BIG, dtype=np.float64) * 0.5 if rank == 0 else np.empty(BIG, dtype=np.float64)
vec = np.full(VEC, rank + 1, dtype=np.float64)
out = np.empty(VEC, dtype=np.float64)
objs = [{'a': i, 'b': 'x'} for i in range(n)]
tri = n * (n + 1) // 2


def check(cond, what):
    if not cond:
        raise SystemExit('mpi4py_coll: wrong result of %s on rank %d' % (what, rank))


def bcast_8mib():
    comm.Bcast(big, root=0)
    return big


def reduce_1m():
    comm.Reduce(vec, out, op=MPI.SUM, root=0)
    return out


def allreduce_1m():
    comm.Allreduce(vec, out, op=MPI.SUM)
    return out


OPS = {
    'barrier': (comm.Barrier, lambda r: None, False),
    'bcast_obj': (lambda: comm.bcast({'a': 1, 'b': 'x'} if rank == 0 else None, root=0),
                  lambda r: check(r == {'a': 1, 'b': 'x'}, 'bcast_obj'), False),
    'bcast_8mib': (bcast_8mib, lambda r: check(r[BIG - 1] == (BIG - 1) * 0.5, 'bcast_8mib'), True),
    'scatter_obj': (lambda: comm.scatter(objs if rank == 0 else None, root=0),
                    lambda r: check(r == {'a': rank, 'b': 'x'}, 'scatter_obj'), False),
    'gather_obj': (lambda: comm.gather({'a': rank, 'b': 'x'}, root=0),
                   lambda r: check(rank != 0 or (len(r) == n and r[n - 1]['a'] == n - 1), 'gather_obj'), False),
    'reduce_int': (lambda: comm.reduce(rank + 1, op=MPI.SUM, root=0),
                   lambda r: check(rank != 0 or r == tri, 'reduce_int'), False),
    'allreduce_int': (lambda: comm.allreduce(rank + 1, op=MPI.SUM), lambda r: check(r == tri, 'allreduce_int'), False),
    'reduce_1m': (reduce_1m, lambda r: check(rank != 0 or (r[0] == tri and r[VEC - 1] == tri), 'reduce_1m'), True),
    'allreduce_1m': (allreduce_1m, lambda r: check(r[0] == tri and r[VEC - 1] == tri, 'allreduce_1m'), True),
}

now = time.perf_counter
for name in p['ops']:
    call, verify, large = OPS[name]
    warm = p['warm']['large' if large else 'small']
    reps = p['reps']['large' if large else 'small']
    times = []
    for i in range(warm + reps):
        comm.Barrier()
        t0 = now()
        r = call()
        dt = (now() - t0) * 1e6
        if i >= warm:
            times.append(dt)
        elif i == warm - 1:
            verify(r)
    allt = comm.gather(times, root=0)
    if rank == 0:
        samples = [max(t[i] for t in allt) for i in range(reps)]
        sys.stdout.write('BENCH ' + json.dumps({'kind': 'coll', 'impl': 'mpi4py', 'op': name, 'n': n,
                                                'samples': samples, 'root': times}) + '\n')
        sys.stdout.flush()
