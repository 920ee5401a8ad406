"""The ``saved_model`` exporter: a SavedModel whose ``serve()`` matches Keras, written atomically."""

import os

import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process: train a tiny run, export it twice (the second replaces the first), reload.
JOB = """
import json, os, sys
import numpy as np
import tensorflow as tf
from core import export, train
from plugins.datasets.digits import load
out = sys.argv[1]
run = train("cnn", "digits", backend="tensorflow", epochs=1, seed=0, out=out, verbose=0,
            hparams={"filters": 8, "dense": 32})
first = export(out, "saved_model")
marker = os.path.join(first[0], "assets", "stale-marker")
os.makedirs(os.path.dirname(marker), exist_ok=True)
open(marker, "w").close()
second = export(out, "saved_model", {"verify_samples": 50})
unverified = export(out, "saved_model", {"verify": False})
loaded = tf.saved_model.load(str(second[0]))
x, _ = load().test
mine = loaded.serve(tf.constant(x[:5])).numpy()
keras = run.model.predict(x[:5], verbose=0)
json.dump({"first": [str(p) for p in first], "second": [str(p) for p in second],
           "unverified": [str(p) for p in unverified], "marker_survived": os.path.exists(marker),
           "signatures": sorted(loaded.signatures.keys()),
           "direct_diff": float(np.abs(mine - keras).max())}, open(out + "/job.json", "w"))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run = tmp_path_factory.mktemp("saved-model") / "run"
    run_python(JOB, run, env={"KERAS_BACKEND": "tensorflow"})
    return run, read_json(run / "job.json")


def test_writes_the_directory_and_verify_json(exported):
    run, job = exported
    out = run / "export" / "saved_model"
    assert job["first"] == [str(out / "saved_model"), str(out / "verify.json")]
    assert (out / "saved_model" / "saved_model.pb").is_file()
    assert "serving_default" in job["signatures"]
    assert job["direct_diff"] <= 1e-5


def test_verify_json_compares_with_keras(exported):
    run, _ = exported
    v = read_json(run / "export" / "saved_model" / "verify.json")["saved_model"]
    assert v["split"] == "test" and v["samples"] == 50  # the second export's verify_samples
    assert v["max_abs_diff"] <= 1e-5 and v["agreement"] == 1.0
    assert v["accuracy"] == v["keras_accuracy"]
    assert 0 < v["latency_ms_p50"] <= v["latency_ms_p90"]
    assert v["file"] == str(run / "export" / "saved_model" / "saved_model")


def test_export_again_replaces_the_whole_directory(exported):
    run, job = exported
    out = run / "export" / "saved_model"
    assert not job["marker_survived"], "a file of the previous export was left in the new directory"
    assert job["unverified"] == [str(out / "saved_model")]
    assert sorted(p.name for p in out.iterdir()) == ["saved_model", "verify.json"]  # nothing left aside
    umask = os.umask(0)
    os.umask(umask)
    assert oct((out / "saved_model").stat().st_mode & 0o777) == oct(0o777 & ~umask)  # not mkdtemp's 0700
