"""A generated company-month: what the fake servers serve, and the exceptions it must raise."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

PROCESS_CODE = "PROC-OAFIN-EXPENSE"  # default-forms.md
TRUTH_COLUMNS = ("exception_type", "claim_no", "doc_no", "invoice_no", "budget_code")


@dataclass
class Dataset:
    """One generated company-month.

    ``dingtalk_instances``: DingTalk ``process_instance`` objects as ``/topapi/processinstance/get``
    returns them, each also carrying its id under ``process_instance_id`` (the server strips it).
    ``kingdee_rows``: FormId → rows keyed by field key (``FID`` plus the keys of default-forms.md).
    ``truth``: one row per exception the period must raise, keyed as DESIGN's exception table says.
    ``noise``: how many of each kind of harmless noise were written (informational).
    """

    seed: int
    period: str
    company_code: str
    process_code: str
    dingtalk_instances: list[dict[str, Any]]
    kingdee_rows: dict[str, list[dict[str, Any]]]
    truth: pd.DataFrame
    noise: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        counts = self.truth["exception_type"].value_counts().sort_index()
        return {
            "seed": self.seed,
            "period": self.period,
            "company_code": self.company_code,
            "process_code": self.process_code,
            "settings": self.settings,
            "counts": {
                "dingtalk_instances": len(self.dingtalk_instances),
                **{form: len(rows) for form, rows in self.kingdee_rows.items()},
                "truth": int(len(self.truth)),
                "truth_by_type": {str(k): int(v) for k, v in counts.items()},
            },
            "noise": dict(sorted(self.noise.items())),
        }

    def write(self, out_dir: Path) -> Path:
        """Write ``dingtalk_instances.json``, ``kingdee_<FormId>.json``, ``truth.csv``, ``manifest.json``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        _dump(out_dir / "dingtalk_instances.json", self.dingtalk_instances)
        for form, rows in self.kingdee_rows.items():
            _dump(out_dir / f"kingdee_{form}.json", rows)
        self.truth.to_csv(out_dir / "truth.csv", index=False, encoding="utf-8")
        _dump(out_dir / "manifest.json", self.manifest(), indent=2)
        return out_dir

    @classmethod
    def read(cls, in_dir: Path) -> Dataset:
        in_dir = Path(in_dir)
        manifest = json.loads((in_dir / "manifest.json").read_text(encoding="utf-8"))
        instances = json.loads((in_dir / "dingtalk_instances.json").read_text(encoding="utf-8"))
        rows = {
            path.stem.removeprefix("kingdee_"): json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(in_dir.glob("kingdee_*.json"))
        }
        truth = pd.read_csv(in_dir / "truth.csv", dtype=str, keep_default_na=False, encoding="utf-8")
        return cls(
            seed=manifest["seed"],
            period=manifest["period"],
            company_code=manifest["company_code"],
            process_code=manifest["process_code"],
            dingtalk_instances=instances,
            kingdee_rows=rows,
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


def _dump(path: Path, obj: Any, indent: int | None = None) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")
