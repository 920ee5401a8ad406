"""What the hub dataset tests share: one TensorFlow process per test file that first runs the file's
own checks of the loader (``prelude``), then trains on each job's dataset for 1 epoch, exports int8
LiteRT and verifies it. A process costs ~10 s of imports here; a job ~5 s more.

``OFFLINE`` is the environment that keeps a test off the network: Hugging Face's offline switches,
and proxies nobody listens on, so that an attempted download fails at once instead of fetching."""

import json
import textwrap

from conftest import NO_NETWORK, run_python

OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", **NO_NETWORK}

JOBS = """
import json, sys
from pathlib import Path
from core import export, train, verify
from tflite.metadata import EMBEDDED_KEY, read_metadata

for job in json.loads(sys.argv[1]):
    run = train(job["arch"], job["data"], data_options=job["options"], hparams=job["hp"], out=job["out"],
                epochs=1, batch_size=job.get("batch_size", 16), seed=0, verbose=0)
    files = {Path(p).name: str(p) for p in export(run.path, "tflite", {"quantize": "int8"})}
    folder = Path(files["model_int8.tflite"]).parent
    facts[job["out"]] = {
        "files": sorted(files),
        "labels": (folder / "labels.txt").read_text().splitlines(),
        "model_json": json.loads((folder / "model.json").read_text()),
        "embedded": json.loads(read_metadata(files["model_int8.tflite"])[EMBEDDED_KEY]),
        "verify": verify(files["model_int8.tflite"], run.path, latency_runs=5),
        "run": json.loads((Path(run.path) / "run.json").read_text()),
    }
print("FACTS " + json.dumps(facts, default=str))
"""


def train_export_verify(jobs, env, prelude="facts = {}", args=()):
    """``facts``: what ``prelude`` put in it (code run first, with ``sys.argv[2:]`` = ``args``), and
    for each job (``arch``, ``data``, ``options``, ``hp``, ``out``) under its ``out``: the files
    exported, labels.txt, model.json, the metadata embedded in the .tflite, verify()'s result and run.json, after 1 epoch under TensorFlow."""
    code = textwrap.dedent(prelude) + "\n" + JOBS
    proc = run_python(code, json.dumps(jobs), *args, env={"KERAS_BACKEND": "tensorflow", **OFFLINE, **env})
    line = [x for x in proc.stdout.splitlines() if x.startswith("FACTS ")][-1]
    return json.loads(line[len("FACTS ") :])
