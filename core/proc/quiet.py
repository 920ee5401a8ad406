"""Keep native-library start-up noise off the user's terminal.

TensorFlow and XLA write C++ log lines straight to file descriptor 2 (oneDNN, CUDA probing, cpu
features, converter passes); ``TF_CPP_MIN_LOG_LEVEL`` does not silence all of them. We route fd 2
through a pipe and drop the lines that have the C++ logger's shape; everything else passes through.
``--debug`` leaves stderr alone.
"""

import atexit
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.\-]+:\d+\]"  # absl / glog lines
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .*rebuild TensorFlow"
    rb"|fully_quantize: \d+, inference_type: \d+"  # the TFLite quantizer's settings
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"  # LiteRT, each interpreter (the quantization debugger's too)
    rb"|An NVIDIA GPU may be present on this machine, but a CUDA-enabled jaxlib is not installed"
    # The TFLite converter's MLIR diagnostics: the exporter's one-line error says what they say.
    rb"|(?:<unknown>:\d+: )?(?:error: )?loc\(.*\): (?:error|warning|note|remark): "
    rb"|error: failed while converting: '"
    rb"|Some ops are not supported by the native TFLite runtime"
    rb"|TF Select ops: \w"
    rb"|Details:$"
    rb"|\ttf\.\w+\("
    rb")"
)

_state = {}


def filter_native_stderr():
    """Start filtering fd 2 for the rest of the process (idempotent). Child processes inherit it."""
    if _state:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_pump, args=(read_end, real), daemon=True)
    thread.start()
    _state.update(real=real, thread=thread)
    atexit.register(restore_stderr)


def real_stderr():
    """The descriptor of the stderr the filter replaced (a progress bar draws there), or None."""
    return _state.get("real")


def _pump(read_end, real):
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending, dropped = b"", False
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = []
            for line in lines:
                if not noise(line, dropped):
                    kept.append(line + b"\n")
                dropped = noise(line, dropped)
            if kept:
                os.write(real, b"".join(kept))
        if pending and not noise(pending, dropped):
            os.write(real, pending)


def noise(line, after_noise=False):
    """Whether ``line`` (bytes, no newline) is dropped: a native logger's line, or a blank line that
    ends a block of them (the converter's diagnostics end with one)."""
    return bool(NOISE.match(line)) or (after_noise and not line.strip())


def restore_stderr():
    """Put the real stderr back and let the pump drain what was written before (at exit, and before
    an ``os._exit``, which does not wait for the pump's thread). Idempotent."""
    if not _state or _state.get("restored"):
        return
    try:
        sys.stderr.flush()
    except Exception:
        pass
    os.dup2(_state["real"], 2)  # closes the pipe's last write end held by this process
    _state["thread"].join(timeout=2)
    _state["restored"] = True
