# mpi4py on Open MPI, the same loops as bench/kernels.mjs.
#   mpirun -n 2 /usr/bin/python3 bench/mpi4py_bench.py MODE 'JSON'
# pingpong: pickle path (comm.send/recv of bytes) and buffer path (Send/Recv of numpy uint8).
# stream:   buffer path: the sender Isends `count` float64 arrays back to back and
#           waits for them all; the receiver Recvs them (into one array, as MPI
#           programs do) and acks.
import json
import sys

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
peer = 1 - rank
mode = sys.argv[1]
p = json.loads(sys.argv[2])


def emit(obj):
    sys.stdout.write('BENCH ' + json.dumps(obj) + '\n')
    sys.stdout.flush()


def reps_of(size):
    # rep 0 is warm-up
    for r in range(p['reps'] + 1):
        yield r, (p['warm'][str(size)] if r == 0 else p['iters'][str(size)])


def pingpong():
    for size in p['sizes']:
        # pickle path
        data = bytes(size)
        samples = []
        for r, m in reps_of(size):
            comm.Barrier()
            if rank == 0:
                t0 = MPI.Wtime()
                for _ in range(m):
                    comm.send(data, dest=1, tag=0)
                    comm.recv(source=1, tag=0)
                dt = MPI.Wtime() - t0
                if r > 0:
                    samples.append(dt / m / 2 * 1e6)
            else:
                for _ in range(m):
                    got = comm.recv(source=0, tag=0)
                    comm.send(got, dest=0, tag=0)
        if rank == 0:
            emit({'kind': 'pingpong', 'path': 'pickle', 'size': size, 'samples': samples})
        # buffer path
        sbuf = np.zeros(size, dtype=np.uint8)
        rbuf = np.empty(size, dtype=np.uint8)
        samples = []
        for r, m in reps_of(size):
            comm.Barrier()
            if rank == 0:
                t0 = MPI.Wtime()
                for _ in range(m):
                    comm.Send(sbuf, dest=1, tag=0)
                    comm.Recv(rbuf, source=1, tag=0)
                dt = MPI.Wtime() - t0
                if r > 0:
                    samples.append(dt / m / 2 * 1e6)
            else:
                for _ in range(m):
                    comm.Recv(rbuf, source=0, tag=0)
                    comm.Send(rbuf, dest=0, tag=0)
        if rank == 0:
            emit({'kind': 'pingpong', 'path': 'buffer', 'size': size, 'samples': samples})


def stream():
    nbytes = p['bytes']
    arr = np.full(nbytes // 8, 1.5, dtype=np.float64)
    rbuf = np.empty(nbytes // 8, dtype=np.float64)
    ack = np.zeros(1, dtype=np.uint8)
    samples = []
    for r in range(p['reps'] + 1):
        count = p['count']  # rep 0 is warm-up
        comm.Barrier()
        if rank == 0:
            t0 = MPI.Wtime()
            reqs = [comm.Isend(arr, dest=1, tag=1) for _ in range(count)]
            MPI.Request.Waitall(reqs)
            comm.Recv(ack, source=1, tag=2)
            dt = MPI.Wtime() - t0
            if r > 0:
                samples.append(count * nbytes / dt / 1e6)
        else:
            for _ in range(count):
                comm.Recv(rbuf, source=0, tag=1)
            comm.Send(ack, dest=0, tag=2)
    if rank == 0:
        emit({'kind': 'stream', 'path': 'buffer', 'bytes': nbytes, 'count': p['count'], 'samples': samples})


if comm.Get_size() != 2:
    raise SystemExit('run with -n 2')
if mode == 'pingpong':
    pingpong()
elif mode == 'stream':
    stream()
else:
    raise SystemExit('unknown mode ' + mode)
