"""The ``tflite`` exporter's options: one dataclass that checks itself, passed down whole.

``export()`` keeps its keyword parameters (the core registry reads the options, their defaults and
types from its signature); it builds a :class:`TFLiteOptions` from them. The defaults here are the
same as ``export()``'s (a test keeps them in step).
"""

from dataclasses import dataclass

from core import BACKENDS, UsageError

VARIANTS = ("none", "float16", "dynamic", "int8", "int16x8")
QUANTIZE = VARIANTS + ("all",)
IO = ("auto", "int8", "uint8", "float")
QAT = ("none", "native", "tfmot")
PRUNE_METHODS = ("native", "tfmot")
INTEGER_VARIANTS = ("int8", "int16x8")  # full-integer, calibrated; per_channel=false applies to them

QAT_LEARNING_RATE = 1e-4  # learning_rate=0: the default for QAT and clustering
LEARNING_RATE = 1e-3  # ... and for pruning


@dataclass(frozen=True)
class TFLiteOptions:
    """What ``export()`` was asked for, one field per option:

    ``quantize``: ``int8`` is full-integer quantization calibrated on ``calibration_samples``
    training samples. ``io`` is its interface: ``int8`` input and output, ``uint8`` (the quantized
    values shifted by 128: what MediaPipe Tasks and the LiteRT Task Library feed an image model; an
    image input's uint8 values are then its raw pixels), ``float`` (quantize and dequantize inside),
    or ``auto`` (default): ``uint8`` where MediaPipe Tasks could run the file (RGB images, a text
    classifier), ``float`` for a waveform model (AudioClassifier takes float inputs only), ``int8`` otherwise (token ids stay int32 inputs whatever ``io`` says). ``int16x8`` keeps activations in 16 bits (int16 input/output
    unless ``io=float``); ``all`` writes every variant, and a
    comma-separated list (``quantize=none,int8``) the variants named. ``per_channel=false`` (int8,
    int16x8) quantizes each weight tensor with one scale instead of one per output channel: smaller
    files for models with many channels (each channel costs a float32 scale and an int64 zero point,
    ~12 bytes), at some accuracy; the file name gets ``-pertensor``.

    ``qat=native`` fine-tunes a fake-quantized copy of the model (``plugins.deployment.tflite.qat``) for ``qat_epochs``
    under the run's backend and converts it to int8 with its learned ranges
    (``model_int8-qat-native.tflite``); ``qat=tfmot`` does the same with TensorFlow Model
    Optimization through the tf_keras bridge (``model_int8-qat-tfmot.tflite``).

    ``prune=0.5`` fine-tunes ``prune_epochs`` while raising the kernels' sparsity to 50 %
    (``prune_method=native``: ``plugins.deployment.tflite.pruning``, any backend; ``tfmot``: through the bridge), then
    converts with ``quantize`` (``model_int8-pruned50.tflite``). ``clusters=16`` clusters each
    kernel to 16 values with tfmot (``cluster_epochs`` of fine-tuning). ``learning_rate`` (0: 1e-4
    for QAT and clustering, 1e-3 for pruning) and ``finetune_backend`` (default: the run's) apply to all fine-tuning.

    Each int8 and int16x8 file's model.json entry holds ``layer_errors``: per Keras layer, the
    quantized activations' error against float (relative RMSE, cosine, worst channel's SNR), worst
    first (``plugins.deployment.tflite.layer_errors``; ``layer_errors=false`` skips measuring them:
    ~0.8 s of CPU per file on the digits cnn, more on big models). ``keep_float=stem,mix`` (with
    ``quantize=int8``) leaves those Keras layers float and the rest int8 (``model_int8-mixed.tflite``);
    ``keep_float=auto`` chooses the fewest, greedily from the per-layer errors, checked end to end on
    the validation split and the calibration samples together until int8 is within 1 point of float
    (1 % of a lower-is-better metric), at most ``keep_float_max``. Where all int8 is already within
    that, or there are fewer than 100 samples to tell, it writes the plain int8 file, not a "mixed"
    one, and says why (stderr, the report, model.json's ``keep_float``). A model with a spectrogram
    front end (``keras.layers.MelSpectrogram``, ``STFTSpectrogram``) keeps that layer float unless
    ``keep_float`` is given: int8 flattens its ~100 dB range to the floor (audio_cnn on sounds:
    0.917 → 0.600). ``keep_float=none`` asks for everything int8.
    """

    quantize: str = "none"
    io: str = "auto"
    calibration_samples: int = 300
    allow_select_ops: bool = False
    seed: int = 0
    qat: str = "none"
    qat_epochs: int = 2
    prune: float = 0.0
    prune_epochs: int = 2
    prune_method: str = "native"
    clusters: int = 0
    cluster_epochs: int = 1
    learning_rate: float = 0.0
    finetune_backend: str = ""
    per_channel: bool = True
    keep_float: str = ""
    keep_float_max: int = 4
    layer_errors: bool = True

    def for_model(self, model, task=None):
        """These options with ``io=auto`` resolved for ``model`` (``task``: a ``core.Task`` or None):
        ``uint8`` where MediaPipe Tasks could run the file, which takes uint8 or float32 only
        (measured with 1.2.2: int8 inputs and outputs are refused): a model of RGB images (float
        height x width x 3), or of token ids with class outputs (a text classifier); ``float`` for a
        model of waveforms (a spectrogram layer inside: MediaPipe's AudioClassifier takes float16 or
        float32 only, measured); ``int8`` otherwise."""
        from dataclasses import replace

        if self.io != "auto":
            return self
        shape, dtype = tuple(model.inputs[0].shape), str(model.inputs[0].dtype)
        rgb = len(shape) == 4 and shape[-1] == 3 and "float" in dtype
        text = "int" in dtype and task is not None and task.classes
        return replace(self, io="uint8" if rgb or text else "float" if takes_audio(model) else "int8")

    @property
    def variants(self):
        """The variants ``quantize`` names: one, a comma-separated list, or ``all``."""
        return variants(self.quantize)

    def learning_rate_or(self, default):
        """``learning_rate``, or ``default`` where it was left 0."""
        return self.learning_rate or default

    def validate(self):
        """Raise a one-line :class:`UsageError` naming the first bad option; return ``self``."""
        self._check_choices()
        self._check_numbers()
        self._check_combinations()
        self._check_keep_float()
        return self

    def _check_choices(self):
        if self.quantize != "all" and not set(self.variants) <= set(VARIANTS):
            _bad(f"quantize={self.quantize!r} is not one of {', '.join(QUANTIZE)} (or a comma-separated list)")
        for name, valid in (("io", IO), ("qat", QAT), ("prune_method", PRUNE_METHODS)):
            value = getattr(self, name)
            if value not in valid:
                _bad(f"{name}={value!r} is not one of {', '.join(valid)}")

    def _check_numbers(self):
        if self.calibration_samples < 1:
            _bad(f"calibration_samples must be positive, got {self.calibration_samples}")
        if not 0 <= self.prune < 1:
            _bad(f"prune is the target sparsity, a fraction in [0, 1); got {self.prune}")
        if self.clusters < 0 or self.clusters == 1:
            _bad(f"clusters must be 0 (off) or at least 2, got {self.clusters}")
        for name in ("qat_epochs", "prune_epochs", "cluster_epochs"):
            if getattr(self, name) < 0:
                _bad(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.learning_rate < 0:
            _bad(f"learning_rate must be positive (0: the default), got {self.learning_rate}")
        if self.keep_float_max < 1:
            _bad(f"keep_float_max must be at least 1, got {self.keep_float_max}")
        if self.finetune_backend and self.finetune_backend not in BACKENDS:
            _bad(f"finetune_backend={self.finetune_backend!r} is not one of {', '.join(BACKENDS)}")

    def _check_combinations(self):
        if self.qat != "none" and self.quantize not in ("none", "int8"):
            _bad(f"qat={self.qat} makes an int8 model; quantize={self.quantize!r} does not apply (leave it out)")
        if sum(map(bool, (self.qat != "none", self.prune, self.clusters))) > 1:
            _bad("qat, prune and clusters each fine-tune the model; choose one of them per export")
        if not self.per_channel and not set(self.variants) <= set(INTEGER_VARIANTS):
            # Measured with TensorFlow 2.21: per-tensor dynamic-range MobileNet fell to chance (0.33).
            _bad(
                f"per_channel=false applies to quantize=int8 or int16x8 (per-tensor dynamic-range "
                f"weights ruin depthwise convolutions); got quantize={self.quantize!r}"
            )

    def _check_keep_float(self):
        if not self.keep_float or self.keep_float.strip() == "none":
            return
        names = [n.strip() for n in self.keep_float.split(",") if n.strip()]
        if "auto" in names and len(names) > 1:
            _bad(f"keep_float=auto chooses the layers itself; give auto alone or layer names (got {self.keep_float!r})")
        if self.qat != "none":
            _bad(
                f"keep_float leaves layers of a calibrated int8 model float; qat={self.qat} has no calibration to redo"
            )
        if "int16x8" in self.variants:
            # Measured with TensorFlow 2.21: its MLIR quantizer makes int16 models that fail to prepare.
            _bad("keep_float applies to quantize=int8 (TensorFlow 2.21 cannot leave layers float in int16x8)")
        if "int8" not in self.variants:
            _bad(f"keep_float applies to quantize=int8; got quantize={self.quantize!r}")


def io_type(io, mode):
    """The interface's type name of an integer variant ``mode`` (``int8``, ``uint8``, ``int16``), None
    for ``io=float``: ``uint8`` applies to int8 files; int16x8 files keep int16."""
    if io == "float":
        return None
    return "int16" if mode == "int16x8" else ("uint8" if io == "uint8" else "int8")


def variants(quantize):
    """The variants ``quantize`` names: one, a comma-separated list, or ``all``."""
    return VARIANTS if quantize == "all" else tuple(dict.fromkeys(q.strip() for q in quantize.split(",")))


def _bad(text):
    raise UsageError(f"exporter 'tflite': {text}")


AUDIO_FRONT_ENDS = ("MelSpectrogram", "STFTSpectrogram")  # keras.layers that turn a waveform into features


def takes_audio(model):
    """Whether ``model`` computes a spectrogram of its input waveform (``audio_cnn``)."""
    return any(
        type(layer).__name__ in AUDIO_FRONT_ENDS for layer in model._flatten_layers(include_self=False, recursive=True)
    )
