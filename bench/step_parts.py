"""Where a torch training step's time goes: Keras's ``train_step`` against the hand-written step of
bench/handwritten.py, one part swapped at a time, side by side in one process (run under
KERAS_BACKEND=torch; bench/run.py puts the table in bench/results.md).

cnn/digits, one batch of 64, the variants taking turns; median ms per step over ``ROUNDS`` rounds of
20 steps after a warm-up round:

- ``forward``: the model's forward pass alone (no gradient);
- ``hand``: forward, a negative log-likelihood, backward, fused ``torch.optim.Adam`` (the
  hand-written loop's step);
- ``hand_keras_adam``: the same with Keras's Adam (``optimizer.apply``) instead of fused Adam;
- ``hand_keras_loss``: the same with Keras's compiled loss (``model._compute_loss``) and fused Adam;
- ``keras_train_step``: Keras's ``train_step``: its loss, the loss tracker, the compiled accuracy
  metric, its Adam.

Prints one JSON line.
"""

import importlib
import json
import statistics
import sys
import time
from pathlib import Path

import keras
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.data import spec_of  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
dataset = importlib.import_module("plugins.datasets.digits").load()
x, y = dataset.train
xb, yb = torch.from_numpy(x[:64]), torch.from_numpy(y[:64].astype("int64"))


def built():
    keras.utils.set_random_seed(0)
    model = importlib.import_module("plugins.architectures.cnn").build(spec_of(dataset))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)  # builds the optimizer and metrics
    return model


def nll(probs, labels):
    return torch.nn.functional.nll_loss(torch.log(probs.clamp(1e-7, 1.0)), labels)


def hand_step(model, loss_of, fused):
    def step():
        if fused is None:
            model.zero_grad()
        else:
            fused.zero_grad(set_to_none=True)
        loss_of(model, model(xb, training=True)).backward()
        if fused is None:
            weights = model.trainable_weights[:]
            with torch.no_grad():
                model.optimizer.apply([v.value.grad for v in weights], weights)
        else:
            fused.step()

    return step


def keras_loss(model, probs):
    return model._compute_loss(x=xb, y=yb, y_pred=probs, training=True)


def variants():
    models = [built() for _ in range(5)]

    def forward():
        with torch.no_grad():
            models[0](xb, training=True)

    def adam(model):
        return torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    return {
        "forward": forward,
        "hand": hand_step(models[1], lambda m, p: nll(p, yb), adam(models[1])),
        "hand_keras_adam": hand_step(models[2], lambda m, p: nll(p, yb), None),
        "hand_keras_loss": hand_step(models[3], keras_loss, adam(models[3])),
        "keras_train_step": lambda: models[4].train_step((xb, yb)),
    }


steps = variants()
times = {name: [] for name in steps}
for round_ in range(ROUNDS + 1):
    for name, step in steps.items():
        started = time.perf_counter()
        for _ in range(20):
            step()
        if round_:
            times[name].append((time.perf_counter() - started) / 20)
print(
    json.dumps(
        {
            "backend": keras.backend.backend(),
            "threads": torch.get_num_threads(),
            "rounds": ROUNDS,
            "step_ms": {k: round(1000 * statistics.median(v), 2) for k, v in times.items()},
        }
    )
)
