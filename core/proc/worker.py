"""The child processes' side of ``core.proc.request``: ``python -m core.worker REQUEST ANSWER``
(``core/worker.py`` runs ``main``) makes the call REQUEST asks for and writes its ANSWER; a worker
of ``--processes N`` that fails or is stopped ends at once instead (``launch.end_rank``)."""

import os

from core.proc import launch, request


def main(argv):
    if not os.environ.get("KERASTACK_DEBUG"):
        from core.proc.quiet import filter_native_stderr

        filter_native_stderr()
    launch.pin()  # the CPUs the launcher gave this worker, before a framework starts its threads
    request_path, answer_path = argv
    answer = request.serve(request_path)
    if launch.launched() and "value" not in answer:
        launch.end_rank(answer)
    request.write_answer(answer_path, answer)
