"""The hooks a kerastack plugin can implement.

Every hook receives a ``register`` callable and may call it any number of times. The core attributes
each registration to the plugin that made it, so errors and ``kerastack plugins`` can name it.

A plugin implements hooks with ``core.hookimpl`` or, without importing ``core`` at all, with its own
``pluggy.HookimplMarker("kerastack")``. Plugin modules must not import TensorFlow, JAX, torch or keras
at module level: import keras inside ``build``/``load``/``export`` so that ``kerastack --help`` stays
instant.
"""

import pluggy

PROJECT = "kerastack"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_architectures(register):
    """Register model architectures. Called once, when the core first needs the architecture list.

    ``register(name, build, summary="", tasks=("classification",))``

    ``build(spec, **hparams) -> keras.Model``: ``spec`` is a :class:`core.DataSpec` (``input_shape``
    without the batch axis, ``num_classes``, ``task``, ``class_names``). Every hyperparameter is a
    keyword argument with a default; the core reads them from the signature, lists them in
    ``kerastack plugins`` and coerces ``--hp name=value`` to the default's type. Return a compiled
    model to keep your own loss and metrics; otherwise the core compiles it for the task.

    Example::

        @hookimpl
        def register_architectures(register):
            register("tiny", build_tiny, summary="one Dense layer", tasks=("classification",))
    """


@hookspec
def register_datasets(register):
    """Register datasets. Called once, when the core first needs the dataset list.

    ``register(name, load, summary="")``

    ``load(**options) -> core.Dataset``: options are keyword arguments with defaults, set with
    ``--data-opt k=v``. Each split of the Dataset is an ``(x, y)`` pair of numpy arrays (``y`` may be
    None for unsupervised tasks) or a ``keras.utils.PyDataset``. A loader whose splits stream batches
    takes a ``batch_size`` parameter: kerastack passes training's ``--batch-size`` to it, so that
    its batches are the training batches (``--data-opt batch_size`` is refused unless it agrees).

    Example::

        @hookimpl
        def register_datasets(register):
            register("moons", load_moons, summary="two interleaving half circles")
    """


@hookspec
def register_exporters(register):
    """Register deployment targets. Called once, when the core first needs the exporter list.

    ``register(name, export, summary="", backend=None, report=None)``

    ``export(ctx, **options) -> list[pathlib.Path]``: ``ctx`` has ``model`` (the run's keras.Model,
    loaded in this process), ``dataset`` (the run's ``core.Dataset``), ``out_dir`` (a
    ``pathlib.Path`` to write into, created) and ``run`` (the run's ``run.json`` as a dict). Options
    come from ``--opt k=v``. ``backend`` names the Keras backend the exporter needs (``"tensorflow"``
    for TFLite); the core runs it in a process with that backend whatever the training backend was.
    ``report(run_dir, out_dir) -> list[pathlib.Path]``, if given, writes a comparison of everything
    in ``out_dir`` with the Keras model; ``kerastack export`` calls it after ``export`` unless
    ``--no-report``, in the command's own process. To check the file it wrote against the Keras
    model (``verify.json``, as the built-in exporters do), ``core.check_export`` and
    ``core.record_result``.

    Example::

        @hookimpl
        def register_exporters(register):
            register("npz", export_weights, summary="weights as .npz")
    """


@hookspec
def register_callbacks(register):
    """Register Keras callbacks selectable with ``kerastack train --callback NAME``.

    Called once, when the core first needs the callback list.

    ``register(name, factory, summary="")``

    ``factory(**options) -> keras.callbacks.Callback``; the factory runs in the training process,
    after the backend is chosen, once per run that selects it.

    Example::

        @hookimpl
        def register_callbacks(register):
            register("stop_at_99", lambda: StopAt(0.99), summary="stop at 99% val accuracy")
    """


@hookspec
def register_tasks(register):
    """Register tasks: what a model's outputs mean. Called once, when the core first needs a task.

    ``register(name, make_task, summary="")``

    ``make_task() -> core.Task``: a subclass of :class:`core.Task`, or a function returning an
    instance of one (the plugin module then imports ``core`` only when the task is used). The task's
    attributes and methods say how the core compiles a model for it (loss, metrics), which targets a
    split is fitted on, how Keras and an exported model are scored batch by batch (``Task.scorer``),
    which number a run is listed by, what ``predictions.npz`` holds and how the device runner shows
    an output. A dataset names its
    task in ``Dataset.task``; an architecture lists the tasks it builds for (``register(...,
    tasks=(...))``). The built-in tasks (``plugins/tasks``) register through this hook too.

    Example::

        @hookimpl
        def register_tasks(register):
            register("ranking", Ranking, summary="scores ordered by relevance")
    """


@hookspec
def register_commands(cli):
    """Add subcommands to the command line. Called once, when the CLI is built.

    ``cli`` is the ``click.Group`` of ``kerastack``; add commands with ``@cli.command()``. Keep the
    module import light: import keras inside the command function.

    Example::

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def hello():
                click.echo("hello")
    """
