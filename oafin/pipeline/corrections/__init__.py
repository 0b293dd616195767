"""Corrections: turn open exceptions into proposed actions, approve them, push them exactly once.

- ``model``: the ``Action`` a proposal is, with its idempotency key;
- ``propose``: open exceptions in the warehouse → actions (no calls to any system);
- ``approval``: auto-approve rules, approver identity and segregation of duties;
- ``oa``: a batch approved as an approval instance in the company's OA (issue #17);
- the target system's write actions (``oafin.systems.<name>.actions``): how each action is
  sent, and how to see that it landed;
- ``push``: the ledger protocol (pending before the call, done after, check before re-sending).
"""
