"""``tflite``: the LiteRT exporter, a built-in plugin that is a package.

- ``exporter``: ``export()``, the options and the conversion of each variant
- ``finetune``: QAT and pruning before conversion, run under the run's backend or in a tfmot process
- ``qat``: Keras-native quantization-aware training (fake-quant layers, BN folding), any backend
- ``pruning``: native magnitude pruning; ``tfmot_jobs`` + ``bridge``: tfmot through tf_keras
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
