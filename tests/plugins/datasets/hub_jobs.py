"""What the hub dataset tests share: one TensorFlow process that trains on a dataset for 1 epoch,
exports int8 LiteRT and verifies it, for each job given (a process per job costs ~6 s of imports).

``OFFLINE`` is the environment that keeps a test off the network: Hugging Face's offline switch,
and proxies nobody listens on, so that an attempted download fails at once instead of fetching."""

import json

from conftest import run_python

DEAD_PROXY = "http://127.0.0.1:9"
OFFLINE = {
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "https_proxy": DEAD_PROXY,
    "http_proxy": DEAD_PROXY,
    "HTTPS_PROXY": DEAD_PROXY,
    "HTTP_PROXY": DEAD_PROXY,
    "no_proxy": "",
    "NO_PROXY": "",
}

TRAIN_EXPORT_VERIFY = """
import json, sys, time
from pathlib import Path
from core import export, train, verify

facts = {}
for job in json.loads(sys.argv[1]):
    t0 = time.time()
    run = train(job["arch"], job["data"], data_options=job["options"], hparams=job["hp"], out=job["out"],
                epochs=1, batch_size=job.get("batch_size", 16), seed=0, verbose=0)
    files = {Path(p).name: str(p) for p in export(run.path, "tflite", {"quantize": "int8"})}
    folder = Path(files["model_int8.tflite"]).parent
    facts[job["out"]] = {
        "files": sorted(files),
        "labels": (folder / "labels.txt").read_text().splitlines(),
        "model_json": json.loads((folder / "model.json").read_text()),
        "verify": verify(files["model_int8.tflite"], run.path, latency_runs=5),
        "run": json.loads((Path(run.path) / "run.json").read_text()),
        "seconds": time.time() - t0,
    }
print("FACTS " + json.dumps(facts, default=str))
"""


def train_export_verify(jobs, env):
    """``{out: facts}`` for each job (``arch``, ``data``, ``options``, ``hp``, ``out``): trained 1
    epoch under TensorFlow, exported to int8, verified (see ``TRAIN_EXPORT_VERIFY``)."""
    proc = run_python(TRAIN_EXPORT_VERIFY, json.dumps(jobs), env={"KERAS_BACKEND": "tensorflow", **OFFLINE, **env})
    line = [x for x in proc.stdout.splitlines() if x.startswith("FACTS ")][-1]
    return json.loads(line[len("FACTS ") :])
