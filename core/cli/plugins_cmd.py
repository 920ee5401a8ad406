import json

import click

from core.registry import KINDS


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def command(host, as_json):
    """List plugins: where each comes from, what it registers, and which are broken.

    \b
    Example:
      kerastack plugins
      plugins.architectures.cnn (built-in)
        architecture cnn: Conv2D+BatchNorm+ReLU blocks ... [classification]
          hyperparameters: filters=16 blocks=2 dense=64 dropout=0.25
      ...
    """
    info = describe(host)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for plugin in info["plugins"]:
        where = {"package": f"{plugin.get('package')} {plugin.get('version')}", "built-in": "built-in"}.get(
            plugin["origin"], plugin["location"]
        )
        status = f"  BROKEN: {plugin['error']}" if plugin.get("error") else ""
        click.echo(f"{plugin['name']} ({where}){status}")
        for kind, entries in plugin.get("registers", {}).items():
            for e in entries:
                tasks = f" [{', '.join(e['tasks'])}]" if e.get("tasks") else ""
                backend = f" (runs under {e['backend']})" if e.get("backend") else ""
                click.echo(f"  {kind} {e['name']}: {e['summary']}{tasks}{backend}")
                params = e.get("hyperparameters", e.get("options", {}))
                if params:
                    shown = " ".join(f"{k}={_show(v)}" for k, v in params.items())
                    label = "hyperparameters" if "hyperparameters" in e else "options"
                    click.echo(f"    {label}: {shown}")
    for c in info["conflicts"]:
        click.echo(f"CONFLICT: {c['kind']} {c['name']!r} registered by {' and '.join(c['plugins'])}")


def _show(value):
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def describe(host):
    """Everything ``kerastack plugins --json`` shows: each plugin of ``host`` with what it registers
    (every registry is built, so a plugin that fails to register is marked broken), and the conflicts."""
    regs = {kind: host.registry(kind) for kind in KINDS}
    out = []
    for info in host.plugins.values():
        d = info.describe()
        d["registers"] = {
            kind: [e.describe() for e in reg.entries.values() if e.plugin is info]
            + [e.describe() for es in reg.conflicts.values() for e in es if e.plugin is info]
            for kind, reg in regs.items()
        }
        d["registers"] = {k: v for k, v in d["registers"].items() if v}
        out.append(d)
    conflicts = [
        {"kind": kind, "name": name, "plugins": [e.plugin.name for e in es]}
        for kind, reg in regs.items()
        for name, es in reg.conflicts.items()
    ]
    return {"plugins": out, "conflicts": conflicts}
