"""Keras 3 functional graphs: walking them, and rebuilding them with tf_keras layers for tfmot.

tfmot 0.8.1 (quantization-aware training, pruning, clustering) accepts only tf_keras models, and a
Keras 3 model cannot be loaded or deserialized by tf_keras (``batch_shape``, ``DTypePolicy``
objects, …). ``to_tf_keras`` rebuilds the same graph, call by call, from translated layer configs
and copies the weights; ``weights_from_tf_keras`` copies them back after tfmot has changed them.

A custom layer takes part by defining ``tf_keras_layer(self, tf_keras)``, which returns an
equivalent tf_keras layer (same name, weights in the same order); others are refused by name.

It reads Keras internals (``_nodes_by_depth``, node arguments): Keras is pinned, and the bridge is
tested on every built-in architecture so that an upgrade that breaks it fails loudly. It needs only
configs and numpy weights, so it runs in a process of any backend. It imports tf_keras, never tfmot
(importing tfmot switches the whole process to legacy Keras: do tfmot work in its own process).
"""

import inspect

from core import KerastackError

# Keys of Keras 3 configs that tf_keras lacks, with the only value that means the same there.
_DROPPED = {
    "quantization_config": None,  # Dense, Embedding
    "rms_scaling": False,  # LayerNormalization
    "use_gate": False,  # MultiHeadAttention
    "sliding_window": None,
    "optional": False,  # InputLayer
}
_DROPPED_ANY = {"seed"}  # dropout seeds (MultiHeadAttention): tf_keras draws its own
_RENAMED = {"LeakyReLU": {"negative_slope": "alpha"}}
# Activation names tf_keras spells differently, or computes differently (refused).
_ACTIVATION_NAMES = {"silu": "swish"}
_REFUSED_ACTIVATIONS = {"hard_silu", "hard_swish", "hard_sigmoid"}
# Activations that tf_keras has as layers only: split out of the layer into one after it.
_ACTIVATION_LAYERS = {"relu6": ("ReLU", {"max_value": 6.0}), "leaky_relu": ("LeakyReLU", {"alpha": 0.2})}


# -- walking a functional graph ---------------------------------------------------------------------


def functional(model, what="this"):
    """The functional graph of ``model`` (a Sequential's inner one); an error for subclassed models."""
    graph = getattr(model, "_functional", None) or model
    if not hasattr(graph, "_nodes_by_depth") or not getattr(graph, "inputs", None):
        raise KerastackError(
            f"{what} needs a functional or Sequential Keras model; {model.name!r} is a "
            f"{type(model).__name__} (a subclassed model has no graph to rewrite)"
        )
    return graph


def nodes(model):
    """The calls of a functional model, each after the calls that compute its inputs."""
    graph = functional(model)
    out = []
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        out += [n for n in graph._nodes_by_depth[depth] if n.operation is not None and not n.is_input]
    return out


def consumers(model):
    """``id(tensor) → [node, ...]``: the calls that take each tensor of the graph."""
    out = {}
    for node in nodes(model):
        for tensor in node.input_tensors:
            out.setdefault(id(tensor), []).append(node)
    return out


def is_model(layer):
    """A (nested) Keras or tf_keras model, as opposed to a layer."""
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def run_graph(model, inputs, call):
    """Evaluate the graph of ``model`` on ``inputs`` with ``call(node, args, kwargs) → outputs``
    doing each call (symbolic tensors of another graph, or values); returns the model's outputs."""
    from keras import tree

    graph = functional(model)
    values = {id(t): v for t, v in zip(graph.inputs, inputs)}
    for node in nodes(graph):
        args, kwargs = node.arguments.fill_in(values)
        outputs = call(node, args, kwargs)
        for tensor, value in zip(node.outputs, tree.flatten(outputs)):
            values[id(tensor)] = value
    outputs = [values[id(t)] for t in graph.outputs]
    return outputs if isinstance(graph._outputs_struct, (list, tuple)) else outputs[0]


def layer_paths(model, prefix=""):
    """``{"outer/inner": layer}`` for every layer with weights, nested models opened."""
    out = {}
    for layer in model.layers:
        path = prefix + layer.name
        if is_model(layer):
            out.update(layer_paths(layer, path + "/"))
        elif layer.weights:
            out[path] = layer
    return out


# -- Keras 3 → tf_keras --------------------------------------------------------------------------


def to_tf_keras(model):
    """A tf_keras model computing what the Keras 3 functional ``model`` computes, with its weights.

    Raises ``KerastackError`` naming the first layer that has no tf_keras equivalent.
    """
    import tf_keras

    translated = _Translator(tf_keras).model(model)
    pairs = _pairs(model, translated)
    for path, (source, target) in pairs.items():
        values = source.get_weights()
        shapes = [tuple(w.shape) for w in target.weights]
        if [tuple(v.shape) for v in values] != shapes:
            raise KerastackError(
                f"bridge: layer {path!r} ({type(source).__name__}): weight shapes "
                f"{[tuple(v.shape) for v in values]} differ from tf_keras's {shapes}"
            )
        target.set_weights(values)
    return translated


def weights_from_tf_keras(tf_model, model):
    """Copy the weights of a (stripped) tf_keras model made by ``to_tf_keras`` back into ``model``."""
    for _path, (target, source) in _pairs(model, tf_model).items():
        target.set_weights(source.get_weights())
    return model


def _pairs(model, tf_model):
    theirs = layer_paths(tf_model)
    pairs = {}
    for path, layer in layer_paths(model).items():
        if path not in theirs:
            raise KerastackError(
                f"bridge: layer {path!r} ({type(layer).__name__}) has no counterpart in the tf_keras model"
            )
        pairs[path] = (layer, theirs[path])
    return pairs


class _Translator:
    def __init__(self, tfk):
        self.tfk = tfk
        self.layers = {}  # id(keras layer) → (tf_keras layer, activation layer or None)

    def model(self, model):
        graph = functional(model, "the tf_keras bridge")
        inputs = [self.input(t) for t in graph.inputs]
        outputs = run_graph(graph, inputs, self.call)
        return self.tfk.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=model.name)

    def input(self, tensor):
        layer = tensor._keras_history.operation
        return self.tfk.Input(batch_shape=tuple(tensor.shape), dtype=tensor.dtype, name=layer.name)

    def call(self, node, args, kwargs):
        layer = node.operation
        if id(layer) not in self.layers:
            self.layers[id(layer)] = self.model(layer) if is_model(layer) else self.layer(layer)
        translated = self.layers[id(layer)]
        # Keras 3 records training=False in the graph for Dropout and recurrent layers; passed on,
        # it would pin them in inference mode during tfmot's fine-tuning, silently.
        kwargs = {k: v for k, v in kwargs.items() if not (k == "training" and v is not True)}
        kwargs = {k: v for k, v in kwargs.items() if not (k == "mask" and v is None)}
        if isinstance(translated, tuple):
            main, activation = translated
            out = main(*args, **kwargs)
            return activation(out) if activation is not None else out
        return translated(*args, **kwargs)

    def layer(self, layer):
        name, cls_name = layer.name, type(layer).__name__
        hook = getattr(layer, "tf_keras_layer", None)
        if callable(hook):  # a custom layer that knows its tf_keras twin (same weights, same order)
            return hook(self.tfk), None
        if not type(layer).__module__.startswith("keras."):
            raise KerastackError(
                f"bridge: layer {name!r} ({cls_name}, from {type(layer).__module__}) is "
                "a custom layer; the bridge rebuilds built-in Keras layers only (or custom "
                "layers with a tf_keras_layer(tf_keras) method returning their twin)"
            )
        config, activation = self.config(layer.get_config(), cls_name, name)
        cls = self.tf_class(cls_name, name, config)
        try:
            # Wrappers deserialize their inner layer; MultiHeadAttention's from_config wants shapes.
            main = cls.from_config(config) if "layer" in config else cls(**config)
        except Exception as exc:
            raise KerastackError(
                f"bridge: layer {name!r} ({cls_name}) cannot be rebuilt in tf_keras: {type(exc).__name__}: {exc}"
            ) from exc
        return main, activation

    def tf_class(self, cls_name, name, config):
        module = self.tfk.layers
        cls = getattr(module, cls_name, None)
        if cls is None or not isinstance(cls, type):
            raise KerastackError(f"bridge: layer {name!r} ({cls_name}) has no tf_keras equivalent")
        accepted = set()
        for klass in cls.__mro__:
            if "__init__" in vars(klass):
                accepted |= set(inspect.signature(klass.__init__).parameters)
        accepted |= {"name", "trainable", "dtype", "zero_output_for_mask"}
        unknown = sorted(set(config) - accepted)
        if unknown:
            raise KerastackError(
                f"bridge: layer {name!r} ({cls_name}): option(s) "
                f"{', '.join(f'{k}={config[k]!r}' for k in unknown)} have no tf_keras equivalent"
            )
        return cls

    def config(self, config, cls_name, name):
        """The config translated for tf_keras, and a separate activation layer when one is needed."""
        out, activation = {}, None
        for key, value in config.items():
            renamed = _RENAMED.get(cls_name, {}).get(key, key)
            if key in _DROPPED:
                if value != _DROPPED[key]:
                    raise KerastackError(
                        f"bridge: layer {name!r} ({cls_name}): {key}={value!r} has no tf_keras equivalent"
                    )
                continue
            if key in _DROPPED_ANY or key.endswith("_initializer"):
                continue  # weights are copied over: initial values never matter
            if key == "dtype":
                value = self.dtype(value, name, cls_name)
            elif key in ("activation", "recurrent_activation"):
                value = self.activation(value, name, cls_name)
                if key == "activation" and value in _ACTIVATION_LAYERS:
                    layer_cls, kwargs = _ACTIVATION_LAYERS[value]
                    activation = getattr(self.tfk.layers, layer_cls)(name=f"{name}_{value}", **kwargs)
                    value = "linear"
            elif key in ("layer", "backward_layer") and isinstance(value, dict):
                value = self.nested_layer(value, name)
            elif isinstance(value, dict) and "class_name" in value:
                value = self.nested(value, name, cls_name)
            out[renamed] = value
        return out, activation

    def dtype(self, value, name, cls_name):
        if isinstance(value, dict):
            if "Quantized" in value.get("class_name", ""):
                raise KerastackError(
                    f"bridge: layer {name!r} ({cls_name}) is quantized "
                    f"({value['config'].get('name')}); tfmot needs a float model"
                )
            return value.get("config", {}).get("name", "float32")
        return value

    def activation(self, value, name, cls_name):
        if isinstance(value, dict):
            raise KerastackError(
                f"bridge: layer {name!r} ({cls_name}) uses a custom activation "
                f"{value.get('class_name') or value}; tf_keras cannot rebuild it"
            )
        if value in _REFUSED_ACTIVATIONS:
            raise KerastackError(
                f"bridge: layer {name!r} ({cls_name}): activation {value!r} is computed differently in tf_keras"
            )
        return _ACTIVATION_NAMES.get(value, value)

    def nested(self, value, name, cls_name):
        if value.get("registered_name") and not str(value.get("module", "")).startswith("keras"):
            raise KerastackError(
                f"bridge: layer {name!r} ({cls_name}) uses the custom object {value['registered_name']!r}"
            )
        config = dict((value.get("config") or {}).items())
        return {"class_name": value["class_name"], "config": config}

    def nested_layer(self, value, name):
        """A wrapped layer (Bidirectional, TimeDistributed): its config translated the same way."""
        cls_name = value["class_name"]
        inner, activation = self.config(value["config"], cls_name, f"{name}/{value['config'].get('name')}")
        if activation is not None:
            raise KerastackError(
                f"bridge: layer {name!r} wraps a layer with activation "
                f"{activation.name.rsplit('_', 1)[-1]!r}; tf_keras has it only as a layer"
            )
        self.tf_class(cls_name, name, inner)
        return {"class_name": cls_name, "config": inner}
