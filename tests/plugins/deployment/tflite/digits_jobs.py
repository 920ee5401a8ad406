"""The start of the test jobs of test_quantize.py and test_pruning.py (each runs in a fresh
TensorFlow process on the digits cnn run ``sys.argv[1]``): the digits test split, the run's Keras
predictions computed once, and ``verify(path)``, which runs a file on LiteRT (tflite.runner) against
them. The job stores what it found in ``results``."""

PRELUDE = """
import json, sys
import numpy as np
from core import export, load_run
from plugins.datasets.digits import load
from tflite import TFLiteModel
run = sys.argv[1]
results = {}
x, y = load().test
expected = np.asarray(load_run(run).model.predict(x, verbose=0))


def verify(path):
    got = TFLiteModel(path).predict(x).reshape(expected.shape)
    return {"tflite_accuracy": float(np.mean(got.argmax(-1) == y)),
            "keras_accuracy": float(np.mean(expected.argmax(-1) == y)),
            "agreement": float(np.mean(got.argmax(-1) == expected.argmax(-1))),
            "max_abs_diff": float(np.abs(got - expected).max())}

"""
