"""Test-only runner: the ``oafin`` command in this process, killed right after one push's call.

``python -m tests.run_with_crash KEY_PREFIX corrections --config ... --apply`` installs the push's
test seam (``oafin.pipeline.corrections.push.after_send``) to SIGKILL this process after the call
for the action whose idempotency key starts with KEY_PREFIX, before its ledger write.
``after-create`` instead of KEY_PREFIX kills it right after the OA's create call of an approval
batch, before the instance id is recorded (``oafin.pipeline.corrections.oa.after_create``). Nothing in
the product reads an environment variable for this: only a process started through this file can
be made to crash (issue #10 item 16).
"""

from __future__ import annotations

import os
import signal
import sys

from oafin.pipeline.corrections import push


def main(argv: list[str]) -> int:
    target, rest = argv[0], argv[1:]

    def crash(key: str) -> None:
        if key.startswith(target):
            os.kill(os.getpid(), signal.SIGKILL)

    if target == "after-create":
        from oafin.pipeline.corrections import oa

        oa.after_create = lambda batch_id: os.kill(os.getpid(), signal.SIGKILL)
    else:
        push.after_send = crash
    from oafin.cli import main as cli

    return cli(rest)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
