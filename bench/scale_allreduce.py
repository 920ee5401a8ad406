"""The all-reduce of one step's gradients alone, 2 torch processes on 127.0.0.1 (gloo), no compute:
one all-reduce per parameter (as the per-parameter hooks did: ``KERASTACK_TORCH_BUCKET_MB=0``)
against buckets (``core.engine.backends.torch.GradientBuckets``'s way: flattened, asynchronous,
waited for at the end). The tensors are the ResNet's of bench/scale.py (width 32, depth 2, 3 stages,
32x32 shapes). Prints one JSON line; bench/scale.md quotes it. Not run by CI.

    python bench/scale_allreduce.py [--steps 30] [--buckets 1,25]
"""

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch.multiprocessing as mp

REPO = Path(__file__).resolve().parent.parent


def shapes():
    os.environ["KERAS_BACKEND"] = "torch"
    sys.path.insert(0, str(REPO))
    from core.data import spec_of
    from plugins.architectures.resnet import build
    from plugins.datasets.shapes import load

    model = build(spec_of(load(samples=64, size=32, validation=0, test=0)), width=32, depth=2, stages=3, dropout=0)
    return [tuple(v.shape) for v in model.trainable_variables]


def worker(rank, store, sizes, steps, buckets, out):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=store, rank=rank, world_size=2)
    grads = [torch.randn(s) for s in sizes]
    results = {}

    def per_parameter():
        for g in grads:
            dist.all_reduce(g)

    def bucketed(limit):
        groups, current, nbytes = [], [], 0
        for g in reversed(grads):
            current.append(g)
            nbytes += g.numel() * 4
            if nbytes >= limit:
                groups.append(current)
                current, nbytes = [], 0
        groups += [current] if current else []

        def run():
            works = []
            for group in groups:
                flat = torch.cat([g.reshape(-1) for g in group])
                works.append((group, flat, dist.all_reduce(flat, async_op=True)))
            for group, flat, work in works:
                work.wait()
                at = 0
                for g in group:
                    g.copy_(flat[at : at + g.numel()].view_as(g))
                    at += g.numel()

        return run

    variants = {"per parameter": per_parameter}
    variants.update({f"buckets of {mb} MB": bucketed(int(float(mb) * 2**20)) for mb in buckets})
    for name, run in variants.items():
        run()  # warm-up
        times = []
        for _ in range(steps):
            dist.barrier()
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        results[name] = 1000 * statistics.median(times)
    if rank == 0:
        Path(out).write_text(json.dumps(results))
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--buckets", default="1,25")
    args = parser.parse_args()
    sizes = shapes()
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    with tempfile.TemporaryDirectory() as tmp:
        store, out = (Path(tmp) / "store").as_uri(), Path(tmp) / "out.json"
        mp.spawn(worker, args=(store, sizes, args.steps, args.buckets.split(","), str(out)), nprocs=2)
        ms = json.loads(out.read_text())
    total = sum(4 * math.prod(s) for s in sizes)
    print(json.dumps({"tensors": len(sizes), "bytes": total, "median_ms": ms, "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
