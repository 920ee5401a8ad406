"""``tflite``: the LiteRT exporter, a built-in plugin that is a package.

- ``exporter``: ``export()``, the orchestration; ``options``: ``TFLiteOptions``, which checks itself
- ``convert``: the LiteRT converter's set-up and checks; ``artifacts``: the files written
- ``finetune``: QAT and pruning before conversion, run under the run's backend or in a tfmot process
- ``qat``: Keras-native quantization-aware training (the graph rewrite, BN folding, calibration), any
  backend; ``qat_layers``: its fake-quant layers; ``tuning``: loading, fitting, evaluating a run's model
- ``pruning``: native magnitude pruning; ``tfmot_jobs`` + ``bridge``: tfmot through tf_keras
- ``layer_errors``: per-layer quantization error by Keras layer (QuantizationDebugger for int8);
  ``selective``: the errors of each integer variant, and ``keep_float`` (int8 with layers left float)
- ``checks``: what a written file is checked for (an integer output that clips a regression
  model's training targets; float ops inside an integer file)
- ``metadata``: model.json, also embedded in each .tflite; ``report``: report.md/report.png
"""

from core import hookimpl
from plugins.deployment.tflite.exporter import export
from plugins.deployment.tflite.report import write_folder_report


@hookimpl
def register_exporters(register):
    register(
        "tflite",
        export,
        backend="tensorflow",
        report=write_folder_report,
        summary="LiteRT flatbuffer: float32/16, dynamic, int8, int16x8; QAT, pruning, clustering",
    )
