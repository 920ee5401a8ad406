"""``audio_cnn``: a small CNN on a log-mel spectrogram computed inside the model, so that the
exported file takes the raw waveform (what an app's microphone gives, and what MediaPipe's
AudioClassifier feeds a model)."""

from core import hookimpl

# Keras's MelSpectrogram clips its decibels at ``top_db`` below the largest value of the whole
# batch: a clip's features would then depend on the clips beside it (a batch of 32 in training, one
# on a device). Its floor is ``min_power`` (1e-10, -100 dB) and a full-scale sine reaches ~+50 dB
# with these frames, so a ``top_db`` of 200 never clips: every clip is scaled on its own.
TOP_DB = 200.0


@hookimpl
def register_architectures(register):
    register(
        "audio_cnn",
        build,
        summary="log-mel spectrogram (keras.layers.MelSpectrogram) inside the model, Conv2D blocks, softmax head",
        tasks=("classification",),
    )


def build(
    spec,
    sample_rate=16000,
    mel_bins=40,
    fft_length=512,
    frame_ms=25.0,
    stride_ms=10.0,
    filters=16,
    blocks=2,
    dropout=0.1,
):
    """The waveform (samples,) at ``sample_rate`` Hz → ``keras.layers.MelSpectrogram`` (frames of
    ``frame_ms`` every ``stride_ms``, a ``fft_length``-point FFT, ``mel_bins`` mel bands, power in
    decibels) → a ``BatchNormalization`` named ``log_mel_scaling`` (the decibels' mean and spread,
    learned) → ``blocks`` Conv2D+BatchNorm+ReLU blocks of ``filters`` doubling each block, 2×2
    max-pooling → global average pooling → ``dropout`` → class probabilities.

    ``sample_rate`` must be the data's (``sounds`` and ``audio_folder`` default to 16000): it places
    the mel bands. Every op is a LiteRT builtin (RFFT2D for the FFT); under int8 the converter keeps
    the spectrogram in float and quantizes the CNN (see docs/findings.md, "Sound")."""
    import keras
    from keras import layers

    shape = tuple(spec.input_shape)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise ValueError(f"audio_cnn needs waveforms (samples,) or (samples, 1); the dataset gives {shape}")
    frame, stride = round(sample_rate * frame_ms / 1000), round(sample_rate * stride_ms / 1000)
    if not 0 < stride <= frame <= fft_length:
        raise ValueError(
            f"audio_cnn needs 0 < stride_ms <= frame_ms and a frame of at most fft_length={fft_length} samples; "
            f"got frame_ms={frame_ms} ({frame} samples), stride_ms={stride_ms} ({stride} samples)"
        )
    if shape[0] < fft_length:
        raise ValueError(f"audio_cnn needs clips of at least fft_length={fft_length} samples; got {shape[0]}")
    inputs = keras.Input(shape, name="waveform")
    x = inputs if len(shape) == 1 else layers.Reshape((shape[0],))(inputs)
    x = layers.MelSpectrogram(
        fft_length=fft_length,
        sequence_stride=stride,
        sequence_length=frame,
        sampling_rate=sample_rate,
        num_mel_bins=mel_bins,
        top_db=TOP_DB,
        name="log_mel",
    )(x)  # (mel_bins, frames)
    x = layers.Reshape((*x.shape[1:], 1))(x)
    x = layers.BatchNormalization(momentum=0.9, name="log_mel_scaling")(x)
    for i in range(blocks):
        x = layers.Conv2D(filters * 2**i, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        if min(x.shape[1], x.shape[2]) > 2:
            x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="audio_cnn")
