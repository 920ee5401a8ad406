"""``float32_model``: a mixed-precision model rebuilt to compute in float32 for deployment.

A run trained with ``--precision mixed_bfloat16`` or ``mixed_float16`` keeps its weights in float32
variables but computes in bf16/f16: its SavedModel holds bf16 ops that LiteRT's builtins cannot run,
and its ONNX graph feeds ``tensor(bfloat16)`` to ops that take none. Every exporter, the fine-tuning
jobs and ``verify`` therefore see the model rebuilt from its config with float32 dtype policies
and the same weights.
"""

import os
from typing import Any

from core.backend import dtype_policy
from core.errors import KerastackError, one_line

FLOAT32 = "float32"


def is_mixed(model: Any) -> bool:
    """Whether any layer of ``model`` (nested ones included) computes in another dtype than it keeps
    its variables in (a ``mixed_*`` dtype policy)."""
    return bool(_mixed_layers(model))


def float32_model(model: Any) -> Any:
    """``model`` itself if every layer computes in float32 already; else a copy rebuilt from its
    config with every layer's dtype policy float32 (nested models and custom layers included), and
    ``model``'s weights (float32 variables under a mixed policy) copied in."""
    if not is_mixed(model):
        return model
    import keras

    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)  # the copy is for inference: no optimizer to restore
    # Layers a custom layer makes in __init__ without passing its dtype take the global policy.
    with float32_policy():
        try:
            unsafe = bool(os.environ.get("KERASTACK_UNSAFE"))
            copy = keras.saving.deserialize_keras_object(_float32_config(config), safe_mode=not unsafe)
        except Exception as exc:
            raise KerastackError(
                f"cannot rebuild the mixed-precision model {model.name!r} in float32 for deployment: {one_line(exc)}"
            ) from exc
    weights = model.get_weights()
    shapes = [tuple(w.shape) for w in copy.weights]
    if shapes != [tuple(w.shape) for w in weights] or not copy.built:
        raise KerastackError(
            f"cannot rebuild the mixed-precision model {model.name!r} in float32 for deployment: its copy "
            f"from config has {len(shapes)} weights, the model {len(weights)} (does a custom layer's "
            "get_config() miss an argument?)"
        )
    copy.set_weights(weights)
    still = _mixed_layers(copy)
    if still:
        raise KerastackError(
            f"cannot deploy the mixed-precision model {model.name!r} in float32: layer(s) "
            f"{', '.join(repr(layer.name) for layer in still[:5])} keep a mixed dtype policy (a custom "
            "layer that sets its own dtype?); pass dtype=self.dtype_policy to the layers it makes"
        )
    return copy


def trained_model(run: Any) -> Any:
    """``run.model`` (a ``core.runs.Run``'s), loaded under the dtype policy it was trained and compiled
    under: a mixed_float16 model's optimizer is then the LossScaleOptimizer it saved, whose variables
    load, instead of a plain one that warns "Skipping variable loading for optimizer"."""
    with dtype_policy(run.record.get("training", {}).get("precision") or FLOAT32):
        return run.model


def float32_policy() -> Any:
    """A context in which Keras's global dtype policy is float32 (training leaves the run's
    precision set in its process); the previous one after it."""
    return dtype_policy(FLOAT32)


def _mixed_layers(model: Any) -> list[Any]:
    layers = model._flatten_layers(include_self=True, recursive=True)
    return [layer for layer in layers if _is_mixed_policy(getattr(layer, "dtype_policy", None))]


def _is_mixed_policy(policy: Any) -> bool:
    if policy is None:
        return False
    return str(getattr(policy, "compute_dtype", FLOAT32)) != str(getattr(policy, "variable_dtype", FLOAT32))


def _float32_config(obj: Any) -> Any:
    """A serialized Keras object with every mixed dtype policy in it (a ``DTypePolicy`` config or
    a policy's name under a ``dtype`` key) replaced by float32."""
    if isinstance(obj, list):
        return [_float32_config(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if obj.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and _mixed_name(obj.get("config", {}).get("name")):
        return {**obj, "config": {**obj["config"], "name": FLOAT32}}
    return {
        k: FLOAT32 if k == "dtype" and _mixed_name(v) else _float32_config(v)  # a policy given by name
        for k, v in obj.items()
    }


def _mixed_name(name: Any) -> bool:
    return isinstance(name, str) and name.startswith("mixed_")
