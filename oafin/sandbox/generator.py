"""Seeded generator of one company-month, with the exceptions it must raise (the ground truth).

``generate()`` writes claims approved (or submitted) in the period plus ~30 % as many in the
40 days before it (counterparts of the period's finance documents), then injects each
exception type into claims or documents of its own, so that one injection is exactly one
truth row and triggers no other type. Scope and defaults follow DESIGN, "Scope of a
period's run": as_of = period end, payment SLA 5 days, tolerance 1 fen, lookback 62 days.

Safety margins keep every finding unambiguous under either reading of a boundary
(as_of at 24:00 or at 23:59:59; "days" as elapsed time or calendar dates):
- an injected claim that needs a whole chain is approved ≥ 6 days before the period end,
  a missing one ≥ 6 days, a late one ≥ 8 days before it;
- a clean chain is paid within 4 days of approval (4.5 for a duplicate payment's second
  payment), a late payment comes ≥ 6.5 days after approval;
- a claim left unbilled or unpaid at the end was approved less than 4 days before it, a
  quarantined approved claim less than 4 days 6 h before it (so never due).
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from oafin.sandbox.codes import Codes, Person, load_codes
from oafin.sandbox.dataset import PROCESS_CODE, Dataset, truth_frame
from oafin.sandbox.draw import Draw
from oafin.sandbox.finance_fields import (
    fen_text,
    fen_thousands,
    fen_yen_short,
    full_width,
    make_unionpay_card,
)
from oafin.sandbox.ledger import Ledger
from oafin.sandbox.model import PADDED_FIELDS, Bill, Claim, ClaimStatus, Invoice
from oafin.sandbox.tables import TABLES_DIR
from oafin.standard import BUSINESS_TZ

SHANGHAI: Final = ZoneInfo(BUSINESS_TZ)
SLA: Final = timedelta(days=5)
LOOKBACK_DAYS: Final = 62
PRIOR_DAYS: Final = 40
PRIOR_SHARE: Final = 0.3
MIN_CLAIMS: Final = 50
INJECTION_RATE: Final = 0.015  # of n_claims, per exception type
OVERRUN_CODES: Final = 3
# A budget line ends clearly over (> 1 + margin) or clearly under (< 1 - margin) its budget.
BUDGET_MARGIN: Final = 0.03

CLAIM_FINDINGS: Final = (
    "MISSING_IN_FINANCE",
    "AMOUNT_MISMATCH",
    "STATUS_MISMATCH",
    "PAYEE_MISMATCH",
    "DUPLICATE_PAYMENT",
    "DUPLICATE_INVOICE",
    "INVALID_INVOICE",
    "SELF_APPROVAL",
    "APPROVAL_LIMIT",
    "LATE_PAYMENT",
    "UNMAPPED_CODE",
    "CONTRACT_VIOLATION",
)
# Findings whose claim gets an ordinary bill + payment besides the finding itself.
SINGLE_CHAIN: Final = ("DUPLICATE_INVOICE", "INVALID_INVOICE", "SELF_APPROVAL", "APPROVAL_LIMIT")

UNKNOWN_EXPENSE_LABELS: Final = ("会议费", "咨询费", "快递费", "团建费")
UNKNOWN_DEPARTMENTS: Final = ("战略发展部", "法务部", "董事会办公室")
CITIES: Final = ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安")
TITLES: Final = {
    "差旅费": ("赴{city}拜访客户差旅费", "{city}项目现场出差", "参加{city}行业展会差旅"),
    "办公费": ("采购办公用品", "打印耗材", "会议室白板及文具"),
    "业务招待费": ("招待{city}客户", "商务宴请"),
    "交通费": ("市内打车费", "加班交通费"),
    "培训费": ("外部培训课程", "专业资格考试培训"),
    "通讯费": ("手机话费", "宽带费用"),
}


def generate(
    seed: int = 7,
    period: str = "2026-10",
    n_claims: int = 3000,
    company_code: str = "C01",
    tables_dir: Path = TABLES_DIR,
) -> Dataset:
    """One company-month for ``period``, deterministic for ``seed`` (no global state, no clock)."""
    if n_claims < MIN_CLAIMS:
        raise ValueError(f"n_claims must be at least {MIN_CLAIMS} to hold every kind of finding")
    return _Generator(seed, period, n_claims, company_code, load_codes(Path(tables_dir))).run()


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """``2026-10`` → its first moment and the first moment of the next month, China time."""
    year, month = (int(part) for part in period.split("-"))
    start = datetime(year, month, 1, tzinfo=SHANGHAI)
    return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=SHANGHAI)


class _Generator:
    def __init__(self, seed: int, period: str, n_claims: int, company_code: str, codes: Codes) -> None:
        self.seed = seed
        self.period = period
        self.n = n_claims
        self.company_code = company_code
        self.codes = codes
        self.rng = random.Random(seed)
        self.draw = Draw(self.rng)
        self.noise: Counter[str] = Counter()
        self.start, self.end = period_bounds(period)
        self.due = self.end - SLA  # approved at or before this, the chain must be complete
        self.ledger = Ledger(self.draw, self.end, self.noise)
        self.claims: list[Claim] = []
        self.findings: list[tuple[str, Claim | Bill | Invoice]] = []
        top = max(p.limit_fen for p in codes.people)
        self.top = [p for p in codes.people if p.limit_fen == top]
        self.staff = [p for p in codes.people if p.limit_fen < top]  # everyone who files claims
        self.by_role: dict[str, list[Person]] = defaultdict(list)
        for p in self.staff:
            self.by_role[p.role].append(p)
        self.by_dept: dict[str, list[Person]] = defaultdict(list)
        for p in codes.people:
            self.by_dept[p.dept_code].append(p)
        self.cards: dict[str, str] = {}
        self.reused_invoices: set[str] = set()

    # -- the plan --------------------------------------------------------------------------------

    def run(self) -> Dataset:
        per_type = max(2, round(self.n * INJECTION_RATE))
        plan = [kind for kind in CLAIM_FINDINGS for _ in range(per_type)]
        self.rng.shuffle(plan)
        self._prior_claims(round(self.n * PRIOR_SHARE))
        self._period_claims(max(0, self.n - len(plan)))
        for kind in plan:
            self._inject(kind)
        self._push_budgets()
        self._number_claims()
        self._write_amount_texts()
        self._settle()
        for _ in range(per_type):
            self._orphan_bill()
        self.ledger.number()
        return self._dataset()

    def _prior_claims(self, count: int) -> None:
        """Claims of the 40 days before the period: clean, some settled inside the period."""
        lo = self.start - timedelta(days=PRIOR_DAYS)
        boundary = max(1, round(self.n * 0.004))
        for i in range(count):
            r = self.rng.random()
            if i < boundary:  # approved 23:30-23:59 on the day before the period (UTC: 15:30-15:59)
                self._approved(
                    "clean",
                    self._originator(),
                    self.draw.between(self.start - timedelta(minutes=30), self.start - timedelta(minutes=1)),
                    False,
                )
            elif r < 0.92:
                self._approved("clean", self._originator(), self.draw.working(lo, self.start), False)
            else:
                self._unapproved("clean", self._originator(), lo, self.start - timedelta(days=1), False)

    def _period_claims(self, count: int) -> None:
        boundary = max(2, round(self.n * 0.004))
        for i in range(count):
            r = self.rng.random()
            if i < boundary:  # approved 00:00-00:30 on the first day: UTC puts it in the month before
                when = self.draw.between(self.start, self.start + timedelta(minutes=30))
            elif i < 2 * boundary:  # approved 23:30-23:59 on the last day
                when = self.draw.between(self.end - timedelta(minutes=30), self.end - timedelta(minutes=1))
            elif r < 0.88:
                when = self.draw.working(self.start, self.end)
            else:
                self._unapproved("clean", self._originator(), self.start, self.end - timedelta(days=1), True)
                continue
            if i < 2 * boundary:
                self.noise["approved_at_period_boundary"] += 1
            self._approved("clean", self._originator(), when, True)

    # -- claims ----------------------------------------------------------------------------------

    def _originator(self, roles: tuple[str, ...] = ("employee", "manager", "director")) -> Person:
        weights = {"employee": 85, "manager": 10, "director": 5}
        present = [r for r in roles if self.by_role.get(r)] or list(self.by_role)
        role = self.rng.choices(present, weights=[weights.get(r, 1) for r in present])[0]
        return self.rng.choice(self.by_role[role])

    def _new(
        self, kind: str, originator: Person, created: datetime, in_period: bool, amount: int | None = None
    ) -> Claim:
        rng = self.rng
        label = rng.choice(list(self.codes.expense_types))
        title = rng.choice(TITLES.get(label, ("费用报销",))).format(city=rng.choice(CITIES))
        project = rng.random() < 0.45
        amount = self.draw.amount() if amount is None else amount
        if originator.person_id not in self.cards:
            self.cards[originator.person_id] = make_unionpay_card(rng)
        claim = Claim(
            kind=kind,
            source_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            originator=originator,
            created=created,
            status="pending",
            amount_fen=amount,
            expense_label=label,
            dept_label=originator.department,
            title=title,
            budget_code=f"B-{originator.dept_code}-{'PRJ' if project else 'OPS'}",
            project_code=f"PRJ-{originator.dept_code}-{rng.randint(1, 40):03d}" if project else "",
            card=self.cards[originator.person_id],
            in_period=in_period,
        )
        claim.invoices = self.draw.invoices(amount, created.date())
        for field in PADDED_FIELDS:
            if rng.random() < 0.03:
                claim.text_pad[field] = rng.choice((" ", "  ", "\u3000"))
                self.noise["form_text_trailing_space"] += 1
        self.claims.append(claim)
        return claim

    def _approved(
        self,
        kind: str,
        originator: Person,
        approved_at: datetime,
        in_period: bool,
        amount: int | None = None,
        approvers: list[Person] | None = None,
    ) -> Claim:
        created = approved_at - timedelta(seconds=self.rng.randint(20 * 60, 72 * 3600))
        claim = self._new(kind, originator, created, in_period, amount)
        self._approve(claim, approved_at, approvers)
        return claim

    def _approve(self, claim: Claim, approved_at: datetime, approvers: list[Person] | None = None) -> None:
        claim.status, claim.finished = "approved", approved_at
        claim.approvers = approvers or self._approvers_for(claim.originator, claim.amount_fen)
        n = len(claim.approvers)
        span = approved_at - claim.created
        claim.approval_times = [claim.created + span * (i + 1) / n for i in range(n)]

    def _unapproved(
        self,
        kind: str,
        originator: Person,
        lo: datetime,
        hi: datetime,
        in_period: bool,
        status: ClaimStatus | None = None,
    ) -> Claim:
        """A claim submitted in ``[lo, hi)`` and never approved: pending, rejected or withdrawn."""
        claim = self._new(kind, originator, self.draw.working(lo, hi), in_period)
        if status is None:
            status = self.rng.choices(("pending", "rejected", "withdrawn"), weights=(40, 35, 25))[0]
        chain = self._approvers_for(originator, claim.amount_fen)
        if status == "pending":
            if len(chain) > 1 and self.rng.random() < 0.5:  # the first level agreed already
                claim.approvers = chain[:1]
                claim.approval_times = [
                    self.draw.after(claim.created, timedelta(minutes=10), timedelta(hours=8))
                ]
            return claim
        claim.finished = min(
            self.draw.after(claim.created, timedelta(hours=1), timedelta(days=2)),
            self.end - timedelta(minutes=1),
        )
        if status == "withdrawn":
            claim.status = "withdrawn"
            return claim
        claim.status = "rejected"
        if len(chain) > 1 and self.rng.random() < 0.5:
            claim.approvers, claim.approval_times = (
                chain[:1],
                [claim.created + (claim.finished - claim.created) / 2],
            )
            claim.refuser = chain[1]
        else:
            claim.refuser = chain[0]
        return claim

    def _approvers_for(self, originator: Person, amount: int) -> list[Person]:
        """1-2 people of the originator's department whose limit covers the amount; else the top role."""
        able = [
            p
            for p in self.by_dept[originator.dept_code]
            if p is not originator and p not in self.top and p.limit_fen > amount
        ]
        if not able:
            return [self.rng.choice([p for p in self.top if p is not originator])]
        lowest = min(p.limit_fen for p in able)
        chain = [self.rng.choice([p for p in able if p.limit_fen == lowest])]
        higher = [p for p in able if p.limit_fen > lowest]
        if higher and self.rng.random() < 0.5:
            chain.append(self.rng.choice(higher))
        return chain

    # -- injections ------------------------------------------------------------------------------

    def _inject(self, kind: str) -> None:
        rng, draw = self.rng, self.draw
        settled_by = self.end - timedelta(days=6)  # room for a whole chain inside the SLA
        if kind == "STATUS_MISMATCH":
            status: ClaimStatus = rng.choice(("rejected", "withdrawn"))
            claim = self._unapproved(kind, self._originator(), self.start, settled_by, True, status)
        elif kind in ("UNMAPPED_CODE", "CONTRACT_VIOLATION"):
            # Quarantined: no finance documents, and either still running or approved too late
            # to be due, so no reading of quarantine can turn them into a second finding.
            if rng.random() < 0.4:
                claim = self._unapproved(kind, self._originator(), self.start, self.end, True, "pending")
            else:
                late = draw.working(self.due + timedelta(hours=18), self.end - timedelta(hours=1))
                claim = self._approved(kind, self._originator(), late, True)
            self._break_form(claim)
        elif kind == "SELF_APPROVAL":
            me = self._originator(("manager", "director"))
            amount = draw.amount()
            while amount >= me.limit_fen:
                amount = draw.amount()
            claim = self._approved(kind, me, draw.working(self.start, settled_by), True, amount, [me])
            others = [p for p in self._approvers_for(me, amount) if p.limit_fen > me.limit_fen]
            if others and rng.random() < 0.5:
                self._approve(claim, claim.finished_at, rng.sample([me, others[0]], 2))
        elif kind == "APPROVAL_LIMIT":
            me = self._originator(("employee",))
            low = rng.choice([p for p in self.by_dept[me.dept_code] if p.role == "manager"] or self.staff)
            if rng.random() < 0.1:
                low = rng.choice([p for p in self.by_dept[me.dept_code] if p.role == "director"] or [low])
            amount = low.limit_fen + rng.randint(100, max(100, low.limit_fen // 5))
            chain = [low] + ([] if rng.random() < 0.5 else self._approvers_for(me, amount)[:1])
            claim = self._approved(kind, me, draw.working(self.start, settled_by), True, amount, chain)
        elif kind == "DUPLICATE_INVOICE":
            claim = self._duplicate_invoice(draw.working(self.start, settled_by))
        elif kind == "LATE_PAYMENT":
            claim = self._approved(
                kind, self._originator(), draw.working(self.start, self.end - timedelta(days=8)), True
            )
        elif kind == "MISSING_IN_FINANCE":
            approved_at = draw.working(self.start, self.due - timedelta(days=1))
            claim = self._approved(kind, self._originator(), approved_at, True)
        else:  # AMOUNT_MISMATCH, PAYEE_MISMATCH, DUPLICATE_PAYMENT, INVALID_INVOICE
            claim = self._approved(kind, self._originator(), draw.working(self.start, settled_by), True)
        if kind == "INVALID_INVOICE":
            self.findings.append((kind, self._break_invoice(claim)))
        elif kind != "DUPLICATE_INVOICE":
            self.findings.append((kind, claim))

    def _break_form(self, claim: Claim) -> None:
        """UNMAPPED_CODE: a label the code tables do not know. CONTRACT_VIOLATION: no usable amount."""
        rng = self.rng
        if claim.kind == "UNMAPPED_CODE":
            if rng.random() < 0.5:
                claim.expense_label = rng.choice(
                    [x for x in UNKNOWN_EXPENSE_LABELS if x not in self.codes.expense_types]
                )
            else:
                claim.dept_label = rng.choice(
                    [x for x in UNKNOWN_DEPARTMENTS if x not in self.codes.departments]
                )
            return
        claim.amount_text = rng.choice(("", None, "-" + fen_text(claim.amount_fen)))

    def _break_invoice(self, claim: Claim) -> Invoice:
        """INVALID_INVOICE: one invoice with a bad format or ``total != ex_tax + tax``."""
        rng = self.rng
        inv = rng.choice(claim.invoices)
        self.draw.invoice_keys.discard(inv.key)
        variant = rng.choice(("arithmetic", "code", "number"))
        if variant == "arithmetic":
            delta = rng.choice((-1, 1)) * rng.randint(1, 300)
            inv.tax_fen = inv.tax_fen + delta if inv.tax_fen + delta >= 0 else inv.tax_fen + abs(delta)
        elif variant == "code" and inv.code:
            inv.code = inv.code[:-1] if rng.random() < 0.5 else inv.code + str(rng.randrange(10))
        else:
            inv.number = inv.number[1:] if rng.random() < 0.5 else inv.number + str(rng.randrange(10))
        self.draw.invoice_keys.add(inv.key)
        return inv

    def _duplicate_invoice(self, approved_at: datetime) -> Claim:
        """DUPLICATE_INVOICE: a later claim carries an invoice of an earlier, approved, clean claim."""
        rng = self.rng
        created = approved_at - timedelta(seconds=rng.randint(20 * 60, 72 * 3600))
        earlier = [
            inv
            for c in self.claims
            if c.kind == "clean" and c.approved and c.finished_at < created - timedelta(hours=1)
            for inv in c.invoices
            if inv.key not in self.reused_invoices
        ]
        reused = rng.choice(earlier)
        self.reused_invoices.add(reused.key)
        me = self._originator()
        claim = self._new("DUPLICATE_INVOICE", me, created, True, amount=reused.total_fen)
        self.draw.invoice_keys.difference_update(i.key for i in claim.invoices)
        claim.invoices = [reused]
        if rng.random() < 0.4:
            claim.invoices.append(self.draw.invoice(self.draw.amount(), created.date()))
        claim.amount_fen = sum(i.total_fen for i in claim.invoices)
        self._approve(claim, approved_at)
        self.findings.append(("DUPLICATE_INVOICE", reused))
        return claim

    def _budget_usage(self) -> dict[str, int]:
        """Per budget code: the period's approved, non-quarantined claims (DESIGN, BUDGET_OVERRUN)."""
        used: Counter[str] = Counter()
        for c in self.claims:
            if c.in_period and c.approved and not c.quarantined:
                used[c.budget_code] += c.amount_fen
        return used

    def _push_budgets(self) -> None:
        """BUDGET_OVERRUN: large claims approved by the top role push a few budget lines over.

        Lines that end within ``BUDGET_MARGIN`` of their budget either way are pushed clearly
        over too, so every line is unambiguously over or under.
        """
        budgets = {code: fen for (code, period), fen in self.codes.budgets.items() if period == self.period}
        if not budgets:
            return
        used = self._budget_usage()
        chosen = set(self.rng.sample(sorted(budgets), min(OVERRUN_CODES, len(budgets))))
        for code in sorted(budgets):
            ratio = used[code] / budgets[code]
            if ratio > 1 + BUDGET_MARGIN or (code not in chosen and ratio < 1 - BUDGET_MARGIN):
                continue
            target = budgets[code] * (1 + BUDGET_MARGIN + self.rng.uniform(0.01, 0.08))
            dept = code.split("-")[1]
            while used[code] <= target:
                me = self.rng.choice([p for p in self.by_dept[dept] if p in self.staff])
                amount = self.rng.randint(12_000_000, 35_000_000)
                when = self.draw.working(self.start, self.end - timedelta(days=6))
                claim = self._approved("clean_large", me, when, True, amount, [self.rng.choice(self.top)])
                claim.budget_code = code
                claim.project_code = (
                    f"PRJ-{dept}-{self.rng.randint(1, 40):03d}" if code.endswith("PRJ") else ""
                )
                used[code] += amount

    # -- writing ---------------------------------------------------------------------------------

    def _number_claims(self) -> None:
        """claim_no ``BX<yyyymmdd><seq>``: numbered by submission day, in submission order."""
        per_day: Counter[str] = Counter()
        for claim in sorted(self.claims, key=lambda c: (c.created, c.source_id)):
            day = claim.created.strftime("%Y%m%d")
            per_day[day] += 1
            claim.claim_no = f"BX{day}{per_day[day]:04d}"

    def _write_amount_texts(self) -> None:
        """报销金额 as people type it: ``1234.50``, ``1,234.50``, ``１２３４．５０``, ``¥1234.5``."""
        for claim in self.claims:
            if claim.kind == "CONTRACT_VIOLATION":
                continue
            r = self.rng.random()
            if r < 0.06 and claim.amount_fen >= 1000_00:
                claim.amount_text, style = fen_thousands(claim.amount_fen), "thousands"
            elif 0.06 <= r < 0.11:
                claim.amount_text, style = full_width(fen_text(claim.amount_fen)), "full_width"
            elif 0.11 <= r < 0.15:
                claim.amount_text, style = fen_yen_short(claim.amount_fen), "yen_sign"
            else:
                claim.amount_text, style = fen_text(claim.amount_fen), ""
            if style:
                self.noise[f"amount_{style}"] += 1

    def _settle(self) -> None:
        """Bills and payments for every claim, by what it is."""
        ledger, rng = self.ledger, self.rng
        batched = self._batches()
        for group in batched:
            ledger.settle_batch(group)
        in_batch = {id(c) for group in batched for c in group}
        for claim in self.claims:
            kind = claim.kind
            if id(claim) in in_batch or kind in ("MISSING_IN_FINANCE", "UNMAPPED_CODE", "CONTRACT_VIOLATION"):
                continue
            if kind == "clean" and claim.approved:
                ledger.settle_clean(claim)
            elif kind in SINGLE_CHAIN or kind == "clean_large":
                ledger.settle_single(claim)
            elif kind == "AMOUNT_MISMATCH":
                ledger.amount_mismatch(claim)
            elif kind == "PAYEE_MISMATCH":
                ledger.payee_mismatch(claim, rng.choice([p for p in self.staff if p is not claim.originator]))
            elif kind == "DUPLICATE_PAYMENT":
                ledger.duplicate_payment(claim)
            elif kind == "STATUS_MISMATCH":
                ledger.status_mismatch(claim)
            elif kind == "LATE_PAYMENT":
                ledger.late_payment(claim)

    def _batches(self) -> list[list[Claim]]:
        """Groups of 2-3 clean claims of one person approved within 36 h: paid by one payment."""
        latest = self.due - timedelta(hours=12)
        mine: dict[str, list[Claim]] = defaultdict(list)
        for c in self.claims:
            if c.kind == "clean" and c.approved and c.in_period and c.finished_at < latest:
                mine[c.originator.person_id].append(c)
        groups: list[list[Claim]] = []
        for person in sorted(mine):
            claims = sorted(mine[person], key=lambda c: c.finished_at)
            i = 0
            while i + 1 < len(claims):
                size = self.rng.choice((2, 3))
                group = claims[i : i + size]
                if group[-1].finished_at - group[0].finished_at <= timedelta(hours=36):
                    groups.append(group)
                    i += size
                else:
                    i += 1
        wanted = max(2, round(self.n * 0.008))
        return sorted(self.rng.sample(groups, min(wanted, len(groups))), key=lambda g: g[0].claim_no)

    def _orphan_bill(self) -> None:
        """MISSING_IN_OA: a bill with an empty or unknown OA number, whose amount no claim of the
        proposer comes near (so no rule or group pass can pair it with one)."""
        rng = self.rng
        me = self._originator()
        theirs = [c.amount_fen for c in self.claims if c.originator is me]
        amount = self.draw.amount()
        while any(abs(amount - a) <= 100 for a in theirs):
            amount = self.draw.amount()
        when = self.draw.working(self.start, self.end - timedelta(days=1))
        known = {c.claim_no for c in self.claims}
        oa_no = ""
        if rng.random() < 0.5:
            oa_no = f"BX{when:%Y%m%d}{rng.randint(9000, 9999):04d}"
            while oa_no in known:
                oa_no = f"BX{when:%Y%m%d}{rng.randint(9000, 9999):04d}"
        bill = self.ledger.orphan(
            me, when, amount, oa_no, rng.choice(("补录报销", "手工报销单", "历史费用补报"))
        )
        self.findings.append(("MISSING_IN_OA", bill))

    def _truth_rows(self) -> list[dict[str, str]]:
        rows = []
        for kind, item in self.findings:
            if isinstance(item, Claim):
                rows.append({"exception_type": kind, "claim_no": item.claim_no})
            elif isinstance(item, Bill):
                rows.append({"exception_type": kind, "doc_no": item.doc_no})
            elif isinstance(item, Invoice):
                rows.append({"exception_type": kind, "invoice_no": item.key})
        budgets = {code: fen for (code, period), fen in self.codes.budgets.items() if period == self.period}
        for code, used in sorted(self._budget_usage().items()):
            if code in budgets and used > budgets[code]:
                rows.append({"exception_type": "BUDGET_OVERRUN", "budget_code": code})
        return rows

    def _dataset(self) -> Dataset:
        claims = sorted(self.claims, key=lambda c: (c.created, c.source_id))
        bills = sorted(self.ledger.bills, key=lambda b: b.doc_id)
        payments = sorted(self.ledger.payments, key=lambda p: p.doc_id)
        return Dataset(
            seed=self.seed,
            period=self.period,
            company_code=self.company_code,
            process_code=PROCESS_CODE,
            people=list(self.codes.people),
            claims=claims,
            bills=bills,
            payments=payments,
            truth=truth_frame(self._truth_rows()),
            noise=dict(self.noise),
            settings={
                "n_claims": self.n,
                "as_of": self.end.isoformat(),
                "lookback_days": LOOKBACK_DAYS,
                "payment_sla_days": SLA.days,
                "amount_tolerance_fen": 1,
            },
        )
