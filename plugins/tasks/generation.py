"""``generation``: new samples from noise (GANs, diffusion); the architecture compiles its own training."""

from core import Task, hookimpl


class Generation(Task):
    summary = "new samples like the inputs (the architecture compiles its own loss)"
    supervised = False

    def targets(self, x, y):
        return x, None


@hookimpl
def register_tasks(register):
    register("generation", Generation, summary=Generation.summary)
