"""--fine-tune-after / --fine-tune-factor checks and run.json's ``initial_weights`` (no training here;
the training itself is tested in tests/plugins/architectures/test_pretrained.py)."""

import hashlib

import pytest

from core import UsageError, train
from core.engine.options import make_options
from core.engine.transfer import weights_source


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"fine_tune_after": 3, "epochs": 3}, "--fine-tune-after 3 must be less than --epochs (3)"),
        ({"fine_tune_after": 0}, "--fine-tune-after must be at least 1"),
        ({"fine_tune_factor": 0}, "--fine-tune-factor must lie in (0, 1]"),
        ({"fine_tune_factor": "1.5"}, "--fine-tune-factor must lie in (0, 1]"),
    ],
)
def test_bad_fine_tuning_options_are_usage_errors(given, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_options(given)


def test_fine_tune_after_needs_a_frozen_backbone(tmp_path):
    with pytest.raises(UsageError, match="--fine-tune-after 1 needs --freeze backbone"):
        train("mlp", "iris", epochs=2, fine_tune_after=1, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_initial_weights_say_where_the_weights_came_from(tmp_path):
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"not really weights")
    preset = tmp_path / "preset"
    preset.mkdir()
    assert weights_source({}, None) == {"source": "random"}
    assert weights_source({"weights": "none"}, None) == {"source": "random"}
    assert weights_source({"weights": "imagenet"}, None) == {"source": "imagenet"}
    assert weights_source({"weights": str(weights)}, None) == {
        "source": "file",
        "path": str(weights.resolve()),
        "sha256": hashlib.sha256(b"not really weights").hexdigest(),
    }
    assert weights_source({"preset": str(preset)}, None) == {"source": "preset", "path": str(preset.resolve())}
    assert weights_source({"preset": "bert_tiny_en_uncased"}, None) == {
        "source": "preset",
        "name": "bert_tiny_en_uncased",
    }
    run = weights_source({"weights": "imagenet"}, tmp_path)
    assert run == {"source": "run", "run": str(tmp_path.resolve()), "architecture_weights": {"source": "imagenet"}}
