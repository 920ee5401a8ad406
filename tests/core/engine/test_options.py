"""core.engine.options: training settings checked once, for the CLI, config files and the API alike."""

import pytest

from core.engine.options import TrainingOptions, make_options
from core.errors import UsageError


def test_defaults_and_coercion_from_text():
    opts = make_options({"epochs": "3", "learning-rate": "3e-4", "nesterov": "true", "augment": "flip,zoom"})
    assert (opts.epochs, opts.learning_rate, opts.nesterov, opts.augment) == (3, 3e-4, True, ("flip", "zoom"))
    assert make_options().to_dict() == TrainingOptions().to_dict()


@pytest.mark.parametrize(
    "given, message",
    [
        ({"epochs": 0}, "--epochs must be at least 1, got 0"),
        ({"batch_size": "-4"}, "--batch-size must be at least 1, got -4"),
        ({"learning_rate": "0"}, "--learning-rate must be positive, got 0.0"),
        ({"optimizer": "adamm"}, "--optimizer 'adamm' (did you mean 'adam'?); valid: adam, adamw, sgd"),
        ({"schedule": "linear"}, "--schedule 'linear'; valid: constant, cosine, one-cycle"),
        ({"precision": "float16"}, "--precision 'float16' (did you mean"),
        ({"augment": "flip,spin"}, "--augment 'spin'; valid: flip, rotate, translate, zoom"),
        ({"label_smoothing": 1.5}, "--label-smoothing must lie in [0, 1), got 1.5"),
        ({"warmup": -1}, "--warmup must not be negative"),
        ({"epochs": "ten"}, "--epochs 'ten': expected an integer"),
        ({"epoch": 3}, "unknown training option 'epoch' (did you mean 'epochs'?)"),
    ],
)
def test_bad_values_name_the_flag(given, message):
    with pytest.raises(UsageError) as err:
        make_options(given)
    assert message in str(err.value)
