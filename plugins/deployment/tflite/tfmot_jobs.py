"""tfmot jobs: QAT, pruning and clustering of a run's model through the tf_keras bridge.

Each job runs in a fresh TensorFlow process (``finetune.in_tfmot_process``):
importing tfmot sets ``TF_USE_LEGACY_KERAS=1`` for the whole process. ``import keras`` stays Keras 3
there, so the job loads the run's Keras 3 model, translates it (``plugins.deployment.tflite.bridge``), lets tfmot
fine-tune the tf_keras copy, and — for pruning and clustering — copies the stripped weights back
into the Keras 3 model and saves it, so that the exporter converts it like any other.
"""

import time
import warnings
from pathlib import Path

import numpy as np

RAMP = 0.7  # pruning reaches its target at this fraction of the fine-tuning steps, then holds it


def _setup(run_dir, seed, what):
    import keras

    from plugins.deployment.tflite.bridge import to_tf_keras
    from plugins.deployment.tflite.tuning import load_for_finetuning

    run, model, dataset = load_for_finetuning(run_dir, what)
    keras.utils.set_random_seed(seed)
    tf_model = to_tf_keras(model)
    import tensorflow_model_optimization as tfmot  # after the bridge: it switches tf.keras to tf_keras

    return run, model, dataset, tf_model, tfmot


def _annotated(tf_model, wrap):
    """``(model, names of the layers kept as they are)``: the graph of ``tf_model`` with each layer
    replaced by ``wrap(layer)``, a tfmot wrapper of that same (weighted) layer, or kept when None."""
    import tf_keras

    kept = []

    def clone(layer):
        wrapped = wrap(layer)
        if wrapped is None:
            kept.append(layer.name)
            return layer
        return wrapped

    return tf_keras.models.clone_model(tf_model, clone_function=clone), kept


def quantize(run_dir, out, epochs=1, learning_rate=1e-4, seed=0, io="int8", allow_select_ops=False):
    """tfmot QAT of the run's model (layers tfmot cannot quantize stay float, and are named); the
    int8 flatbuffer is written to ``out``."""
    import tf_keras

    from plugins.deployment.tflite.tuning import evaluate, fit

    started = time.perf_counter()
    run, model, dataset, tf_model, tfmot = _setup(run_dir, seed, "qat=tfmot")
    qat_model, float_layers = _quantize_for_training(tfmot, tf_model)
    fit(qat_model, run, dataset, epochs, learning_rate, verbose=0, keras_module=tf_keras, description="QAT, tfmot")
    after = evaluate(qat_model, dataset, run.record["spec"]["task"])
    Path(out).write_bytes(_int8_flatbuffer(qat_model, io, allow_select_ops))
    return {
        "method": "tfmot",
        "epochs": epochs,
        "learning_rate": learning_rate,
        "float_layers": float_layers,
        "fake_quant": after,
        "seconds": round(time.perf_counter() - started, 2),
        "layers": [layer.name for layer in qat_model.layers],
    }


def _quantize_for_training(tfmot, tf_model):
    """``(tfmot's QAT model, names of the layers left float)``: the whole model if tfmot takes it,
    else only the layers it knows."""
    import tf_keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import default_8bit_quantize_registry

    from core import KerastackError

    qk = tfmot.quantization.keras
    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    with qk.quantize_scope():
        try:
            return qk.quantize_model(tf_model), []
        except (ValueError, RuntimeError):
            # Partial QAT: annotate only the layers tfmot knows; the rest stay float.
            def wrap(layer):
                if isinstance(layer, tf_keras.layers.InputLayer) or not registry.supports(layer):
                    return None
                return qk.quantize_annotate_layer(layer)

            annotated, kept = _annotated(tf_model, wrap)
            try:
                return qk.quantize_apply(annotated), [n for n in kept if not n.startswith("input")]
            except (ValueError, RuntimeError) as exc:
                raise KerastackError(f"qat=tfmot: tfmot cannot quantize this model: {exc}") from exc


def _int8_flatbuffer(qat_model, io, allow_select_ops):
    """The LiteRT flatbuffer of a tfmot QAT model, int8 with the ranges it learned."""
    import tensorflow as tf

    from core import KerastackError, one_line
    from plugins.deployment.tflite.convert import configure

    converter = tf.lite.TFLiteConverter.from_keras_model(qat_model)
    float_inputs = tf.as_dtype(qat_model.inputs[0].dtype).is_floating
    configure(converter, "qat", io, float_inputs, allow_select_ops, calibration=None)
    try:
        with warnings.catch_warnings():  # "Statistics for quantized inputs were expected": tfmot's
            warnings.simplefilter("ignore")  # input quantizer carries them
            return converter.convert()
    except Exception as exc:
        raise KerastackError(f"qat=tfmot: conversion failed: {one_line(exc, first=True)}") from exc


def prune(run_dir, out, target=0.5, epochs=2, learning_rate=1e-3, seed=0):
    """tfmot magnitude pruning of the run's model to ``target`` sparsity; the Keras 3 model with the
    pruned weights is saved to ``out``. Fails if a pruned layer misses its target."""
    import tf_keras

    from plugins.deployment.tflite.bridge import weights_from_tf_keras
    from plugins.deployment.tflite.pruning import sparsity
    from plugins.deployment.tflite.tuning import fit, save, steps

    started = time.perf_counter()
    run, model, dataset, tf_model, tfmot = _setup(run_dir, seed, "prune_method=tfmot")
    sp = tfmot.sparsity.keras
    total = steps(run, dataset, max(epochs, 1))
    frequency, end_step = pruning_steps(total)
    schedule = sp.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=target, begin_step=0, end_step=end_step, frequency=frequency
    )
    pruned_model, kept = _annotated(tf_model, _pruning_wrapper(sp, schedule))
    callbacks = [sp.UpdatePruningStep()]
    fit(
        pruned_model,
        run,
        dataset,
        max(epochs, 1),
        learning_rate,
        verbose=0,
        keras_module=tf_keras,
        callbacks=callbacks,
        description="pruning, tfmot",
    )
    weights_from_tf_keras(sp.strip_pruning(pruned_model), model)
    achieved = sparsity(model)
    _check_sparsity(achieved, target, f"after {total} steps (frequency {frequency}, end step {end_step})")
    save(model, out)
    pruned_names = [layer.name for layer in pruned_model.layers if layer.name.startswith("prune_low_magnitude_")]
    return {
        "method": "tfmot",
        "target": target,
        "epochs": epochs,
        "steps": total,
        "frequency": frequency,
        "end_step": end_step,
        "learning_rate": learning_rate,
        "sparsity": achieved,
        "pruned_layers": [n.removeprefix("prune_low_magnitude_") for n in pruned_names],
        "seconds": round(time.perf_counter() - started, 2),
    }


def pruning_steps(total):
    """``(frequency, end_step)`` of tfmot's schedule over ``total`` steps: the target is reached at
    ``RAMP`` of them.

    tfmot updates masks only on steps that are multiples of ``frequency`` up to ``end_step``: a
    frequency above the step count (the default is 100) never prunes at all.
    """
    frequency = max(1, int(RAMP * total) // 10)
    return frequency, max(frequency, (int(RAMP * total) // frequency) * frequency)


def _pruning_wrapper(sp, schedule):
    """``wrap(layer)`` for :func:`_annotated`: tfmot's pruning wrapper on the layers with weights to
    prune (not depthwise kernels)."""
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry as registry

    def wrap(layer):
        if not registry.supports(layer) or "Depthwise" in type(layer).__name__:
            return None
        if not registry._is_rnn_layer(layer) and not registry._weight_names(layer):
            return None  # nothing to prune (BatchNormalization, pooling, …)
        return sp.prune_low_magnitude(layer, pruning_schedule=schedule)

    return wrap


def _check_sparsity(achieved, target, when):
    from core import KerastackError

    short = {k: v for k, v in achieved.items() if v < target - 0.02}
    if short:
        raise KerastackError(
            f"prune_method=tfmot: sparsity below the target {target} in "
            f"{', '.join(f'{k} ({v:.2f})' for k, v in short.items())} {when}"
        )


def cluster(run_dir, out, clusters=16, epochs=1, learning_rate=1e-4, seed=0):
    """tfmot weight clustering of the run's model to ``clusters`` values per kernel; the Keras 3
    model with the clustered weights is saved to ``out``."""
    import keras
    import tf_keras

    from plugins.deployment.tflite.bridge import weights_from_tf_keras
    from plugins.deployment.tflite.pruning import prunable
    from plugins.deployment.tflite.tuning import fit, save

    started = time.perf_counter()
    run, model, dataset, tf_model, tfmot = _setup(run_dir, seed, "clusters")
    cl = tfmot.clustering.keras
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    def wrap(layer):
        if not ClusteringRegistry.supports(layer) or not layer.weights or "Depthwise" in type(layer).__name__:
            return None
        # The centroids start from this layer's trained weights.
        return cl.cluster_weights(
            layer, number_of_clusters=clusters, cluster_centroids_init=cl.CentroidInitialization.KMEANS_PLUS_PLUS
        )

    clustered_model, kept = _annotated(tf_model, wrap)
    if epochs:
        fit(
            clustered_model,
            run,
            dataset,
            epochs,
            learning_rate,
            verbose=0,
            keras_module=tf_keras,
            description="clustering, tfmot",
        )
    stripped = cl.strip_clustering(clustered_model)
    weights_from_tf_keras(stripped, model)
    unique = {
        name: int(np.unique(np.asarray(keras.ops.convert_to_numpy(k))).size) for name, k in prunable(model).items()
    }
    save(model, out)
    return {
        "method": "tfmot",
        "clusters": clusters,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "unique_weights": unique,
        "seconds": round(time.perf_counter() - started, 2),
    }
