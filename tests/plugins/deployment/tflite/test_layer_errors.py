"""Per-layer quantization error by Keras layer, and ``keep_float`` (issue 17), on a net with one
"massive activation" channel (outlier_plugin.py): float accuracy ≥ 0.95, post-training int8
collapses; the table must name the culprit (``stem``, whose output holds the outlier) among its
first two, and ``keep_float=auto`` must recover float accuracy with most layers still int8. The same
path on a regression model (diabetes, MAE)."""

import os
from pathlib import Path

import pytest
from conftest import one_line_error, read_json, run_cli, run_python

HERE = Path(__file__).parent
ENV = {
    "KERAS_BACKEND": "tensorflow",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
}

# One TensorFlow process trains both runs and exports each twice: plain int8, then keep_float=auto.
# Then a healthy mlp with 36 validation samples (issue 23: auto decided on 27, by chance) exports
# keep_float=auto on 20 calibration samples (too few to decide), then on 300 (int8 within tolerance).
JOB = """
import contextlib, io, json, os, sys
from core import export, train
from core.deploy.export import write_report
out = sys.argv[1]
results = {}
for data, epochs, lr in (("digits", 20, 1e-3), ("diabetes", 40, 1e-2)):
    run = train("outlier", data, backend="tensorflow", epochs=epochs, learning_rate=lr, batch_size=32, seed=0,
                out=f"{out}/{data}", plugins=["outlier_plugin"], verbose=0)
    export(run.path, "tflite", {"quantize": "int8"})
    export(run.path, "tflite", {"quantize": "int8", "keep_float": "auto"})
    if data == "digits":  # names given, with the options it meets: float I/O, per-tensor weights
        export(run.path, "tflite", {"quantize": "int8", "keep_float": "stem,mix", "io": "float", "per_channel": False})
    results[data] = json.load(open(f"{out}/{data}/export/tflite/model.json"))["files"]
write_report(f"{out}/digits", "tflite")
small = f"{out}/small"
train("mlp", "digits", backend="tensorflow", epochs=3, seed=0, out=small, verbose=0, hparams={"units": [32]},
      data_options={"validation": 0.02})
for samples in (20, 300):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        export(small, "tflite", {"quantize": "int8", "keep_float": "auto", "calibration_samples": samples})
    results[f"small{samples}"] = {"stderr": err.getvalue(), "listed": sorted(os.listdir(f"{small}/export/tflite")),
                                  "files": json.load(open(f"{small}/export/tflite/model.json"))["files"]}
json.dump(results, open(f"{out}/results.json", "w"))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("outlier")
    run_python(JOB, out, env=ENV)
    return out, read_json(out / "results.json")


def _top_two(rows):
    return [r["layer"] for r in rows[:2]]


@pytest.mark.slow
def test_int8_collapses_and_the_table_names_the_culprit(runs):
    _, results = runs
    files = results["digits"]
    mixed = files["model_int8-mixed.tflite"]["mixed"]
    assert mixed["float_metric"] >= 0.95, mixed
    assert mixed["all_int8_metric"] <= mixed["float_metric"] - 0.3, mixed  # PTQ int8 collapses
    rows = files["model_int8.tflite"]["layer_errors"]
    assert "stem" in _top_two(rows), rows
    stem = next(r for r in rows if r["layer"] == "stem")
    assert stem["flagged"] and stem["snr_db"] < 3, stem
    # The outlier dominates the tensor-wide metrics: only the worst channel's SNR sees the crushed ones.
    assert stem["cosine"] > 0.99 and stem["rel_rmse"] < 0.05, stem
    assert {r["kind"] for r in rows} == {"local"}


@pytest.mark.slow
def test_keep_float_auto_recovers_with_most_layers_int8(runs):
    out, results = runs
    entry = results["digits"]["model_int8-mixed.tflite"]
    mixed = entry["mixed"]
    assert mixed["mixed_metric"] >= mixed["float_metric"] - 0.01, mixed
    assert "stem" in mixed["float_layers"] and len(mixed["float_layers"]) <= 2, mixed
    assert mixed["int8_ops"] > 0.5 and mixed["int8_weights"] > 0.5, mixed
    assert mixed["steps"][0] == {"float_layers": [], "metric": mixed["all_int8_metric"], "within": False}
    # The mixed file's table lists only its int8 layers, none flagged; the file is really mixed.
    assert not {r["layer"] for r in entry["layer_errors"]} & set(mixed["float_layers"])
    assert not any(r["flagged"] for r in entry["layer_errors"]), entry["layer_errors"]
    assert "DEQUANTIZE" in entry["ops"] and entry["input"]["dtype"] == "int8"
    report = (out / "digits" / "export" / "tflite" / "report.md").read_text()
    assert "## Per-layer quantization error — `model_int8.tflite`" in report
    assert "Kept float (`keep_float=auto`): `stem`" in report and "| 1 | `stem` |" in report


@pytest.mark.slow
def test_keep_float_by_name_composes_with_float_io_and_per_tensor(runs):
    _, results = runs
    entry = results["digits"]["model_int8-mixed-floatio-pertensor.tflite"]
    mixed = entry["mixed"]
    assert mixed["float_layers"] == ["stem", "mix"] and mixed["keep_float"] == "stem,mix"
    assert mixed["mixed_metric"] >= mixed["float_metric"] - 0.01, mixed
    assert entry["input"]["dtype"] == "float32" and entry["per_channel"] is False


@pytest.mark.slow
def test_regression_model_goes_the_same_path(runs):
    _, results = runs
    files = results["diabetes"]
    mixed = files["model_int8-mixed.tflite"]["mixed"]
    assert mixed["metric"] == "mae" and mixed["split"].endswith(" validation + 300 calibration samples")
    assert mixed["all_int8_metric"] > mixed["float_metric"] * 1.1, mixed  # the outlier costs int8 > 10 %
    assert "stem" in _top_two(files["model_int8.tflite"]["layer_errors"])
    assert mixed["mixed_metric"] <= mixed["float_metric"] * 1.01, mixed
    assert mixed["int8_ops"] >= 0.5, mixed


@pytest.mark.slow
@pytest.mark.slow
def test_keep_float_auto_decides_on_validation_and_calibration_samples_together(runs):
    """The outlier run's 270 validation samples and the 300 calibration samples decide."""
    _, results = runs
    mixed = results["digits"]["model_int8-mixed.tflite"]["mixed"]
    validation = int(mixed["split"].split()[0])
    assert mixed["split"] == f"{validation} validation + 300 calibration samples" and validation > 200
    assert mixed["samples"] == validation + 300


@pytest.mark.slow
def test_keep_float_auto_that_keeps_no_layer_writes_no_mixed_file_and_says_why(runs):
    """Issue 23: a "mixed" file identical to the plain int8 model, without a word. Now the plain int8
    file is written and model.json, stderr (and the report) say why: too few samples to decide, or
    all int8 within tolerance of float."""
    _, results = runs
    few, enough = results["small20"], results["small300"]
    for found in (few, enough):
        assert found["listed"] == ["labels.txt", "model.json", "model_int8.tflite"], found["listed"]
        note = found["files"]["model_int8.tflite"]["keep_float"]
        assert note["asked"] == "auto" and note["float_layers"] == [], note
        assert f"keep_float=auto: {note['why']}; wrote the plain int8 model" in found["stderr"], found["stderr"]
        assert "layer_errors" in found["files"]["model_int8.tflite"]  # the plain file's own table
    assert few["files"]["model_int8.tflite"]["keep_float"]["samples"] == 36 + 20
    assert few["files"]["model_int8.tflite"]["keep_float"]["why"] == (
        "36 validation + 20 calibration samples are too few to tell int8 from float within 1 point (one sample "
        "moves accuracy by 1.8%); it needs 100"
    )
    why = enough["files"]["model_int8.tflite"]["keep_float"]["why"]
    assert why.startswith("all int8 is within tolerance of float on 36 validation + 300 calibration samples: accuracy")


def test_verify_layers_prints_the_table_and_bad_keep_float_is_refused(runs):
    out, _ = runs
    folder = out / "digits" / "export" / "tflite"
    proc = run_cli("verify", folder / "model_int8.tflite", "--run", out / "digits", "--layers", env=ENV)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("model_int8.tflite  test n=")
    assert lines[1].split()[:3] == ["#", "Keras", "layer"]
    assert "stem" in lines[2].split() + lines[3].split() and "FLAGGED" in lines[2], proc.stdout
    proc = run_cli(
        "export", out / "digits", "--to", "tflite", "--opt", "quantize=int8", "--opt", "keep_float=stme", env=ENV
    )
    line = one_line_error(proc, 2)
    assert "keep_float: no layer 'stme' in the model (did you mean 'stem'?); valid: conv, flatten, head" in line


@pytest.mark.parametrize(
    "options, message",
    [
        ({"keep_float": "stem", "quantize": "float16"}, "keep_float applies to quantize=int8; got quantize='float16'"),
        ({"keep_float": "stem", "quantize": "int16x8"}, "keep_float applies to quantize=int8 (TensorFlow 2.21"),
        (
            {"keep_float": "stem", "qat": "native"},
            "keep_float leaves layers of a calibrated int8 model float; qat=native",
        ),
        ({"keep_float": "auto,stem", "quantize": "int8"}, "keep_float=auto chooses the layers itself"),
        ({"keep_float": "auto", "quantize": "int8", "keep_float_max": 0}, "keep_float_max must be at least 1, got 0"),
    ],
)
def test_keep_float_combinations_that_make_no_sense_are_refused(options, message):
    from core import UsageError
    from plugins.deployment.tflite.options import TFLiteOptions

    with pytest.raises(UsageError, match="exporter 'tflite': ") as info:
        TFLiteOptions(**options).validate()
    assert message in str(info.value)


def test_worst_channel_snr_sees_a_channel_crushed_by_an_outlier():
    """The metric itself, on numbers: one channel at 1000 sets a scale of ~4 per step, which rounds
    the other channels (values ~1) to 0; the tensor-wide cosine stays ~1."""
    import numpy as np

    from plugins.deployment.tflite.layer_errors import _Sums, rank

    rng = np.random.default_rng(0)
    f = np.concatenate([rng.uniform(0, 2, (64, 3)), np.full((64, 1), 1000.0)], axis=1)
    scale = 1000 / 255
    sums = _Sums()
    sums.add(f, np.round(f / scale) * scale)
    crushed = sums.metrics()
    # A healthy tensor, plus a channel that is almost always 0 (one value of 1e-3: rounded to 0, no
    # signal to lose): left out, or every ReLU net would be flagged.
    g = np.concatenate([f[:, :3], np.zeros((64, 1))], axis=1)
    g[0, 3] = 1e-3
    fine = _Sums()
    fine.add(g, np.round(g / (2 / 255)) * (2 / 255))
    healthy = fine.metrics()
    assert crushed["cosine"] > 0.999 and crushed["snr_db"] < 3 and crushed["worst_channel"] in (0, 1, 2)
    assert healthy["snr_db"] > 30
    rows = rank([{"layer": "ok", **healthy}, {"layer": "stem", **crushed}])
    assert [r["layer"] for r in rows] == ["stem", "ok"] and [r["flagged"] for r in rows] == [True, False]


def test_tensor_names_map_to_keras_layers_fused_ones_too():
    """Keras 3's SavedModel export names ops ``<model>_<n>/<layer>_<n>/...``; the converter fuses a
    Conv2D, its BatchNormalization and ReLU into one op named for all three (TensorFlow 2.21)."""
    from plugins.deployment.tflite.layer_errors import layers_of

    names = ["conv2d", "batch_normalization", "re_lu", "conv2d_2", "re_lu_2", "dense", "probabilities"]
    fused = "cnn_1/re_lu_1/Relu;cnn_1/batch_normalization_1/batchnorm/add_1;cnn_1/conv2d_1/convolution;x1"
    assert layers_of(fused, names) == ["re_lu", "batch_normalization", "conv2d"]
    assert layers_of("cnn_1/re_lu_2_1/Relu;cnn_1/conv2d_2_1/convolution", names) == ["re_lu_2", "conv2d_2"]
    assert layers_of("cnn_1/dense_1/MatMul;cnn_1/dense_1/Relu", names) == ["dense"]
    assert layers_of("StatefulPartitionedCall_1:01", names, "probabilities") == ["probabilities"]
    assert layers_of("tfl.quantize", names) == []


def test_a_float_activation_without_signal_is_not_flagged():
    """Issue 23: a frozen random backbone made activations of ~1e-10; rounded to 0 they read SNR 0.0 dB,
    cosine 1.0 and relative RMSE ~1, and 43 layers were flagged. The same number for every sample, or
    numbers about 0, carry no signal to lose: "no signal", sorted last, never flagged."""
    import numpy as np

    from core import format_layer_errors
    from plugins.deployment.tflite.layer_errors import _Sums, rank

    rng = np.random.default_rng(0)
    tiny, constant, live = _Sums(), _Sums(), _Sums()
    for _ in range(8):
        f = rng.uniform(0, 2e-10, (4, 3))  # varies, but about 0
        tiny.add(f, np.zeros_like(f))
        c = np.array([[0.5, 1e-10, 3.0]] * 4)  # the same for every sample
        constant.add(c, np.round(c / 0.02) * 0.02)
        g = rng.uniform(0, 2, (4, 3))
        live.add(g, np.round(g / 0.5) * 0.5)  # a coarse step: a real loss
    before = tiny.metrics()
    assert before["snr_db"] == 0.0 and before["no_signal"] is True, before
    assert constant.metrics()["no_signal"] is True and live.metrics()["no_signal"] is False
    rows = rank(
        [{"layer": "tiny", **before}, {"layer": "constant", **constant.metrics()}, {"layer": "live", **live.metrics()}]
    )
    assert [r["layer"] for r in rows][0] == "live" and [r["flagged"] for r in rows] == [True, False, False]
    table = format_layer_errors(rows)
    assert [line.split()[2:4] for line in table.splitlines()[2:4]] == [["no", "signal"], ["no", "signal"]]
    assert "FLAGGED" not in "".join(table.splitlines()[2:4]) and "(no signal: " in table
