"""The fastest loop a performance-minded engineer would write by hand for the same model, data,
batch size and optimizer (Adam 1e-3, sparse categorical cross-entropy), per backend:

- ``jax_jit``: ``jax.jit`` over the model's ``stateless_call``, optax Adam, donated state buffers;
- ``tf_function`` / ``tf_function_xla``: a ``tf.function`` train step (XLA off / on) over tf.data;
- ``torch_eager`` / ``torch_compile``: a plain loop with ``torch.optim.Adam`` (fused), the model
  called eagerly / through ``torch.compile``.

Each epoch trains on the shuffled training split (the last partial batch included, as ``fit``
does) and then evaluates loss and accuracy on the validation split, like an epoch of ``fit``;
there is no host sync inside the epoch. Epoch times go to $KERASTACK_BENCH_TIMES in the timing
plugin's format, so bench/run.py reads them alike.

Usage: handwritten.py VARIANT ARCH DATA EPOCHS BATCH HPARAMS_JSON DATA_OPTIONS_JSON
"""

import importlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "jax": ("jax_jit",),
    "tensorflow": ("tf_function", "tf_function_xla"),
    "torch": ("torch_eager", "torch_compile"),
}

variant, arch, data, epochs, batch, hparams, data_options = sys.argv[1:8]
epochs, batch = int(epochs), int(batch)
os.environ["KERAS_BACKEND"] = next(b for b, vs in VARIANTS.items() if variant in vs)

import keras  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.data import spec_of  # noqa: E402

keras.utils.set_random_seed(0)
dataset = importlib.import_module(f"plugins.datasets.{data}").load(**json.loads(data_options))
model = importlib.import_module(f"plugins.architectures.{arch}").build(spec_of(dataset), **json.loads(hparams))
(x_train, y_train), (x_val, y_val) = dataset.train, dataset.validation
y_train, y_val = y_train.astype("int32"), y_val.astype("int32")
rng = np.random.default_rng(0)
record = {"epochs": [], "first_step_wall": None}


def batches(x, y, shuffle):
    order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
    for i in range(0, len(x), batch):
        idx = order[i : i + batch]
        yield x[idx], y[idx]


def report(started, loop_end):
    now = time.perf_counter()
    record["epochs"].append({"total": now - started, "loop": loop_end - started, "end": now - loop_end})
    if "KERASTACK_BENCH_TIMES" in os.environ:
        with open(os.environ["KERASTACK_BENCH_TIMES"], "w") as f:
            json.dump(record, f)


def first_step():
    if record["first_step_wall"] is None:
        record["first_step_wall"] = time.time()


def run_jax():
    import functools

    import jax
    import jax.numpy as jnp
    import optax

    optimizer = optax.adam(1e-3)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    opt_state = optimizer.init(trainable)

    def loss_fn(trainable, non_trainable, x, y):
        probs, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return keras.losses.sparse_categorical_crossentropy(y, probs).mean(), non_trainable

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def train_step(trainable, non_trainable, opt_state, x, y):
        (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, non_trainable, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), non_trainable, opt_state, loss

    @jax.jit
    def eval_step(trainable, non_trainable, x, y):
        probs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        loss = keras.losses.sparse_categorical_crossentropy(y, probs).sum()
        return loss, jnp.sum(jnp.argmax(probs, -1) == y)

    for _ in range(epochs):
        started = time.perf_counter()
        for x, y in batches(x_train, y_train, True):
            trainable, non_trainable, opt_state, loss = train_step(trainable, non_trainable, opt_state, x, y)
            first_step()
        totals = [eval_step(trainable, non_trainable, x, y) for x, y in batches(x_val, y_val, False)]
        jax.block_until_ready((trainable, totals))
        report(started, time.perf_counter())


def run_tensorflow(xla):
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function(jit_compile=xla)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function(jit_compile=xla)
    def eval_step(x, y):
        probs = model(x, training=False)
        loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(y, probs))
        return loss, tf.reduce_sum(tf.cast(tf.argmax(probs, -1, output_type=tf.int32) == y, tf.int32))

    train = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train), seed=0)
    train = train.batch(batch).prefetch(tf.data.AUTOTUNE)
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(batch).prefetch(tf.data.AUTOTUNE)
    for _ in range(epochs):
        started = time.perf_counter()
        for x, y in train:
            loss = train_step(x, y)
            first_step()
        totals = [eval_step(x, y) for x, y in val]
        float(loss), [float(t[0]) for t in totals]  # the epoch's only host sync
        report(started, time.perf_counter())


def run_torch(compiled):
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    forward = torch.compile(model) if compiled else model

    def nll(probs, y):
        return torch.nn.functional.nll_loss(torch.log(probs.clamp(1e-7, 1.0)), y, reduction="sum")

    def train_step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = nll(forward(x, training=True), y) / len(y)
        loss.backward()
        optimizer.step()
        return loss.detach()

    step = torch.compile(train_step) if compiled else train_step
    x_val_t, y_val_t = torch.from_numpy(x_val), torch.from_numpy(y_val).long()
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        for x, y in batches(x_train, y_train, True):
            loss = step(torch.from_numpy(x), torch.from_numpy(y).long())
            first_step()
        model.eval()
        with torch.no_grad():
            totals = []
            for i in range(0, len(x_val_t), batch):
                probs = forward(x_val_t[i : i + batch], training=False)
                y = y_val_t[i : i + batch]
                totals.append((nll(probs, y), (probs.argmax(-1) == y).sum()))
        float(loss), [float(t[0]) for t in totals]
        report(started, time.perf_counter())


if variant == "jax_jit":
    run_jax()
elif variant.startswith("tf_function"):
    run_tensorflow(variant.endswith("xla"))
else:
    run_torch(variant == "torch_compile")
