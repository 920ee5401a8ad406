"""The torch backend's Keras fixes (core/engine/backends/torch.py): a class per pixel trains."""

import pytest
from conftest import run_python

CHECK = """
import numpy as np
import keras
from core.engine.backends.torch import _patch_pixel_crossentropy

rng = np.random.default_rng(0)
p = rng.random((2, 3, 5, 4)).astype("float32")
p /= p.sum(-1, keepdims=True)
t = rng.integers(0, 4, (2, 3, 5))
expected = -np.log(np.take_along_axis(p, t[..., None], -1)[..., 0])

def model():
    image = keras.Input((6, 6, 1))
    return keras.Model(image, keras.layers.Conv2D(3, 1, activation="softmax")(keras.layers.Conv2D(4, 3, padding="same")(image)))

x, y = rng.random((8, 6, 6, 1)).astype("float32"), rng.integers(0, 3, (8, 6, 6))
unpatched = model()
unpatched.compile("adam", "sparse_categorical_crossentropy")
try:
    unpatched.fit(x, y, verbose=0)
    print("unpatched trains")  # a torch that fixed pytorch #175084: the patch is no longer needed
except RuntimeError as exc:
    assert "grad_input must be contiguous" in str(exc), exc

_patch_pixel_crossentropy()
for target in (t, t[..., None]):
    loss = keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(target, p))
    assert loss.shape == (2, 3, 5) and np.abs(loss - expected).max() < 1e-5, loss
logits = keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(t, np.log(p), from_logits=True))
assert np.abs(logits - expected).max() < 1e-5
patched = model()
patched.compile("adam", "sparse_categorical_crossentropy")
history = patched.fit(x, y, epochs=2, verbose=0).history["loss"]
assert np.all(np.isfinite(history)), history
print("ok")
"""


@pytest.mark.slow
def test_a_class_per_pixel_trains_with_sparse_crossentropy():
    proc = run_python(CHECK, env={"KERAS_BACKEND": "torch"})
    assert proc.stdout.strip().splitlines()[-1] == "ok", proc.stdout


RESTART = """
import os, subprocess, sys, time
import torch.distributed as dist

WORKER = '''
import torch, torch.distributed as dist
from core.engine.backends.torch import Torch
Torch().join(None)
total = torch.ones(1) * (dist.get_rank() + 1)
dist.all_reduce(total)
print(int(total.item()))
'''
agent = dist.TCPStore("127.0.0.1", 0, 2, is_master=True, wait_for_workers=False)  # torchrun's agent: one store for all attempts
base = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(agent.port), WORLD_SIZE="2",
            TORCHELASTIC_USE_AGENT_STORE="True", GLOO_SOCKET_IFNAME="lo", KERASTACK_DIST_TIMEOUT="30")

def worker(rank, attempt):
    env = dict(base, RANK=str(rank), LOCAL_RANK=str(rank), TORCHELASTIC_RESTART_COUNT=str(attempt))
    return subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def finish(procs):
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o.strip() for o, _ in outs] == ["3", "3"], outs

finish([worker(0, 0), worker(1, 0)])  # attempt 0 publishes its addresses and exits
# Attempt 1: one rank well before the other, while the store still holds the dead attempt's
# addresses (which rank connects to which is gloo's choice: both orders).
first = worker(0, 1)
time.sleep(4)
finish([first, worker(1, 1)])
first = worker(1, 2)
time.sleep(4)
finish([worker(0, 2), first])
print("ok")
"""


def test_a_restarted_group_does_not_read_the_dead_attempts_addresses():
    """torchrun keeps one store across restarts: a worker of attempt 1 must not connect to an
    address that a worker of attempt 0 published (pytorch/pytorch#135712)."""
    assert run_python(RESTART, timeout=180).stdout.strip().endswith("ok")
