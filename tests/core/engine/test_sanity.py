"""Trainings that cannot learn: ``--hp weights=none --freeze backbone`` refused at the start, a
classifier whose outputs are constant warned about at the end (issue 23)."""

import numpy as np
import pytest
from conftest import one_line_error, read_json, run_cli, run_python

from core.engine.sanity import OutputSpread, check_frozen_backbone, constant_outputs_warning
from core.errors import UsageError


def test_a_random_frozen_backbone_is_refused_and_the_legitimate_settings_pass():
    with pytest.raises(UsageError, match=r"--freeze backbone with --hp weights=none: architecture 'mobilenet_v2'"):
        check_frozen_backbone("mobilenet_v2", {"weights": "none"}, "backbone", None)
    check_frozen_backbone("mobilenet_v2", {"weights": "none"}, "backbone", "runs/source")  # weights from a run
    check_frozen_backbone("mobilenet_v2", {"weights": "imagenet"}, "backbone", None)
    check_frozen_backbone("mobilenet_v2", {"weights": "none"}, "none", None)
    check_frozen_backbone("cnn", {}, "backbone", None)  # no pretrained weights to speak of: the head of a cnn


def test_the_cli_refuses_it_in_one_line_before_building_anything(tmp_path):
    args = ["--arch", "mobilenet_v3_small", "--data", "shapes", "--hp", "weights=none", "--freeze", "backbone"]
    line = one_line_error(run_cli("train", *args, "--out", tmp_path / "run"), 2)
    assert line.startswith("kerastack: error: --freeze backbone with --hp weights=none"), line
    assert "--hp weights=imagenet or weights=FILE, --init-from RUN, or --freeze none" in line
    assert not (tmp_path / "run").exists()


def spread_of(*batches):
    spread = OutputSpread()
    for batch in batches:
        spread.add(np.asarray(batch))
    return spread


def test_constant_outputs_are_told_from_a_model_that_sees_its_inputs():
    same = [[0.2, 0.5, 0.3]] * 4
    constant = spread_of(same, np.asarray(same[:3]) + 1e-7)  # over batches, float noise included
    assert constant.constant() and constant.samples == 7
    message = constant_outputs_warning(constant, [0, 1, 2, 1, 1, 0, 2], [1] * 7, "test", ["a", "b", "c"])
    assert message.startswith("the model's outputs are constant: the same for all 7 test samples"), message
    assert "class 'b' for every one, accuracy 0.429 (that class's share)" in message
    moving = spread_of(same, [[0.2, 0.49, 0.31]])  # one sample 0.01 away: the model sees its inputs
    assert not moving.constant() and constant_outputs_warning(moving, [0] * 5, [1] * 5, "test") is None
    assert not spread_of(same[:1]).constant()  # one sample tells nothing
    assert not spread_of([[np.nan, 1.0]] * 3).constant()


CONSTANT_PLUGIN = """
from core import hookimpl


@hookimpl
def register_architectures(register):
    register("blind", build, summary="a classifier that never sees its inputs", tasks=("classification",))


def build(spec):
    import keras

    inputs = keras.Input(spec.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(4, kernel_initializer="zeros", trainable=False, name="blind")(x)  # always 0
    return keras.Model(inputs, keras.layers.Dense(spec.num_classes, activation="softmax")(x))
"""


# One process: the blind classifier and an mlp that sees its inputs, on iris; the warnings each printed.
JOB = """
import contextlib, io, json, sys
from core import train
out, plugin = sys.argv[1:3]
report = {}
for arch, plugins in (("blind", [plugin]), ("mlp", [])):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        run = train(arch, "iris", plugins=plugins, backend="tensorflow", epochs=2, seed=0, out=f"{out}/{arch}",
                    verbose=0, checkpoint_every=0)
    lines = [line for line in err.getvalue().splitlines() if line.startswith("kerastack: warning:")]
    report[arch] = {"warnings": lines, "record": run.record.get("warnings")}
json.dump(report, open(f"{out}/report.json", "w"))
"""


@pytest.mark.slow
def test_a_constant_classifier_is_warned_about_and_recorded(tmp_path, write_plugin):
    plugin = write_plugin("blind_plugin", CONSTANT_PLUGIN)
    run_python(JOB, tmp_path, plugin, env={"KERAS_BACKEND": "tensorflow"})
    report = read_json(tmp_path / "report.json")
    lines = report["blind"]["warnings"]
    assert len(lines) == 1 and "the model's outputs are constant: the same for all 23 test samples" in lines[0]
    assert report["blind"]["record"] == [lines[0].removeprefix("kerastack: warning: ")]
    assert read_json(tmp_path / "blind" / "run.json")["warnings"] == report["blind"]["record"]
    assert report["mlp"] == {"warnings": [], "record": None}  # a model that sees its inputs: not a word
    # The report says it, on the terminal and at the top of report.html.
    proc = run_cli("report", tmp_path / "blind")
    assert proc.returncode == 0, proc.stderr
    assert "warning the model's outputs are constant" in " ".join(proc.stdout.split()), proc.stdout
    assert (
        '<p class="warn">warning: the model&#x27;s outputs are constant'
        in (tmp_path / "blind" / "report.html").read_text()
    )
