"""A generated company-month in the standard's terms, and the exceptions it must raise.

The month is system-neutral (``model.py``): claims, bills, payments and the people behind them.
Each system's twin renders it into that system's API shapes when the twin is created
(``Dataset.rendered`` keeps one rendering per twin), so any OA twin paired with any finance
twin serves the same facts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from oafin.sandbox.codes import Person
from oafin.sandbox.model import Bill, Claim, Invoice, Payment

PROCESS_CODE = "PROC-OAFIN-EXPENSE"  # the OA form claims are filed on (default-forms.md)
TRUTH_COLUMNS = ("exception_type", "claim_no", "doc_no", "invoice_no", "budget_code")
MONTH_FILE = "month.json"

T = TypeVar("T")


@dataclass
class Dataset:
    """One generated company-month.

    ``people``: everyone in the code tables; ``claims`` (in submission order), ``bills`` and
    ``payments`` (in internal-id order): the month's facts (``oafin.sandbox.model``).
    ``process_code``: the OA form the claims are filed on. ``truth``: one row per exception the
    period must raise, keyed as DESIGN's exception table says. ``noise``: how many of each kind
    of harmless noise were written (informational).
    """

    seed: int
    period: str
    company_code: str
    process_code: str
    people: list[Person]
    claims: list[Claim]
    bills: list[Bill]
    payments: list[Payment]
    truth: pd.DataFrame
    noise: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    _renders: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def rendered(self, key: str, render: Callable[[Dataset], T]) -> T:
        """``render(self)``, computed once per ``key`` (a twin's name): twins and tests share it.

        Twins copy what they change (a write-back), so the shared rendering stays as generated.
        """
        if key not in self._renders:
            self._renders[key] = render(self)
        result: T = self._renders[key]
        return result

    def manifest(self) -> dict[str, Any]:
        counts = self.truth["exception_type"].value_counts().sort_index()
        return {
            "seed": self.seed,
            "period": self.period,
            "company_code": self.company_code,
            "process_code": self.process_code,
            "settings": self.settings,
            "counts": {
                "claims": len(self.claims),
                "bills": len(self.bills),
                "payments": len(self.payments),
                "truth": int(len(self.truth)),
                "truth_by_type": {str(k): int(v) for k, v in counts.items()},
            },
            "noise": dict(sorted(self.noise.items())),
        }

    def write(self, out_dir: Path) -> Path:
        """Write ``month.json`` (the neutral month), ``truth.csv`` and ``manifest.json``.

        A system's rendering of the month is written by the sandbox server
        (``oafin.sandbox_server.write_dataset``), which knows the twins.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        _dump(out_dir / MONTH_FILE, month_json(self))
        self.truth.to_csv(out_dir / "truth.csv", index=False, encoding="utf-8")
        _dump(out_dir / "manifest.json", self.manifest(), indent=2)
        return out_dir

    @classmethod
    def read(cls, in_dir: Path) -> Dataset:
        in_dir = Path(in_dir)
        manifest = json.loads((in_dir / "manifest.json").read_text(encoding="utf-8"))
        month = json.loads((in_dir / MONTH_FILE).read_text(encoding="utf-8"))
        truth = pd.read_csv(in_dir / "truth.csv", dtype=str, keep_default_na=False, encoding="utf-8")
        people, claims, bills, payments = month_from_json(month)
        return cls(
            seed=manifest["seed"],
            period=manifest["period"],
            company_code=manifest["company_code"],
            process_code=manifest["process_code"],
            people=people,
            claims=claims,
            bills=bills,
            payments=payments,
            truth=truth[list(TRUTH_COLUMNS)],
            noise=manifest.get("noise", {}),
            settings=manifest.get("settings", {}),
        )


def truth_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    """Truth rows as a frame of text, every key column present (``""`` where not applicable)."""
    frame = pd.DataFrame(
        [{c: r.get(c, "") for c in TRUTH_COLUMNS} for r in rows], columns=list(TRUTH_COLUMNS)
    )
    frame = frame.astype(str).sort_values(list(TRUTH_COLUMNS)).reset_index(drop=True)
    return frame


# -- the neutral month as JSON (people by person_id, bills by doc_id, claims by source_id) ------


def month_json(ds: Dataset) -> dict[str, Any]:
    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    def invoice(inv: Invoice) -> dict[str, Any]:
        return {**asdict(inv), "issued": inv.issued.isoformat()}

    claims = [
        {
            **{k: v for k, v in vars(c).items() if k not in _CLAIM_REFS},
            "originator": c.originator.person_id,
            "created": when(c.created),
            "finished": when(c.finished),
            "approvers": [p.person_id for p in c.approvers],
            "approval_times": [when(t) for t in c.approval_times],
            "refuser": c.refuser.person_id if c.refuser else None,
            "invoices": [invoice(i) for i in c.invoices],
        }
        for c in ds.claims
    ]
    bills = [
        {
            **vars(b),
            "claim": b.claim.source_id if b.claim else None,
            "when": when(b.when),
            "proposer": b.proposer.person_id,
        }
        for b in ds.bills
    ]
    payments = [
        {
            **vars(p),
            "when": when(p.when),
            "payee": p.payee.person_id,
            "bills": [b.doc_id for b in p.bills],
        }
        for p in ds.payments
    ]
    return {"people": [asdict(p) for p in ds.people], "claims": claims, "bills": bills, "payments": payments}


_CLAIM_REFS = ("originator", "created", "finished", "approvers", "approval_times", "refuser", "invoices")


def month_from_json(
    month: dict[str, Any],
) -> tuple[list[Person], list[Claim], list[Bill], list[Payment]]:
    people = [Person(**p) for p in month["people"]]
    by_id = {p.person_id: p for p in people}

    def when(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text is not None else None

    claims = []
    for c in month["claims"]:
        claim = Claim(
            **{k: v for k, v in c.items() if k not in _CLAIM_REFS},
            originator=by_id[c["originator"]],
            created=datetime.fromisoformat(c["created"]),
            finished=when(c["finished"]),
            approvers=[by_id[i] for i in c["approvers"]],
            approval_times=[datetime.fromisoformat(t) for t in c["approval_times"]],
            refuser=by_id[c["refuser"]] if c["refuser"] else None,
            invoices=[Invoice(**{**i, "issued": date.fromisoformat(i["issued"])}) for i in c["invoices"]],
        )
        claims.append(claim)
    by_source = {c.source_id: c for c in claims}
    bills = [
        Bill(
            **{
                **b,
                "claim": by_source[b["claim"]] if b["claim"] else None,
                "when": datetime.fromisoformat(b["when"]),
                "proposer": by_id[b["proposer"]],
            }
        )
        for b in month["bills"]
    ]
    by_doc = {b.doc_id: b for b in bills}
    payments = [
        Payment(
            **{
                **p,
                "when": datetime.fromisoformat(p["when"]),
                "payee": by_id[p["payee"]],
                "bills": [by_doc[i] for i in p["bills"]],
            }
        )
        for p in month["payments"]
    ]
    return people, claims, bills, payments


def _dump(path: Path, obj: Any, indent: int | None = None) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")
