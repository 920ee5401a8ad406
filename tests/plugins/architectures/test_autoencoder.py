"""``autoencoder``: reconstruction beats the mean image, reconstruction error separates
out-of-distribution inputs, and the .tflite verifies as a reconstruction model. (test_zoo.py trains,
reloads and exports ``autoencoder`` and ``vae`` under every backend and checks the VAE's loss terms.)"""

import numpy as np
import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process: train the autoencoder on digits' inputs (labels unused), score test images
# against images it never saw the like of, export it and verify the .tflite on the reconstruction task.
ANOMALY_JOB = """
import json, sys
import numpy as np
from core import export, train, verify
from core.runs import inference_model
from plugins.datasets.digits import load

out = sys.argv[1]
data = load()
x_train, x_test = data.train[0], data.test[0]
run = train("autoencoder", "digits", epochs=12, seed=0, out=out + "/run", verbose=0)
model = inference_model(run.model)

def scores(x):
    return ((x - model.predict(x, verbose=0)) ** 2).mean(axis=(1, 2, 3)).tolist()

rng = np.random.default_rng(0)
paths = export(run.path, "tflite", {})
json.dump({
    "metrics": run.metrics,
    "record": run.record,
    "baseline_mse": float(((x_test - x_train.mean(axis=0)) ** 2).mean()),
    "test": scores(x_test),
    "noise": scores(rng.random(x_test.shape, dtype="float32")),
    "inverted": scores(1.0 - x_test),
    "encoder_output": list(run.model.get_layer("encoder").output.shape[1:]),
    "verify": verify(paths[0], run.path, latency_runs=10),
}, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def anomaly(tmp_path_factory):
    out = tmp_path_factory.mktemp("autoencoder")
    run_python(ANOMALY_JOB, out, env={"KERAS_BACKEND": "tensorflow"})
    return read_json(out / "report.json")


def test_autoencoder_trains_reconstruction_on_unlabelled_inputs(anomaly):
    assert anomaly["record"]["spec"]["task"] == "reconstruction"
    assert anomaly["record"]["custom_modules"] == []  # plain layers: nothing to import at load
    assert anomaly["encoder_output"] == [16]  # the latent bottleneck
    metrics = anomaly["metrics"]
    # The mean image is what a model that learned nothing about each input would predict.
    assert metrics["test_loss"] < 0.6 * anomaly["baseline_mse"], (metrics, anomaly["baseline_mse"])


def test_reconstruction_error_flags_out_of_distribution_inputs(anomaly):
    test = np.array(anomaly["test"])
    threshold = np.percentile(test, 99)
    for name in ("noise", "inverted"):
        other = np.array(anomaly[name])
        assert np.mean(other > threshold) > 0.95, (name, threshold, np.percentile(other, [1, 50]))
        assert other.mean() > 3 * test.mean(), (name, other.mean(), test.mean())


def test_exported_autoencoder_verifies_as_reconstruction(anomaly):
    result = anomaly["verify"]
    assert result["split"] == "test"
    assert result["max_abs_diff"] < 1e-4
    assert result["tflite_mse"] == pytest.approx(result["keras_mse"], abs=1e-6)
    assert result["keras_mse"] == pytest.approx(anomaly["metrics"]["test_loss"], rel=1e-3)
