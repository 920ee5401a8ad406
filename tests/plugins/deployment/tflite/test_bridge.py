"""The Keras 3 → tf_keras bridge: every built-in architecture translates to the same function, with
its weights, and what cannot be translated is refused by name."""

import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process builds and translates them all (the bridge reads configs and numpy weights
# only, so it works under any backend; building Keras models is ~20x faster under TensorFlow than
# under JAX, which traces every layer).
TRANSLATE = """
import json, sys
import numpy as np
import keras
from core import KerastackError
from plugins.deployment.tflite.bridge import to_tf_keras, weights_from_tf_keras
from core.data import DataSpec
from core.plugins import get_plugin_host

rng = np.random.default_rng(0)
image, series = DataSpec((8, 8, 1), 10), DataSpec((12, 3), 4)
tokens = DataSpec((12,), 4, input_dtype="int32", vocab_size=20)
CASES = {
    "cnn": ("cnn", image, {}), "mlp": ("mlp", image, {"batch_norm": True}), "resnet": ("resnet", image, {}),
    "mobilenet": ("mobilenet", image, {}), "lstm": ("lstm", series, {"bidirectional": True, "layers": 2}),
    "gru": ("gru", tokens, {}), "transformer": ("transformer", tokens, {}),
    "autoencoder": ("autoencoder", DataSpec((8, 8, 1), None, "reconstruction"), {}),
}
archs = get_plugin_host([]).registry("architecture")


def inputs(spec, n=16):
    if spec.input_dtype.startswith("int"):
        return rng.integers(0, spec.vocab_size, (n, *spec.input_shape)).astype("int32")
    return rng.random((n, *spec.input_shape)).astype("float32")


def compare(model, x):
    for layer in model._flatten_layers():  # trained-looking statistics, so BatchNorm matters
        if type(layer).__name__ == "BatchNormalization":
            layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape).astype("float32") * 0.2)
            layer.moving_variance.assign(rng.random(layer.moving_variance.shape).astype("float32") + 0.5)
    try:
        translated = to_tf_keras(model)
    except KerastackError as exc:
        return {"error": str(exc)}
    # Direct calls, not predict(): nothing to compile, a few times faster on these tiny models.
    ours, theirs = keras.ops.convert_to_numpy(model(x, training=False)), translated(x, training=False).numpy()
    return {"diff": float(np.abs(ours - theirs).max()), "layers": len(translated.layers)}


results = {"backend": keras.backend.backend()}
for key, (arch, spec, hparams) in CASES.items():
    if arch not in archs.names():
        results[key] = {"skipped": f"no architecture {arch!r}"}
        continue
    results[key] = compare(archs.get(arch).call(spec, **hparams), inputs(spec))

# Multi-input, shared layer, MultiHeadAttention, activations tf_keras spells differently or only as layers.
a, b = keras.Input((12, 3), name="a"), keras.Input((4,), name="b")
h = keras.layers.Dense(16, activation="silu")(a)
h = keras.layers.MultiHeadAttention(2, 8)(h, h)
h = keras.layers.GlobalAveragePooling1D()(keras.layers.LayerNormalization()(h))
shared = keras.layers.Dense(8, activation="relu6", name="shared")
g = keras.layers.Dense(16, activation="leaky_relu")(b)
out = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([shared(h), shared(g)]))
results["graph"] = compare(keras.Model([a, b], out), [inputs(DataSpec((12, 3))), inputs(DataSpec((4,)))])


@keras.saving.register_keras_serializable(package="bridgetest")
class Scale(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


x = keras.Input((4,))
results["custom"] = compare(keras.Model(x, Scale(name="twice")(keras.layers.Dense(3)(x))), inputs(DataSpec((4,))))
results["no_twin"] = compare(keras.Model(x, keras.layers.RMSNormalization(name="rms")(x)), inputs(DataSpec((4,))))
results["hard_silu"] = compare(keras.Model(x, keras.layers.Dense(3, activation="hard_silu", name="hs")(x)),
                               inputs(DataSpec((4,))))


# A custom layer that names its tf_keras twin translates.
@keras.saving.register_keras_serializable(package="bridgetest")
class Shift(keras.layers.Layer):
    def build(self, shape):
        self.shift = self.add_weight(shape=(shape[-1],), initializer="ones", name="shift")

    def call(self, x):
        return x + self.shift

    def tf_keras_layer(self, tf_keras):
        layer = self

        class TwinShift(tf_keras.layers.Layer):
            def build(self, shape):
                self.shift = self.add_weight(shape=(shape[-1],), initializer="zeros", name="shift")

            def call(self, x):
                return x + self.shift

        return TwinShift(name=layer.name)


shift = Shift(name="shift")
model = keras.Model(x, shift(x))
shift.shift.assign(np.arange(4, dtype="float32"))
results["twin"] = compare(model, inputs(DataSpec((4,))))

# Dropout must still drop in training mode after translation (Keras 3 records training=False).
x = keras.Input((64,))
model = keras.Model(x, keras.layers.Dropout(0.5)(keras.layers.Dense(64)(x)))
tf_model = to_tf_keras(model)
ones = np.ones((4, 64), "float32")
inference, training = tf_model(ones, training=False).numpy(), tf_model(ones, training=True).numpy()
results["dropout"] = {"zeros_training": float(np.mean(training == 0)), "zeros_inference": float(np.mean(inference == 0))}

# Weights come back: change the tf_keras copy, copy into the Keras 3 model, outputs agree.
dense = tf_model.layers[1]
dense.set_weights([w * 0 + 0.5 for w in dense.get_weights()])
weights_from_tf_keras(tf_model, model)
ours = keras.ops.convert_to_numpy(model(ones, training=False))
results["back"] = {"diff": float(np.abs(ours - tf_model(ones, training=False).numpy()).max())}
json.dump(results, open(sys.argv[1], "w"))
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bridge") / "results.json"
    run_python(TRANSLATE, out, env={"KERAS_BACKEND": "tensorflow"})
    return read_json(out)


@pytest.mark.parametrize("arch", ["cnn", "mlp", "resnet", "mobilenet", "lstm", "gru", "autoencoder", "graph"])
def test_architectures_translate_exactly(results, arch):
    result = results[arch]
    if "skipped" in result:
        pytest.skip(result["skipped"])
    assert "error" not in result, result["error"]
    assert result["diff"] <= 1e-5, result


def test_transformer_translates_or_names_its_custom_layer(results):
    """The transformer's PositionEmbedding is kerastack's own layer: it translates once the layer
    names its tf_keras twin (``tf_keras_layer``); until then the bridge says which layer stops it."""
    result = results["transformer"]
    if "skipped" in result:
        pytest.skip(result["skipped"])
    if "error" in result:
        assert "'position_embedding' (PositionEmbedding" in result["error"], result
        assert "custom layer" in result["error"]
    else:
        assert result["diff"] <= 1e-5, result


def test_unsupported_layers_are_named(results):
    assert "layer 'twice' (Scale, from __main__) is a custom layer" in results["custom"]["error"]
    assert "layer 'rms' (RMSNormalization) has no tf_keras equivalent" in results["no_twin"]["error"]
    assert "layer 'hs' (Dense): activation 'hard_silu'" in results["hard_silu"]["error"]


def test_custom_layer_with_a_twin_translates(results):
    assert results["twin"]["diff"] <= 1e-6, results["twin"]


def test_dropout_still_drops_in_training_mode(results):
    """The silent bug: copying Keras 3's recorded training=False pins Dropout in inference mode."""
    dropout = results["dropout"]
    assert dropout["zeros_inference"] == 0.0
    assert 0.3 < dropout["zeros_training"] < 0.7, dropout


def test_weights_copy_back(results):
    assert results["back"]["diff"] <= 1e-6, results["back"]
