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
