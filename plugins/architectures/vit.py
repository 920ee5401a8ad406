"""``vit``: a Vision Transformer — image patches as tokens through a Transformer encoder."""

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "vit",
        build,
        tasks=("classification",),
        summary="patch embedding + learned positions, self-attention encoder, pooled softmax head",
    )


def build(spec, patch=4, dim=32, heads=2, blocks=2, mlp_dim=64, dropout=0.1):
    """Non-overlapping ``patch``×``patch`` patches embedded in ``dim`` dimensions (a Conv2D with
    kernel = stride = patch), a learned embedding per patch position, ``blocks`` pre-norm encoder
    blocks (``heads`` attention heads, a GELU feed-forward of ``mlp_dim``) and a global average
    over patches. The image sides must be multiples of ``patch``."""
    import keras
    from keras import layers

    from plugins.architectures._layers.attention import check_heads, classify_sequence

    shape = spec.input_shape
    if len(shape) not in (2, 3):
        raise ValueError(f"vit needs image inputs (H, W[, C]); the dataset gives {shape}")
    if patch < 1 or shape[0] % patch or shape[1] % patch:
        raise ValueError(f"vit needs image sides (H, W) divisible by patch={patch}; the dataset gives {shape}")
    check_heads("vit", dim, heads)
    inputs = keras.Input(shape, name="image")
    x = inputs if len(shape) == 3 else layers.Reshape((*shape, 1))(inputs)
    x = layers.Conv2D(dim, patch, strides=patch, name="patches")(x)
    x = layers.Reshape(((shape[0] // patch) * (shape[1] // patch), dim))(x)
    return classify_sequence(inputs, x, spec, blocks, heads, mlp_dim, dropout, "vit")
