"""Magnitude pruning written with Keras 3 only, so it fine-tunes under TensorFlow, JAX or torch.

:func:`make_callback` makes a Keras callback: over the fine-tuning steps the target sparsity of each
prunable kernel rises along tfmot's polynomial schedule (cubic, from 0 to ``target`` at
``ramp`` of the steps), the smallest-magnitude weights are zeroed, and after every training batch
the masks are applied again (the optimizer moves pruned weights off zero). At the end of training
each kernel is pruned to exactly ``target`` (a final hard prune), so the saved model has the
zeros, and a LiteRT file of it compresses (gzip) accordingly. Kernels of Dense, Conv and
EinsumDense layers are pruned; biases, normalization and DepthwiseConv kernels (few weights that
matter a lot, as tfmot also decides) are not.
"""

import numpy as np

from core import UsageError

PRUNABLE = {
    "Dense",
    "EinsumDense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
}


def prunable(model):
    """``{layer path: kernel variable}`` of the layers whose kernels are pruned (nested layers too)."""
    out = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if type(layer).__name__ not in PRUNABLE or not layer.built:
            continue
        if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
            continue  # the kernel is not a plain variable
        kernel = getattr(layer, "_kernel", None)
        kernel = kernel if kernel is not None else getattr(layer, "kernel", None)
        if kernel is not None and hasattr(kernel, "assign"):
            out[kernel.path.rsplit("/", 1)[0] if hasattr(kernel, "path") else layer.name] = kernel
    return out


def sparsity(model):
    """``{layer path: fraction of zeros}`` of the prunable kernels."""
    return {name: float(np.mean(_value(k) == 0)) for name, k in prunable(model).items()}


def schedule(step, total_steps, target, ramp=0.7):
    """tfmot's PolynomialDecay (power 3) from 0 at step 0 to ``target`` at ``ramp`` × the steps."""
    end = max(1, int(round(ramp * total_steps)))
    progress = min(max(step / end, 0.0), 1.0)
    return float(target * (1.0 - (1.0 - progress) ** 3))


def mask_for(values, fraction):
    """1 where ``values`` survive pruning ``fraction`` of them by magnitude, else 0 (exact count)."""
    flat = np.abs(values).reshape(-1)
    k = int(round(fraction * flat.size))
    mask = np.ones(flat.size, dtype=values.dtype)
    if k > 0:
        mask[np.argsort(flat, kind="stable")[:k]] = 0
    return mask.reshape(values.shape)


def _value(variable):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable))


def make_callback(target, total_steps, frequency=1, ramp=0.7):
    """A ``keras.callbacks.Callback`` pruning the model it trains to ``target`` sparsity.

    ``frequency``: recompute the masks every this many steps (masks are re-applied every step).
    """
    import keras

    class MagnitudePruningCallback(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step = 0
            self.masks = {}
            self.history = []

        def on_train_begin(self, logs=None):
            self.kernels = prunable(self.model)
            if not self.kernels:
                raise UsageError(
                    f"pruning: model {self.model.name!r} has no prunable kernels (layers {', '.join(sorted(PRUNABLE))})"
                )
            self._update(0.0)

        def on_train_batch_end(self, batch, logs=None):
            sync = getattr(self.model, "jax_state_sync", None)
            if sync is not None:  # JAX keeps the weights outside the variables during fit
                sync()
            self.step += 1
            if self.step % frequency == 0 or self.step >= total_steps:
                self._update(schedule(self.step, total_steps, target, ramp))
            else:
                self._apply()

        def on_train_end(self, logs=None):
            sync = getattr(self.model, "jax_state_sync", None)
            if sync is not None:
                sync()
            self._update(target)  # the final hard prune

        def _update(self, fraction):
            for name, kernel in self.kernels.items():
                self.masks[name] = mask_for(_value(kernel), fraction)
            self.history.append((self.step, fraction))
            self._apply()

        def _apply(self):
            for name, kernel in self.kernels.items():
                kernel.assign(_value(kernel) * self.masks[name])

    return MagnitudePruningCallback()


def train_pruned(run_dir, out, target=0.5, epochs=2, learning_rate=1e-3, batch_size=0, seed=0, verbose=0):
    """Fine-tune run ``run_dir``'s model for ``epochs`` while pruning it to ``target`` sparsity
    under this process's backend; save it to ``out`` (.keras); return a summary."""
    import time

    import keras

    from plugins.deployment.tflite.tuning import fit, load_for_finetuning, save, steps

    if not 0 <= target < 1:
        raise UsageError(f"pruning: the target sparsity must lie in [0, 1), got {target}")
    started = time.perf_counter()
    run, model, dataset = load_for_finetuning(run_dir, "prune")
    keras.utils.set_random_seed(seed)
    total_steps = steps(run, dataset, epochs, batch_size)
    callback = make_callback(target, total_steps)
    if epochs:
        fit(
            model,
            run,
            dataset,
            epochs,
            learning_rate,
            batch_size,
            callbacks=[callback],
            verbose=verbose,
            seed=seed,
            description="pruning",
        )
    else:  # one-shot magnitude pruning, no fine-tuning
        callback.set_model(model)
        callback.on_train_begin()
        callback.on_train_end()
    save(model, out)
    return {
        "method": "native",
        "backend": keras.backend.backend(),
        "target": target,
        "epochs": epochs,
        "steps": total_steps,
        "learning_rate": learning_rate,
        "sparsity": sparsity(model),
        "seconds": round(time.perf_counter() - started, 2),
    }
