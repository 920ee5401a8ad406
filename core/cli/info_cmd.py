import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import click

from core.backend import BACKENDS
from core.cli.plugins_cmd import describe
from core.engine.distributed import world
from core.runs.versions import package_version

PACKAGES = ("keras", "numpy", "ai-edge-litert", "pluggy")
# Environment variables that change what kerastack or the frameworks do; shown when set.
ENVIRONMENT = (
    "KERAS_BACKEND",
    "KERASTACK_PLUGINS",
    "KERASTACK_DISABLE_PLUGINS",
    "CUDA_VISIBLE_DEVICES",
    "JAX_PLATFORMS",
    "TF_USE_LEGACY_KERAS",
)
MARK = "KERASTACK_INFO "
# Each framework is imported in its own process: listing devices needs the import (seconds, hundreds
# of MB), and TensorFlow, JAX and torch in one process can fight over CUDA.
PROBES = {
    "tensorflow": """
import tensorflow as tf
devices = []
for d in tf.config.list_physical_devices():
    name = tf.config.experimental.get_device_details(d).get("device_name") if d.device_type == "GPU" else None
    devices.append(d.device_type + (f" {d.name.rsplit(':', 1)[-1]}: {name}" if name else ""))
info = {"version": tf.__version__, "devices": devices}
""",
    "jax": """
import jax
info = {"version": jax.__version__,
        "devices": [d.platform.upper() + ("" if d.platform == "cpu" else f" {d.id}: {d.device_kind}")
                    for d in jax.devices()]}
""",
    "torch": """
import torch
devices = ["CPU"] + [f"GPU {i}: {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
    devices.append("MPS")
info = {"version": torch.__version__, "devices": devices, "cuda": torch.version.cuda}
""",
}
TIMEOUT_S = 120


@click.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-devices", is_flag=True, help="Skip importing the frameworks to list their devices (instant).")
@click.pass_obj
def command(host, as_json, no_devices):
    """Show what a bug report needs: versions, backends and their devices, plugins.

    Each installed backend is imported in its own process to list its devices (a few seconds).

    \b
    Example:
      kerastack info
      kerastack 0.1.0 (/home/me/kerastack)  Python 3.11.7 (CPython)  Linux-6.8.0-x86_64-with-glibc2.39
      keras 3.15.1  numpy 2.4.6  ai-edge-litert 2.3.0  pluggy 1.7.0
      backend tensorflow (default)
      tensorflow 2.21.0   CPU, GPU 0: NVIDIA H100 80GB HBM3
      jax 0.10.2          GPU 0: NVIDIA H100 80GB HBM3
      torch 2.13.0        CPU, GPU 0: NVIDIA H100 80GB HBM3
      plugins: 19 loaded, 1 broken
        plugin 'acme' (acme-kerastack 0.2): ImportError: No module named 'scipy'
    """
    info = gather(host, devices=not no_devices)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    k = info["kerastack"]
    click.echo(f"kerastack {k['version']} ({k['location']})  Python {info['python']}  {info['platform']}")
    click.echo("  ".join(f"{name} {version or '(not installed)'}" for name, version in info["packages"].items()))
    click.echo(f"backend {info['backend']['name']} ({info['backend']['from']})")
    backends = {name: f"{name} {b['version'] or '(not installed)'}" for name, b in info["backends"].items()}
    if no_devices:
        click.echo("  ".join(backends.values()))
    else:
        width = max(map(len, backends.values())) + 2
        for name, b in info["backends"].items():
            shown = b.get("error") or ", ".join(b.get("devices") or [])
            click.echo((backends[name].ljust(width) + shown).rstrip())
    if info["environment"]:
        click.echo("env " + "  ".join(f"{k}={v}" for k, v in info["environment"].items()))
    if info["process"]:
        p = info["process"]
        click.echo(f"process rank {p['rank']} of {p['processes']} (local rank {p['local_rank']}, from {p['from']})")
    plugins = info["plugins"]
    click.echo(f"plugins: {plugins['loaded']} loaded, {len(plugins['broken'])} broken")
    for broken in plugins["broken"]:
        click.echo(f"  {broken['label']}: {broken['error']}")


def gather(host, devices=True):
    """Everything ``kerastack info`` shows, as JSON-able data."""
    import core

    describe(host)  # registers every plugin: an error while registering marks it broken too
    backend = os.environ.get("KERAS_BACKEND")
    return {
        "kerastack": {"version": package_version("kerastack"), "location": str(Path(core.__file__).parent.parent)},
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "executable": sys.executable,
        "platform": platform.platform(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "backend": {"name": backend or "tensorflow", "from": "KERAS_BACKEND" if backend else "default"},
        "backends": probe_backends(devices),
        "environment": {name: os.environ[name] for name in ENVIRONMENT if os.environ.get(name)},
        "process": _process(),
        "plugins": {
            "loaded": len(host.plugins) - len(host.broken),
            "broken": [{"name": p.name, "label": p.label(), "error": p.error} for p in host.broken],
        },
    }


def _process():
    """This process's rank and the process count, when a launcher started it (torchrun, SLURM,
    ``TF_CONFIG``, ``KERAS_DISTRIBUTION_*``, or ``kerastack train --processes``); else None."""
    here = world()
    if here.size == 1 and os.environ.get("SLURM_NTASKS", "1") != "1":  # srun: SLURM's own variables
        return {
            "rank": int(os.environ.get("SLURM_PROCID", 0)),
            "processes": int(os.environ["SLURM_NTASKS"]),
            "local_rank": int(os.environ.get("SLURM_LOCALID", 0)),
            "from": "SLURM_PROCID/SLURM_NTASKS",
        }
    if here.size == 1:
        return None
    return {"rank": here.rank, "processes": here.size, "local_rank": here.local_rank, "from": here.source}


def probe_backends(devices=True, timeout=TIMEOUT_S):
    """``{backend: {"installed", "version", "devices" | "error"}}``, the probes running side by side."""
    out = {
        name: {"installed": package_version(name) is not None, "version": package_version(name)} for name in BACKENDS
    }  # each backend's package has the backend's name
    if not devices:
        return out
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    running = {}
    for name, code in PROBES.items():
        if out[name]["installed"]:
            script = f"import json\n{code}\nprint({MARK!r} + json.dumps(info))"
            running[name] = subprocess.Popen(
                [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
    deadline = time.monotonic() + timeout
    for name, proc in running.items():
        try:
            stdout, stderr = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            out[name]["error"] = f"listing devices timed out after {timeout} s"
            continue
        found = [line[len(MARK) :] for line in stdout.splitlines() if line.startswith(MARK)]
        if proc.returncode == 0 and found:
            out[name].update(json.loads(found[-1]))
        else:
            last = [line for line in stderr.splitlines() if line.strip()][-1:] or [f"exit code {proc.returncode}"]
            out[name]["error"] = f"import failed: {last[0].strip()}"
    return out
