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
    from plugins.deployment.tflite.qat import load_for_finetuning

    run, model, dataset = load_for_finetuning(run_dir, what)
    keras.utils.set_random_seed(seed)
    tf_model = to_tf_keras(model)
    import tensorflow_model_optimization as tfmot  # after the bridge: it switches tf.keras to tf_keras

    return run, model, dataset, tf_model, tfmot


def _steps(run, dataset, epochs, batch_size=0):
    from core import as_arrays, is_pair

    batch_size = batch_size or run.record.get("training", {}).get("batch_size") or 32
    # plugins.deployment.tflite.qat.fit trains on whole batches only
    per_epoch = max(1, len(as_arrays(dataset.train)[0]) // batch_size) if is_pair(dataset.train) else len(dataset.train)
    return max(1, epochs * per_epoch)


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
    import tensorflow as tf
    import tf_keras

    from core import KerastackError, one_line
    from plugins.deployment.tflite.qat import evaluate, fit

    started = time.perf_counter()
    run, model, dataset, tf_model, tfmot = _setup(run_dir, seed, "qat=tfmot")
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import default_8bit_quantize_registry

    qk = tfmot.quantization.keras
    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    float_layers = []
    with qk.quantize_scope():
        try:
            qat_model = qk.quantize_model(tf_model)
        except (ValueError, RuntimeError):
            # Partial QAT: annotate only the layers tfmot knows; the rest stay float.
            def wrap(layer):
                if isinstance(layer, tf_keras.layers.InputLayer) or not registry.supports(layer):
                    return None
                return qk.quantize_annotate_layer(layer)

            annotated, kept = _annotated(tf_model, wrap)
            float_layers = [n for n in kept if not n.startswith("input")]
            try:
                qat_model = qk.quantize_apply(annotated)
            except (ValueError, RuntimeError) as exc:
                raise KerastackError(f"qat=tfmot: tfmot cannot quantize this model: {exc}") from exc
    fit(qat_model, run, dataset, epochs, learning_rate, verbose=0, keras_module=tf_keras)
    after = evaluate(qat_model, dataset, run.record["spec"]["task"])

    converter = tf.lite.TFLiteConverter.from_keras_model(qat_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if io == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    if allow_select_ops:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    try:
        with warnings.catch_warnings():  # "Statistics for quantized inputs were expected": tfmot's
            warnings.simplefilter("ignore")  # input quantizer carries them
            flatbuffer = converter.convert()
    except Exception as exc:
        raise KerastackError(f"qat=tfmot: conversion failed: {one_line(exc, first=True)}") from exc
    Path(out).write_bytes(flatbuffer)
    return {
        "method": "tfmot",
        "epochs": epochs,
        "learning_rate": learning_rate,
        "float_layers": float_layers,
        "fake_quant": after,
        "seconds": round(time.perf_counter() - started, 2),
        "layers": [layer.name for layer in qat_model.layers],
    }


def prune(run_dir, out, target=0.5, epochs=2, learning_rate=1e-3, seed=0):
    """tfmot magnitude pruning of the run's model to ``target`` sparsity; the Keras 3 model with the
    pruned weights is saved to ``out``. Fails if a pruned layer misses its target."""
    import tf_keras

    from core import KerastackError, atomic_path
    from plugins.deployment.tflite.bridge import weights_from_tf_keras
    from plugins.deployment.tflite.pruning import sparsity
    from plugins.deployment.tflite.qat import fit

    started = time.perf_counter()
    run, model, dataset, tf_model, tfmot = _setup(run_dir, seed, "prune_method=tfmot")
    sp = tfmot.sparsity.keras
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry as registry

    steps = _steps(run, dataset, max(epochs, 1))
    # tfmot updates masks only on steps that are multiples of `frequency` up to end_step: a
    # frequency above the step count (the default is 100) never prunes at all.
    frequency = max(1, int(RAMP * steps) // 10)
    end_step = max(frequency, (int(RAMP * steps) // frequency) * frequency)
    schedule = sp.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=target, begin_step=0, end_step=end_step, frequency=frequency
    )

    def wrap(layer):
        if not registry.supports(layer) or "Depthwise" in type(layer).__name__:
            return None
        if not registry._is_rnn_layer(layer) and not registry._weight_names(layer):
            return None  # nothing to prune (BatchNormalization, pooling, …)
        return sp.prune_low_magnitude(layer, pruning_schedule=schedule)

    pruned_model, kept = _annotated(tf_model, wrap)
    fit(
        pruned_model,
        run,
        dataset,
        max(epochs, 1),
        learning_rate,
        verbose=0,
        keras_module=tf_keras,
        callbacks=[sp.UpdatePruningStep()],
    )
    stripped = sp.strip_pruning(pruned_model)
    weights_from_tf_keras(stripped, model)
    achieved = sparsity(model)
    pruned_names = [layer.name for layer in pruned_model.layers if layer.name.startswith("prune_low_magnitude_")]
    short = {k: v for k, v in achieved.items() if v < target - 0.02}
    if short:
        raise KerastackError(
            f"prune_method=tfmot: sparsity below the target {target} in "
            f"{', '.join(f'{k} ({v:.2f})' for k, v in short.items())} after {steps} steps "
            f"(frequency {frequency}, end step {end_step})"
        )
    with atomic_path(Path(out)) as tmp:
        model.save(tmp)
    return {
        "method": "tfmot",
        "target": target,
        "epochs": epochs,
        "steps": steps,
        "frequency": frequency,
        "end_step": end_step,
        "learning_rate": learning_rate,
        "sparsity": achieved,
        "pruned_layers": [n.removeprefix("prune_low_magnitude_") for n in pruned_names],
        "seconds": round(time.perf_counter() - started, 2),
    }


def cluster(run_dir, out, clusters=16, epochs=1, learning_rate=1e-4, seed=0):
    """tfmot weight clustering of the run's model to ``clusters`` values per kernel; the Keras 3
    model with the clustered weights is saved to ``out``."""
    import keras
    import tf_keras

    from core import atomic_path
    from plugins.deployment.tflite.bridge import weights_from_tf_keras
    from plugins.deployment.tflite.pruning import prunable
    from plugins.deployment.tflite.qat import fit

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
        fit(clustered_model, run, dataset, epochs, learning_rate, verbose=0, keras_module=tf_keras)
    stripped = cl.strip_clustering(clustered_model)
    weights_from_tf_keras(stripped, model)
    unique = {
        name: int(np.unique(np.asarray(keras.ops.convert_to_numpy(k))).size) for name, k in prunable(model).items()
    }
    with atomic_path(Path(out)) as tmp:
        model.save(tmp)
    return {
        "method": "tfmot",
        "clusters": clusters,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "unique_weights": unique,
        "seconds": round(time.perf_counter() - started, 2),
    }
