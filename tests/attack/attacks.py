"""Try to recover hidden or rounded counts about people from everything a workbook publishes.

The attacks, each counted in :attr:`Report.tried`:

i.   percentage x total: a percentage rounded to its stated decimals, with its numerator and
     denominator published as rounded (or hidden) counts, narrows both to an interval;
ii.  totals minus visible cells: "Total"/"All" rows and total columns are sums of the rest;
iii. the same quantity published twice (another table, page or file) at a different
     level of detail: hidden in one place, shown in another;
iv.  integer programming over all of a table's constraints (i and ii together, with
     ``scipy.optimize.milp``): for each hidden or rounded cell, the smallest and largest
     whole value that fits everything published. A hidden cell pinned to one value, or a
     rounded count pinned to its exact value, is a disclosure;
v.   a rate, mean, percentage or count about a group whose size is hidden, or is at most
     the threshold in the true extract;
vi.  the free-text label of a small group, anywhere in the publication;
vii. an exact count from 1 to the threshold in a sentence, alt text, note or count column
     (and an unrounded count of people above it); the row account of the file's rows is
     exact on purpose and left out, narrowly (see :data:`_ROW_ACCOUNT_LINE`);
ix.  a percentage with its 95% interval (Wilson's, as the playbook computes it): the
     interval's width fixes the number of people behind the percentage. Pinning the very
     counts its row publishes is no disclosure; pinning any other count, a small count or
     the size of a small group is;
viii. a machine path (the folder the workbook was built in, the repository, the config's
     folder): not about people, but no published file may name the machine's folders;
x.   an overall mean set beside the groups shown: the overall mean times everyone, minus
     each shown group's mean times its size, is the hidden groups' total, so their mean
     lies in an interval. Rounding blurs it; it is a disclosure when the interval is
     narrower than the spread a group of that size would show by chance (from the
     published 95% intervals of the groups shown).
xi.  the same within one table of means split by two fields (ethnic group, deprivation):
     a field whose groups are all shown gives everyone's total, and a second field's
     shown groups taken from it leave its hidden groups' total, judged as in x.
     Medians too: medians do not add up, but the median of everyone (a sentence, or a
     field with one group) set beside the median of everyone but a hidden group (a field
     whose only group shown is the rest) tells on which side the hidden people lie.
     Adding people at or above a median never lowers it, so when everyone's median is
     below the others', at least one hidden person's value is at most everyone's median
     (and at least it, when above): a fact about a group too small to show.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from equity_helpers.privacy import OTHER_SMALL_GROUPS

from .facts import Cell, Publication, Table, Text, parse_cell
from .truth import FREE_TEXT_FIELDS, Group, Truth

BIG = 10_000_000

_LABEL_HEADER = re.compile(
    r"group|field|split|period|who|finding|authority|step|loss|extract|name|label|measure|"
    r"document|month|area",
    re.IGNORECASE,
)
_NOT_COUNT = re.compile(
    r"%|percent|\brate\b|ratio|lower|upper|interval|quartile|median|mean|average|days|"
    r"difference|points|score|rank|decile|quintile|areas|lsoas|population|"
    r"\bage\b|years|reading|syllable|word|letter|sentence|ease|gap|change",
    re.IGNORECASE,
)
_LIMIT = re.compile(r"lower|upper|limit|interval|95|points|gap|difference|change", re.IGNORECASE)
_TOTAL_LABEL = re.compile(r"^(total|all|all people|all referrals|everyone|overall)$", re.I)
_TOTAL_COLUMN = re.compile(r"^(total|records|all|all referrals|everyone)$", re.I)
_PEOPLE = (
    r"people|persons?|patients?|referrals?|rows?|records?|men|women|children|adults|"
    r"individuals?|service users?|cases|clients?"
)
_SMALL_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}


@dataclass
class Finding:
    """One disclosure: which attack found it, where, what it shows and how it was derived."""

    attack: str
    source: str
    where: str
    what: str
    how: str

    def key(self) -> tuple:
        """Findings about the same thing in the same file count once (a page's text is
        read both block by block and line by line)."""
        place = self.where if "row" in self.where else ""
        return (self.attack, self.source, place, self.what, self.how)

    def __str__(self) -> str:
        return f"[{self.attack}] {self.source} ({self.where}): {self.what}\n    how: {self.how}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    tried: Counter = field(default_factory=Counter)
    _keys: set = field(default_factory=set, repr=False)

    @property
    def attacks_tried(self) -> int:
        return sum(self.tried.values())

    def add(self, *args: str) -> None:
        finding = Finding(*args)
        key = finding.key()
        if key not in self._keys:
            self._keys.add(key)
            self.findings.append(finding)

    def grouped(self) -> list[tuple[Finding, list[str]]]:
        """Findings that say the same thing about the same place, with every file holding it.

        The same table is published as CSV, XLSX, an HTML page, a download copy and a
        notebook output; the same sentence on a page and in its source.
        """
        groups: dict[tuple, tuple[Finding, list[str]]] = {}
        for f in self.findings:
            place = re.sub(
                r"^(cell \d+ output, )?(HTML table \d+|sheet \w+|table|cell \d+ output)",
                "",
                f.where,
            )
            if f.where == "file text":
                key = (f.attack, f.where, f.what)
            else:
                key = (f.attack, place if "row" in f.where else f.how, f.what)
            if key in groups:
                groups[key][1].append(f.source)
            else:
                groups[key] = (f, [f.source])
        return list(groups.values())

    def text(self) -> str:
        """Every finding, grouped, followed by the number of attacks tried."""
        lines = []
        for f, sources in self.grouped():
            lines.append(f"[{f.attack}] {f.what}")
            lines.append(f"    where: {f.where}")
            lines.append(f"    files: {', '.join(sorted(set(sources)))}")
            lines.append(f"    how: {f.how}")
        lines.append(self.summary())
        return "\n".join(lines)

    def summary(self) -> str:
        lines = [
            f"{len(self.grouped())} distinct finding(s) in {len(self.findings)} places; "
            f"{self.attacks_tried} attacks tried"
        ]
        lines += [f"  {k}: {v}" for k, v in sorted(self.tried.items())]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- columns


@dataclass
class Layout:
    """Which columns of a table are labels, counts and percentages."""

    labels: list[int]
    counts: list[int]
    percents: list[int]
    measures: list[int]


def layout(table: Table) -> Layout:
    width = max([len(table.header)] + [len(r) for r in table.rows])
    labels, counts, percents, measures = [], [], [], []
    for j in range(width):
        header = table.header[j] if j < len(table.header) else ""
        cells = [c for c in table.column(j) if c.kind != "blank"]
        numeric = [c for c in cells if c.kind in ("int", "number")]
        hidden = [c for c in cells if c.kind == "hidden"]
        texts = [c for c in cells if c.kind == "text"]
        if (
            not cells
            or _LABEL_HEADER.fullmatch(header.strip())
            or (texts and (len(texts) >= len(numeric) or _LABEL_HEADER.search(header)))
        ):
            # A column headed just "Group" (or "Field", "Month"...) names groups, even when
            # every name is a number: one deprivation quintile, "2", is not two people.
            labels.append(j)
        elif not numeric and hidden:
            (counts if not _NOT_COUNT.search(header) else measures).append(j)
        elif ("%" in header or "percent" in header.lower()) and not _LIMIT.search(header):
            percents.append(j)
        elif all(c.kind in ("int", "hidden") for c in cells) and not _NOT_COUNT.search(header):
            if header.strip() or j != 0:
                counts.append(j)
            else:
                labels.append(j)
        else:
            measures.append(j)
    return Layout(labels, counts, percents, measures)


def _key(table: Table) -> tuple:
    return (tuple(table.header), tuple(tuple(r) for r in table.rows))


def _row_name(table: Table, lay: Layout, i: int) -> str:
    row = table.rows[i]
    parts = [row[j] for j in lay.labels if j < len(row) and row[j].strip()]
    return " / ".join(parts) if parts else f"row {i + 1}"


# ----------------------------------------------------------------------------- the integer program


class Program:
    """Whole-number unknowns with bounds and linear constraints, solved with HiGHS."""

    def __init__(self) -> None:
        self.low: list[float] = []
        self.high: list[float] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []

    def var(self, low: float, high: float) -> int:
        self.low.append(low)
        self.high.append(high)
        return len(self.low) - 1

    def add(self, coeffs: dict[int, float], low: float, high: float) -> None:
        self.rows.append((coeffs, low, high))

    def _solve(self, c: np.ndarray, rows) -> tuple[bool, float | None]:
        n = len(self.low)
        if not n:
            return True, None
        constraints = []
        if rows:
            a = np.zeros((len(rows), n))
            lo, hi = np.zeros(len(rows)), np.zeros(len(rows))
            for k, (coeffs, low, high) in enumerate(rows):
                for var, v in coeffs.items():
                    a[k, var] += v
                lo[k], hi[k] = low, high
            constraints = [LinearConstraint(a, lo, hi)]
        result = milp(
            c,
            constraints=constraints,
            bounds=Bounds(np.array(self.low), np.array(self.high)),
            integrality=np.ones(n),
            options={"time_limit": 5},
        )
        if result.status != 0:
            return False, None
        return True, float(result.fun)

    def feasible(self, extra=()) -> bool:
        return self._solve(np.zeros(len(self.low)), self.rows + list(extra))[0]

    def range(self, var: int) -> tuple[float, float] | None:
        c = np.zeros(len(self.low))
        c[var] = 1
        ok, low = self._solve(c, self.rows)
        ok2, high = self._solve(-c, self.rows)
        if not (ok and ok2):
            return None
        return round(low), round(-high)


def count_band(cell: Cell, truth: Truth, hidden_high: int) -> tuple[int, int]:
    """True counts that could lie behind one published count cell."""
    if cell.kind == "hidden":
        return 1, hidden_high
    v = int(cell.value)
    r = truth.rounding
    if v == 0 or r <= 1 or v % r:
        return v, v
    low = math.ceil(v - r / 2)
    high = math.ceil(v + r / 2) - 1
    return max(low, truth.threshold + 1), high


def _pct_rows(p: Cell, num: dict[int, float], den: dict[int, float], scale: float = 100):
    """Constraints saying 100 * num / den rounds to the published percentage."""
    h = 0.5 * 10 ** (-p.decimals)
    lo, hi = (p.value - h) / scale, (p.value + h) / scale
    eps = 1e-9
    first = {k: v for k, v in num.items()}
    for k, v in den.items():
        first[k] = first.get(k, 0) - lo * v
    second = {k: -v for k, v in num.items()}
    for k, v in den.items():
        second[k] = second.get(k, 0) + hi * v
    return [(first, -eps, np.inf), (second, -eps, np.inf)]


def _rounds_to(p: Cell, num: float, den: float) -> bool:
    """Whether ``100 * num / den``, rounded half up to the cell's decimals, is the cell."""
    if den <= 0:
        return False
    scale = 10**p.decimals
    return math.floor(100 * num / den * scale + 0.5 + 1e-9) == round(p.value * scale)


def _explained(pcts: list[Cell], nums: list[float], dens: list[float] | None, r: int) -> bool:
    """Whether the percentages could have been built from the published (rounded) counts.

    Such percentages tell a reader nothing the counts do not, so they are not used. With
    ``dens`` None the rows share one unpublished total, tried over multiples of ``r``.
    """
    if dens is not None:
        return all(_rounds_to(p, n, d) for p, n, d in zip(pcts, nums, dens, strict=True))
    top = max(nums, default=0)
    start = max(r, int(math.ceil(top / r)) * r)
    return any(
        all(_rounds_to(p, n, d) for p, n in zip(pcts, nums, strict=True))
        for d in range(start, int(10 * sum(nums) + 10 * r), r)
    )


def _matches(header: str, part: str) -> bool:
    return header.strip().lower() == part.strip().lower()


def attack_table(table: Table, truth: Truth, report: Report, sources: list[str]) -> None:
    """Attacks i, ii and iv on one table (and every copy of it in ``sources``)."""
    lay = layout(table)
    if not lay.counts:
        return
    width = len(table.header)
    rows = [r + [""] * (width - len(r)) for r in table.rows]
    cells = {
        (i, j): parse_cell(rows[i][j]) for i in range(len(rows)) for j in lay.counts if j < width
    }
    cells = {k: c for k, c in cells.items() if c.kind in ("int", "hidden")}
    if not any(
        c.kind == "hidden" or (c.value and c.value % truth.rounding == 0) for c in cells.values()
    ):
        return
    first_label = lay.labels[0] if len(lay.labels) >= 2 else None
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[row[first_label] if first_label is not None else ""].append(i)

    # First pass: a * may hide any count (secondary suppression hides large ones too). Each
    # reading of the table (a sum, a percentage) is kept only if it fits what is published.
    prog = Program()
    var = {k: prog.var(*count_band(c, truth, BIG)) for k, c in cells.items()}
    used: list[str] = []
    accepted: list[list] = []

    def hypothesis(name: str, constraints: list) -> bool:
        report.tried["iv hypothesis"] += 1
        if constraints and prog.feasible(constraints):
            prog.rows.extend(constraints)
            used.append(name)
            accepted.append(constraints)
            return True
        return False

    headers = [h.strip() for h in table.header]
    # ii: total column = sum of the other counts.
    totals = [j for j in lay.counts if _TOTAL_COLUMN.match(headers[j])]
    if totals:
        t = totals[0]
        others = [j for j in lay.counts if j != t]
        if len(others) >= 2:
            rows_c = []
            for i in range(len(rows)):
                if (i, t) in var and all((i, j) in var for j in others):
                    coeffs = {var[(i, j)]: 1.0 for j in others}
                    coeffs[var[(i, t)]] = -1.0
                    rows_c.append((coeffs, 0, 0))
            hypothesis(
                f"'{headers[t]}' = sum of {', '.join(repr(headers[j]) for j in others)}", rows_c
            )
    # ii: total rows = sum of the other rows in their group.
    for g, members in groups.items():
        total_rows = [
            i for i in members if any(_TOTAL_LABEL.match(rows[i][j].strip()) for j in lay.labels)
        ]
        if len(total_rows) != 1:
            continue
        rest = [i for i in members if i not in total_rows]
        rows_c = []
        for j in lay.counts:
            if (total_rows[0], j) in var and all((i, j) in var for i in rest) and len(rest) >= 2:
                coeffs = {var[(i, j)]: 1.0 for i in rest}
                coeffs[var[(total_rows[0], j)]] = -1.0
                rows_c.append((coeffs, 0, 0))
        hypothesis(f"the total row of {g or 'the table'} = sum of its other rows", rows_c)
    # i: percentages.
    for p in lay.percents:
        text = re.sub(r"%|percent(age)?", "", headers[p], flags=re.I).strip().lower()
        if "population" in text:
            continue
        pcells = {}
        for i in range(len(rows)):
            c = parse_cell(rows[i][p])
            if c.kind in ("number", "int"):
                pcells[i] = Cell(c.text, "number", c.value, c.decimals, True)
        if not pcells:
            continue
        if text.startswith("of "):
            target = text[3:].strip()
            nums = [j for j in lay.counts if _matches(headers[j], target)]
            if not nums and len(lay.counts) == 1:
                nums = lay.counts[:1]
            if not nums:
                continue
            n = nums[0]
            rows_c = []
            for _group, members in groups.items():
                shown = [
                    i
                    for i in members
                    if i in pcells and cells.get((i, n), Cell("", "blank")).kind == "int"
                ]
                if shown and _explained(
                    [pcells[i] for i in shown],
                    [cells[(i, n)].value for i in shown],
                    None,
                    truth.rounding,
                ):
                    report.tried["i percentage explained by the rounded counts"] += 1
                    continue
                d = prog.var(1, BIG)
                for i in members:
                    if i in pcells and (i, n) in var:
                        rows_c += _pct_rows(pcells[i], {var[(i, n)]: 1.0}, {d: 1.0})
                        rows_c.append(({d: 1.0, var[(i, n)]: -1.0}, 0, np.inf))
            hypothesis(f"'{headers[p]}' = '{headers[n]}' / one shared total per group", rows_c)
            continue
        parts = [s for s in re.split(r",| or | and ", text) if s.strip()]
        nums = [j for j in lay.counts if any(_matches(headers[j], s) for s in parts)]
        if not nums and not text:
            left = [j for j in lay.counts if j < p]
            nums = left[-1:] if len(left) >= 2 else []
        dens = totals + [j for j in lay.counts if j not in totals and j not in nums]
        done = False
        fitting = []
        for dcol in dens:
            rows_c = []
            for i, pc in pcells.items():
                if (i, dcol) not in var or any((i, j) not in var for j in nums):
                    continue
                if cells[(i, dcol)].kind == "int" and all(
                    cells[(i, j)].kind == "int" for j in nums
                ):
                    d_pub = cells[(i, dcol)].value
                    options = (
                        [sum(cells[(i, j)].value for j in nums)]
                        if nums
                        else range(0, int(d_pub) + 1, truth.rounding)
                    )
                    if any(_explained([pc], [n], [d_pub], truth.rounding) for n in options):
                        report.tried["i percentage explained by the rounded counts"] += 1
                        continue
                if nums:
                    num = {var[(i, j)]: 1.0 for j in nums}
                else:
                    x = prog.var(0, BIG)
                    num = {x: 1.0}
                    rows_c.append(({var[(i, dcol)]: 1.0, x: -1.0}, 0, np.inf))
                rows_c += _pct_rows(pc, num, {var[(i, dcol)]: 1.0})
            report.tried["iv hypothesis"] += 1
            if rows_c and prog.feasible(rows_c):
                fitting.append((dcol, rows_c))
                if dcol in totals:
                    break  # a column named as the total is the denominator
        # Without a column named as the total, a percentage is read only when the table
        # offers a single candidate denominator: a percentage of something the table
        # does not show (completed among closed referrals, say) can fit a published
        # column by chance, and a wrong reading would claim a false disclosure.
        if fitting and (fitting[0][0] in totals or len(dens) == 1):
            dcol, rows_c = fitting[0]
            named = " + ".join(repr(headers[j]) for j in nums) or "an unpublished count"
            done = hypothesis(f"'{headers[p]}' = {named} / '{headers[dcol]}'", rows_c)
        elif fitting:
            report.tried["iv hypothesis ambiguous"] += 1
            done = True
        if not done:
            report.tried["iv hypothesis rejected"] += 1
    if not used:
        return
    chosen = (prog, var, "a * may hide any count", BIG)
    # Second pass: every * a count of 1 to the threshold, as the rule says, when that fits.
    narrow = Program()
    narrow_var = {k: narrow.var(*count_band(c, truth, truth.threshold)) for k, c in cells.items()}
    extra = [row for rows_c in accepted for row in _remap(rows_c, len(var), narrow)]
    if narrow.feasible(extra):
        narrow.rows.extend(extra)
        chosen = (narrow, narrow_var, "every * is a count of 1 to the threshold", truth.threshold)
    prog, var, assumption, hidden_high = chosen
    headers = [h.strip() for h in table.header]
    for k, c in cells.items():
        band = count_band(c, truth, hidden_high)
        report.tried["iv cell"] += 1
        if band[0] == band[1]:
            continue
        found = prog.range(var[k])
        if found is None or found[0] != found[1]:
            continue
        value = found[0]
        i, j = k
        place = f"{table.where}, row '{_row_name(table, lay, i)}', column '{headers[j]}'"
        attack = (
            "iv integer programming"
            if len(used) > 1
            else ("i percentage x total" if "/" in used[0] else "ii totals minus cells")
        )
        if c.kind == "hidden":
            what = f"hidden count * is exactly {value}"
        else:
            what = f"rounded count {c.text} is exactly {value} (rounding undone)"
        how = "; ".join(used) + f" (assuming {assumption})"
        for source in sources:
            report.add(attack, source, place, what, how)


def _remap(rows_c: list, n_cells: int, prog: Program) -> list:
    """Constraints of the first pass, on the second pass's variables.

    Cell variables keep their number in both passes (they are created first, in the same
    order); extra unknowns (shared totals, unpublished numerators) are created again.
    """
    extra: dict[int, int] = {}
    out = []
    for coeffs, low, high in rows_c:
        mapped = {}
        for var, v in coeffs.items():
            if var >= n_cells:
                if var not in extra:
                    extra[var] = prog.var(0, BIG)
                var = extra[var]
            mapped[var] = v
        out.append((mapped, low, high))
    return out


# ----------------------------------------------------------------------------- text families

_ITEM = re.compile(
    r"(?P<label>[A-Z][\w'+/-]*(?:[ -][\w'+/-]+){0,5}?)\s*:?\s+(?P<n>\d[\d,]*|\*)\s*\((?P<p>\d+(?:\.\d+)?|\*)\s*%?\)"
)
#: How every match of :data:`_ITEM` ends: a count's percentage in brackets.
_ITEM_END = re.compile(r"\((?:\d+(?:\.\d+)?|\*)\s*%?\)")
_OF = re.compile(
    r"(?P<n>\d[\d,]*)\s+(?:out\s+)?of\s+(?:the\s+|all\s+)?(?P<d>\d[\d,]*)\b[^.%]{0,80}?\(?(?P<p>\d+(?:\.\d+)?)\s*%"
)


def attack_text_family(text: Text, truth: Truth, report: Report) -> None:
    """Attack i on prose: 'Asian 10 (2.7%), White 320 (94.1%)' share one total."""
    items, of = _text_items(text.text)
    context = f"percentages in '{_short(text.text)}'"
    if len(items) >= 2:
        percentage_family(list(items), None, text.source, text.where, context, truth, report)
    for n, d, p in of:
        percentage_family([(n, n, p)], d, text.source, text.where, context, truth, report)


@functools.lru_cache(maxsize=100_000)
def _text_items(text: str) -> tuple[tuple, tuple]:
    """The labelled counts with percentages, and the 'n of d (p%)' phrases, in a text
    (read once: the same text is published in several files)."""
    # Every match of _ITEM ends as _ITEM_END does, and every match of _OF holds a percent
    # sign: a text without one has none (and the patterns are slow to try on long texts).
    items = tuple(
        (m["label"], m["n"], m["p"])
        for m in (_ITEM.finditer(text) if _ITEM_END.search(text) else ())
        if m["p"] != "*" and m["n"] != "*"
    )
    of = _OF.finditer(text) if "%" in text else ()
    return items, tuple((m["n"], m["d"], m["p"]) for m in of)


_CELL_ITEM = re.compile(r"^(?P<n>\d[\d,]*)\s*\((?P<p>\d+(?:\.\d+)?)\s*%\)$")


def attack_cell_families(table: Table, sources: list[str], truth: Truth, report: Report) -> None:
    """Attack i on table columns of cells such as '10 (2.7%)': the column shares one total."""
    lay = layout(table)
    for j in range(len(table.header)):
        items = []
        labels = [k for k in lay.labels if k != j]
        for i, row in enumerate(table.rows):
            m = _CELL_ITEM.match(row[j].strip()) if j < len(row) else None
            if m:
                name = " / ".join(row[k] for k in labels if k < len(row)) or f"row {i + 1}"
                items.append((name, m["n"], m["p"]))
        if len(items) >= 2:
            context = f"column '{table.header[j]}' of {table.where}"
            for source in sources:
                percentage_family(items, None, source, table.where, context, truth, report)


def percentage_family(
    items: list[tuple[str, str, str]],
    total: str | None,
    source: str,
    where: str,
    context: str,
    truth: Truth,
    report: Report,
) -> None:
    """Counts with percentages of one total: the total published (``total``) or unknown."""
    report.tried["i percentage x total (text)"] += 1
    pcs = [parse_cell(p + "%") for _, _, p in items]
    ns = [parse_cell(n).value for _, n, _ in items]
    dens = [parse_cell(total).value] if total is not None else None
    if _explained(pcs, ns, dens, truth.rounding):
        report.tried["i percentage explained by the rounded counts"] += 1
        return
    prog = Program()
    rows_c = []
    if total is None:
        d = prog.var(1, BIG)
    else:
        d = prog.var(*count_band(parse_cell(total), truth, truth.threshold))
    var = []
    for (_, n, _), pc in zip(items, pcs, strict=True):
        x = prog.var(*count_band(parse_cell(n), truth, truth.threshold))
        var.append(x)
        rows_c += _pct_rows(pc, {x: 1.0}, {d: 1.0})
        rows_c.append(({d: 1.0, x: -1.0}, 0, np.inf))
    if not prog.feasible(rows_c):
        return
    prog.rows += rows_c
    for (label, n, _), x in zip(items, var, strict=True):
        band = count_band(parse_cell(n), truth, truth.threshold)
        if band[0] == band[1]:
            continue
        found = prog.range(x)
        if found and found[0] == found[1]:
            what = f"'{label.strip()} {n}' is exactly {found[0]} (rounding undone)"
            if label.strip() == n:
                what = f"'{n}' is exactly {found[0]} (rounding undone)"
            report.add(
                "i percentage x total",
                source,
                where,
                what,
                f"{context} share one total; with the counts' rounding bands only one "
                "whole number fits",
            )


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ----------------------------------------------------------------------------- iii: the same quantity twice


def _norm(text: str) -> str:
    text = re.sub(r"\([^)]*\)", "", text.lower())
    return " ".join(re.sub(r"[^\w%]+", " ", text).split())


def attack_cross_source(
    tables: list[tuple[Table, list[str]]], truth: Truth, report: Report
) -> None:
    seen: dict[tuple[str, str], list[tuple[Cell, str, str]]] = defaultdict(list)
    for table, sources in tables:
        lay = layout(table)
        for i, row in enumerate(table.rows):
            name = _norm(_row_name(table, lay, i))
            for j in lay.counts:
                if j < len(row) and j < len(table.header):
                    c = parse_cell(row[j])
                    if c.kind in ("int", "hidden"):
                        seen[(name, _norm(table.header[j]))].append((c, sources[0], table.where))
    for key, entries in seen.items():
        report.tried["iii same quantity elsewhere"] += 1
        hidden = [e for e in entries if e[0].kind == "hidden"]
        shown = [e for e in entries if e[0].kind == "int"]
        for c, source, where in shown:
            v = int(c.value)
            if hidden and v > 0:
                h = hidden[0]
                report.add(
                    "iii same quantity elsewhere",
                    source,
                    f"{where}, row '{key[0]}', column '{key[1]}'",
                    f"count {c.text} is shown here but hidden in {h[1]} ({h[2]})",
                    "the same row and column label appear in both tables",
                )
            exact = v and truth.rounding > 1 and v % truth.rounding
            if exact:
                for other, s2, w2 in shown:
                    o = int(other.value)
                    if o != v and o % truth.rounding == 0 and abs(o - v) <= truth.rounding / 2:
                        report.add(
                            "iii same quantity elsewhere",
                            source,
                            f"{where}, row '{key[0]}', column '{key[1]}'",
                            f"exact count {v} undoes the rounded {o} in {s2} ({w2})",
                            "the same row and column label appear in both tables",
                        )


# ----------------------------------------------------------------------------- v, vi: small groups


def _field_named(group: Group, cells: list[str], title: str, n_labels: int) -> bool:
    label = group.field_label.lower()
    pattern = re.compile(rf"(^|[^\w]){re.escape(label)}($|[^\w])", re.I)
    for cell in cells:
        low = cell.strip().lower()
        if low == label or low.startswith(label + ":") or low.endswith(f"({label})"):
            return True
    return n_labels == 1 and bool(pattern.search(title))


@functools.cache
def _value_forms(group: Group) -> frozenset[str]:
    """Every way a table's label cell may write the group's value (worked out once per
    group: every row of every table is matched against every small group)."""
    forms = {group.value.lower(), *(a.lower() for a in group.aliases)}
    if group.field in ("imd_quintile", "imd_decile"):
        word = "quintile" if group.field == "imd_quintile" else "decile"
        forms |= {f"{word} {group.value}", f"imd {word} {group.value}"}
    return frozenset(forms)


def _cell_value(cell: str, group: Group) -> str:
    """The group value a label cell names: "Religion: Jedi (1)" names "jedi".

    The line small free-text groups are merged into, "Other (small groups)", keeps its
    bracket: it is its own group (sized in :mod:`.truth` as everything merged into it), not
    an extract answer "Other", which only a line called "Other" names.
    """
    return _named_value(cell, group.field_label)


@functools.lru_cache(maxsize=100_000)
def _named_value(cell: str, field_label: str) -> str:
    """:func:`_cell_value` for a field's plain name (the same cells recur in every copy
    of a table and are matched against every small group of the field)."""
    low = cell.strip().lower()
    label = field_label.lower()
    if low.startswith(label + ":"):
        low = low[len(label) + 1 :].strip()
    if low.startswith(OTHER_SMALL_GROUPS.lower()):
        return OTHER_SMALL_GROUPS.lower()
    low = re.sub(r"\s*\([^)]*\)\s*$", "", low)
    return low.strip()


def row_group(table: Table, lay: Layout, i: int, truth: Truth) -> Group | None:
    row = table.rows[i]
    label_cells = [row[j] for j in lay.labels if j < len(row)]
    if not label_cells:
        return None
    for group in truth.small_groups:
        forms = _value_forms(group)
        if not any(_cell_value(c, group) in forms for c in label_cells):
            continue
        if group.distinctive or _field_named(group, label_cells, table.title, len(lay.labels)):
            return group
    return None


def attack_small_groups(
    tables: list[tuple[Table, list[str]]], truth: Truth | None, report: Report
) -> None:
    """Attack v on tables: figures about groups that are hidden or small."""
    for table, sources in tables:
        lay = layout(table)
        headers = table.header + [""] * 50
        for i, row in enumerate(table.rows):
            report.tried["v figure about a small group"] += 1
            shown = [
                j
                for j in lay.percents + lay.measures + lay.counts
                if j < len(row)
                and parse_cell(row[j]).kind in ("int", "number")
                and "population" not in headers[j].lower()
            ]
            # Without the truth: a table whose only count is the group's size.
            if (
                len(lay.counts) == 1
                and parse_cell(row[lay.counts[0]] if lay.counts[0] < len(row) else "").kind
                == "hidden"
            ):
                others = [j for j in shown if j != lay.counts[0]]
                if others:
                    for source in sources:
                        report.add(
                            "v figure about a small group",
                            source,
                            f"{table.where}, row '{_row_name(table, lay, i)}'",
                            "the group's size is hidden but "
                            + ", ".join(f"'{headers[j]}' = {row[j]}" for j in others)
                            + " is shown",
                            f"'{headers[lay.counts[0]]}' is * in the same row",
                        )
            if truth is None:
                continue
            group = row_group(table, lay, i, truth)
            if group is None:
                continue
            figures = [
                j for j in shown if not (j in lay.counts and parse_cell(row[j]).kind == "hidden")
            ]
            if figures:
                for source in sources:
                    report.add(
                        "v figure about a small group",
                        source,
                        f"{table.where}, row '{_row_name(table, lay, i)}'",
                        f"{group.field_label} '{group.value}' has {group.size} "
                        f"{'person' if group.size == 1 else 'people'}, yet "
                        + ", ".join(f"'{headers[j]}' = {row[j]}" for j in figures)
                        + " is shown",
                        "the group is at most the threshold in the extract",
                    )
            elif group.field in FREE_TEXT_FIELDS and group.value in truth.labels:
                for source in sources:
                    report.add(
                        "vi small free-text label",
                        source,
                        f"{table.where}, row '{_row_name(table, lay, i)}'",
                        f"the free-text label '{group.value}' of {group.size} "
                        f"{'person' if group.size == 1 else 'people'} is published",
                        "free-text labels of small groups must not be published",
                    )


_NUMBERISH = re.compile(r"\d")


def attack_labels(pub: Publication, truth: Truth, report: Report) -> None:
    """Attack vi: a small group's free-text label anywhere in any file, and v in prose."""
    for label, size in truth.labels.items():
        pattern = re.compile(rf"(?<![\w]){re.escape(label)}(?![\w])", re.I)
        for source, raw in pub.raw.items():
            report.tried["vi small free-text label"] += 1
            m = pattern.search(raw)
            if m:
                context = raw[max(0, m.start() - 60) : m.end() + 60]
                report.add(
                    "vi small free-text label",
                    source,
                    "file text",
                    f"the free-text label '{label}' of {size} "
                    f"{'person' if size == 1 else 'people'} is published",
                    f"found word for word: '{_short(context, 200)}'",
                )
        for text in pub.texts:
            report.tried["v figure about a small group"] += 1
            m = pattern.search(text.text)
            if m and _NUMBERISH.search(text.text[m.end() : m.end() + 40]):
                report.add(
                    "v figure about a small group",
                    text.source,
                    text.where,
                    f"a figure about '{label}' ({size} {'person' if size == 1 else 'people'})",
                    f"'{_short(text.text)}'",
                )


# ----------------------------------------------------------------------------- vii: small exact counts

_SMALL_COUNT = re.compile(
    rf"(?<![\d.,%-])(?P<n>[1-9]\d{{0,2}}(?:,\d{{3}})+|[1-9]\d*|one|two|three|four|five|six|seven)\s+(?:more\s+|other\s+|new\s+)?"
    rf"(?P<noun>{_PEOPLE})\b",
    re.I,
)
#: The rule's own sentences mention "1 to 7" and must not count as disclosures.
_RULE_WORDS = re.compile(
    r"shown as \*|are hidden|counts? (of|from) 1|threshold|rounded to the nearest", re.I
)


#: The row account: rows of the extract's FILE read, used and left out (and why). It is
#: exact on purpose, as equity_helpers.privacy (rule 4) and the README state: it counts
#: lines of a file, says nothing about anyone's characteristics, and a service needs the
#: exact figures to check its extract. Only these lines, in a count column headed "Rows",
#: are left out of attack vii; every other count of 1 to the threshold is a finding.
_ROW_ACCOUNT_LINE = re.compile(
    r"^(Rows read|Rows analysed|Left out:|Not part of the table:"
    r"|Appointment rows read|Not counted:|Appointments counted)"
)


def _row_account(table: Table, lay: Layout, i: int, j: int) -> bool:
    """Whether cell (i, j) is a line of the row account (see :data:`_ROW_ACCOUNT_LINE`)."""
    if j >= len(table.header) or table.header[j].strip() != "Rows":
        return False
    row = table.rows[i]
    labels = [row[k].strip() for k in lay.labels if k < len(row) and row[k].strip()]
    return len(labels) == 1 and bool(_ROW_ACCOUNT_LINE.match(labels[0]))


def attack_small_counts(
    pub: Publication, tables: list[tuple[Table, list[str]]], truth: Truth, report: Report
) -> None:
    for text in pub.texts:
        report.tried["vii small exact count"] += 1
        if _RULE_WORDS.search(text.text):
            continue
        for m in _SMALL_COUNT.finditer(text.text):
            after = text.text[m.end() : m.end() + 12].lower()
            before = text.text[max(0, m.start() - 12) : m.start()].lower()
            if after.startswith(
                (" for every", " for each", " per ", " in every")
            ) or before.endswith(
                ("for ", "than ", "least ", "most ", "under ", "below ", "above ", "up to ")
            ):
                # A ratio ("5 referrals for every 10", "one row for each step"), a phrase
                # ("for one person") or a limit ("fewer than 8 people"), not a count.
                continue
            n = m["n"].lower()
            value = _SMALL_WORDS.get(n) or int(n.replace(",", ""))
            if value > truth.threshold and truth.rounding > 1 and value % truth.rounding:
                report.add(
                    "vii unrounded count in prose",
                    text.source,
                    text.where,
                    f"unrounded count '{m.group(0)}'",
                    f"'{_short(text.text)}'",
                )
            if 1 <= value <= truth.threshold:
                report.add(
                    "vii small exact count",
                    text.source,
                    text.where,
                    f"exact count '{m.group(0)}'",
                    f"'{_short(text.text)}'",
                )
    for table, sources in tables:
        lay = layout(table)
        for j in lay.counts:
            for i, c in enumerate(table.column(j)):
                report.tried["vii small exact count"] += 1
                if c.kind == "int" and 1 <= c.value <= truth.threshold:
                    if _row_account(table, lay, i, j):
                        report.tried["vii row account of the file (exact on purpose)"] += 1
                        continue
                    for source in sources:
                        report.add(
                            "vii small exact count",
                            source,
                            f"{table.where}, row '{_row_name(table, lay, i)}', column '{table.header[j]}'",
                            f"count {c.text} from 1 to {truth.threshold} is shown",
                            "a count column holds a small exact count",
                        )


# ----------------------------------------------------------------------------- all together


def unique_tables(pub: Publication) -> list[tuple[Table, list[str]]]:
    """Each distinct table once, with every file it was published in."""
    seen: dict[tuple, tuple[Table, list[str]]] = {}
    for table in pub.tables:
        key = _key(table)
        if key in seen:
            if table.source not in seen[key][1]:
                seen[key][1].append(table.source)
        else:
            seen[key] = (table, [table.source])
    return list(seen.values())


_Z95 = 1.959963984540054
_LOWER = re.compile(r"lower", re.I)
_UPPER = re.compile(r"upper", re.I)


def _wilson(x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = _Z95
    centre = 2 * x + z * z
    spread = z * np.sqrt(np.maximum(z * z + 4 * x * (1 - x / n), 0))
    return (centre - spread) / (2 * (n + z * z)), (centre + spread) / (2 * (n + z * z))


def people_behind_interval(p: Cell, low: Cell, high: Cell, most: int = 20_000) -> set[int]:
    """Every number of people n (with some x of them) whose x / n rounds to ``p`` and whose
    Wilson 95% interval rounds to ``low`` and ``high`` (all in percent)."""
    n = np.arange(1, most + 1, dtype=float)
    fits = set()
    half = [0.5 * 10 ** (-c.decimals) + 1e-9 for c in (p, low, high)]
    for shift in (-1, 0, 1):
        x = np.round(p.value * n / 100) + shift
        ok = (x >= 0) & (x <= n)
        lo, hi = _wilson(np.clip(x, 0, n), n)
        ok &= np.abs(100 * x / n - p.value) <= half[0]
        ok &= np.abs(100 * lo - low.value) <= half[1]
        ok &= np.abs(100 * hi - high.value) <= half[2]
        fits |= {int(v) for v in n[ok]}
    return fits


def attack_intervals(table: Table, sources: list[str], truth: Truth, report: Report) -> None:
    """Attack ix: a percentage followed by its lower and upper 95% limits."""
    headers = [h.strip() for h in table.header]
    lay = layout(table)
    for j in range(len(headers) - 2):
        if j not in lay.percents or not (
            _LOWER.search(headers[j + 1]) and _UPPER.search(headers[j + 2])
        ):
            continue
        for i, row in enumerate(table.rows):
            if len(row) <= j + 2:
                continue
            p, low, high = (parse_cell(row[k]) for k in (j, j + 1, j + 2))
            if not all(c.kind in ("number", "int") for c in (p, low, high)):
                continue
            report.tried["ix percentage with its interval"] += 1
            fits = people_behind_interval(p, low, high)
            if len(fits) != 1:
                continue
            n = fits.pop()
            x = round(p.value * n / 100)
            # Percentages and intervals are worked out from the published (rounded) counts:
            # pinning the very counts the row shows recovers nothing. A pin is a disclosure
            # when it undoes rounding or a hidden cell (a number the row does not show), is
            # itself a small count, or is the size of a group that is small in the extract.
            shown = {
                int(c.value)
                for k in lay.counts
                if k < len(row) and (c := parse_cell(row[k])).kind == "int"
            }
            group = row_group(table, lay, i, truth)
            small = any(1 <= v <= truth.threshold for v in (x, n)) or (
                group is not None and n == group.size
            )
            if x in shown and n in shown and not small:
                report.tried["ix percentage explained by the published counts"] += 1
                continue
            for source in sources:
                report.add(
                    "ix percentage with its interval",
                    source,
                    f"{table.where}, row '{_row_name(table, lay, i)}', column '{headers[j]}'",
                    f"'{headers[j]}' = {row[j]} is exactly {x} of {n} people",
                    f"only n = {n} gives {row[j]}% with a Wilson 95% interval of "
                    f"{row[j + 1]} to {row[j + 2]}",
                )


def attack_machine_paths(pub: Publication, truth: Truth, report: Report) -> None:
    """Attack viii: folders of the machine that built the workbook, in any published file."""
    root = Path(__file__).resolve().parents[2]
    paths = {str(pub.root.resolve().parent), str(root), *truth.paths}
    for source, raw in pub.raw.items():
        for path in sorted(paths):
            report.tried["viii machine path"] += 1
            at = raw.find(path)
            if at >= 0:
                report.add(
                    "viii machine path",
                    source,
                    "file text",
                    f"the machine path '{path}' is published",
                    f"found: '{_short(raw[max(0, at - 40) : at + len(path) + 40], 200)}'",
                )
                break


# ----------------------------------------------------------------------------- x: overall figures

#: A sentence giving a mean for everyone: "On average, scores improved by 10.4 points."
_OVERALL_MEAN = re.compile(
    r"\b(?:on average|average for everyone|mean for everyone|overall|across the service)\b"
    r"[^.]*?(?<![\d.])(?P<v>-?\d+\.\d+)\s*points",
    re.I,
)
_MEAN_HEADER = re.compile(r"\bmean\b|\baverage\b", re.I)
_T975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def _t975(df: int) -> float:
    """Student's t for a two-sided 95% interval (1.96 and above for many people)."""
    return _T975.get(df, 1.96 + 2.4 / max(df, 1))


def _hidden_mean_interval(
    overall: Cell | tuple[float, float],
    shown: list[tuple[Cell, Cell]],
    people: range,
    truth: Truth,
) -> tuple[float, float]:
    """Every mean the hidden people can have, given the overall mean and the groups shown.

    With ``M`` the overall mean, ``m_g`` and ``n_g`` each shown group's mean and size and
    ``n_h`` the hidden people, the hidden mean is ``M + sum_g n_g (M - m_g) / n_h``. Each
    published figure stands for an interval (its rounding); the extremes lie at the
    corners, so they are found exactly by trying each end.
    """
    if isinstance(overall, Cell):
        half = 0.5 * 10 ** (-overall.decimals)
        overall = (overall.value - half, overall.value + half)
    low, high = math.inf, -math.inf
    for big_m in overall:
        least = most = 0.0
        for count, mean in shown:
            n_low, n_high = count_band(count, truth, truth.threshold)
            h = 0.5 * 10 ** (-mean.decimals)
            corners = [
                n * (big_m - m) for n in (n_low, n_high) for m in (mean.value - h, mean.value + h)
            ]
            least += min(corners)
            most += max(corners)
        for n_h in people:
            low = min(low, big_m + least / n_h)
            high = max(high, big_m + most / n_h)
    return low, high


def attack_overall_means(
    pub: Publication, tables: list[tuple[Table, list[str]]], truth: Truth, report: Report
) -> None:
    """Attack x: a mean for everyone, published beside a table of groups' means."""
    overall_by_source: dict[str, dict[str, tuple[Cell, str]]] = defaultdict(dict)
    for text in pub.texts:  # a page's text is read block by block and line by line
        for m in _OVERALL_MEAN.finditer(text.text):
            overall_by_source[text.source][m["v"]] = (parse_cell(m["v"]), _short(text.text))
    for table, sources in tables:
        headers = [h.strip() for h in table.header]
        means = [j for j, h in enumerate(headers) if _MEAN_HEADER.search(h)]
        lows = [j for j, h in enumerate(headers) if _LOWER.search(h)]
        highs = [j for j, h in enumerate(headers) if _UPPER.search(h)]
        lay = layout(table)
        if not (means and lay.counts and [s for s in sources if overall_by_source.get(s)]):
            continue
        mean_j, count_j = means[0], lay.counts[0]
        first_label = lay.labels[0] if len(lay.labels) >= 2 else None
        blocks: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(table.rows):
            blocks[row[first_label] if first_label is not None else ""].append(i)
        for members in blocks.values():
            shown, hidden, spread = [], [], []
            for i in members:
                row = table.rows[i] + [""] * len(headers)
                count, mean = parse_cell(row[count_j]), parse_cell(row[mean_j])
                if count.kind == "hidden":
                    hidden.append(i)
                elif count.kind == "int" and mean.kind in ("int", "number"):
                    shown.append((count, mean))
                    low, high = (
                        parse_cell(row[k[0]]) if k else Cell("", "blank") for k in (lows, highs)
                    )
                    if (
                        low.kind in ("int", "number")
                        and high.kind in ("int", "number")
                        and count.value > 1
                    ):
                        sd = (high.value - low.value) / 2 / _t975(int(count.value) - 1)
                        spread.append(sd * math.sqrt(count.value))
            if not (hidden and shown and spread):
                continue
            # The hidden rows hold 1 to the threshold people each; fewer when the truth says so.
            most = truth.threshold * len(hidden)
            groups = [row_group(table, lay, i, truth) for i in hidden]
            if all(g is not None for g in groups):
                most = min(most, sum(g.size for g in groups))
            people = range(len(hidden), max(most, len(hidden)) + 1)
            if people.stop - 1 > truth.threshold:
                continue  # together the hidden rows may be more people than the rule hides
            chance = 2 * 1.96 * max(spread) / math.sqrt(people.stop - 1)
            for source in sources:
                for overall, sentence in overall_by_source.get(source, {}).values():
                    report.tried["x overall figure beside the groups shown"] += 1
                    low, high = _hidden_mean_interval(overall, shown, people, truth)
                    if high - low >= chance:
                        continue
                    names = ", ".join(_row_name(table, lay, i) for i in hidden)
                    report.add(
                        "x overall figure beside the groups shown",
                        source,
                        f"{table.where}, rows '{names}'",
                        f"the hidden mean of '{names}' ({people.start} to {people.stop - 1} "
                        f"people) lies between {low:.1f} and {high:.1f}",
                        f"the overall mean {overall.text} in '{sentence}', times everyone, "
                        f"minus each shown group's '{headers[mean_j]}' times its "
                        f"'{headers[count_j]}'; a group that size would spread over "
                        f"{chance:.1f} by chance",
                    )


def _mean_band(shown: list[tuple[Cell, Cell]], truth: Truth) -> tuple[float, float]:
    """The lowest and highest mean of everyone in the shown groups, each group's size
    anywhere in its rounding band and its mean anywhere in its rounding."""
    bands = [count_band(count, truth, truth.threshold) for count, _ in shown]
    ends = []
    for sign in (-1, 1):
        means = [m.value + sign * 0.5 * 10 ** (-m.decimals) for _, m in shown]
        big_m = sum(means) / len(means)
        for _ in range(50):  # the extreme puts the most weight on the groups beyond it
            weights = [
                (hi if (m - big_m) * sign > 0 else lo)
                for (lo, hi), m in zip(bands, means, strict=True)
            ]
            big_m = sum(w * m for w, m in zip(weights, means, strict=True)) / max(sum(weights), 1)
        ends.append(big_m)
    return ends[0], ends[1]


def attack_means_across_fields(
    table: Table, sources: list[str], truth: Truth, report: Report
) -> None:
    """Attack xi: one field's groups, all shown, give everyone's total; a second field's
    shown groups, taken from it, leave the hidden group's total (a mean table split by
    ethnic group and by deprivation, say)."""
    headers = [h.strip() for h in table.header]
    means = [j for j, h in enumerate(headers) if _MEAN_HEADER.search(h)]
    lows = [j for j, h in enumerate(headers) if _LOWER.search(h)]
    highs = [j for j, h in enumerate(headers) if _UPPER.search(h)]
    lay = layout(table)
    if not (means and lay.counts and len(lay.labels) >= 2):
        return
    mean_j, count_j, first_label = means[0], lay.counts[0], lay.labels[0]
    blocks: dict[str, dict] = {}
    for i, row in enumerate(table.rows):
        row = row + [""] * len(headers)
        block = blocks.setdefault(row[first_label], {"shown": [], "hidden": [], "spread": []})
        count, mean = parse_cell(row[count_j]), parse_cell(row[mean_j])
        if count.kind == "hidden":
            block["hidden"].append(i)
        elif count.kind == "int" and mean.kind in ("int", "number"):
            block["shown"].append((count, mean))
            low, high = (parse_cell(row[k[0]]) if k else Cell("", "blank") for k in (lows, highs))
            if low.kind in ("int", "number") and high.kind in ("int", "number") and count.value > 1:
                sd = (high.value - low.value) / 2 / _t975(int(count.value) - 1)
                block["spread"].append(sd * math.sqrt(count.value))
        else:
            block["hidden"].append(i)  # a row that cannot be read counts as unknown
    complete = [b for b in blocks.values() if b["shown"] and not b["hidden"]]
    for name, target in blocks.items():
        if not (target["hidden"] and target["shown"] and target["spread"]):
            continue
        most = truth.threshold * len(target["hidden"])
        groups = [row_group(table, lay, i, truth) for i in target["hidden"]]
        if all(g is not None for g in groups):
            most = min(most, sum(g.size for g in groups))
        people = range(len(target["hidden"]), max(most, len(target["hidden"])) + 1)
        if people.stop - 1 > truth.threshold:
            continue
        chance = 2 * 1.96 * max(target["spread"]) / math.sqrt(people.stop - 1)
        for whole in complete:
            if whole is target:
                continue
            report.tried["xi a mean table's fields set against each other"] += 1
            everyone = _mean_band(whole["shown"], truth)
            low, high = _hidden_mean_interval(everyone, target["shown"], people, truth)
            if high - low >= chance:
                continue
            names = ", ".join(_row_name(table, lay, i) for i in target["hidden"])
            report.add(
                "xi a mean table's fields set against each other",
                sources[0] if sources else "",
                f"{table.where}, rows '{names}'",
                f"the hidden mean of '{names}' ({people.start} to {people.stop - 1} people) "
                f"lies between {low:.1f} and {high:.1f}",
                f"another field's groups, all shown, give everyone's total '{headers[mean_j]}' "
                f"times '{headers[count_j]}'; minus the shown groups of '{name}'; a group that "
                f"size would spread over {chance:.1f} by chance",
            )


#: A sentence giving a median for everyone: "The median wait for everyone is 30 days."
_OVERALL_MEDIAN = re.compile(
    r"(?:\bmedian\b[^.]*?\b(?:for everyone|overall|across the service|for all)\b"
    r"|\b(?:overall|across the service)\b[^.]*?\bmedian\b)"
    r"[^.\d]*?(?<![\d.])(?P<v>\d+(?:\.\d+)?)\s*days",
    re.I,
)
_MEDIAN_HEADER = re.compile(r"\bmedian\b", re.I)
_MEDIANS = "xi medians of overlapping sets with and without a hidden group"


def _rounding(cell: Cell) -> tuple[float, float]:
    """Every value a published figure can stand for."""
    half = 0.5 * 10 ** (-cell.decimals)
    return cell.value - half, cell.value + half


def attack_medians_across_fields(
    table: Table, sources: list[str], truth: Truth, report: Report, overall: dict
) -> None:
    """Attack xi for medians: everyone's median beside the median of everyone but a
    hidden group tells on which side of it the hidden people lie.

    Everyone's median is a sentence on the same page (``overall``: source to the figures
    read there) or a field of the table with one group, shown; the others' median is a
    field whose one shown group is everyone outside its hidden groups.
    """
    headers = [h.strip() for h in table.header]
    medians = [j for j, h in enumerate(headers) if _MEDIAN_HEADER.search(h)]
    lay = layout(table)
    if not (medians and lay.counts and lay.labels):
        return
    median_j, count_j = medians[0], lay.counts[0]
    first_label = lay.labels[0] if len(lay.labels) >= 2 else None
    blocks: dict[str, dict] = {}
    for i, row in enumerate(table.rows):
        row = row + [""] * len(headers)
        key = row[first_label] if first_label is not None else ""
        block = blocks.setdefault(key, {"shown": [], "hidden": []})
        count, median = parse_cell(row[count_j]), parse_cell(row[median_j])
        if count.kind == "int" and median.kind in ("int", "number"):
            block["shown"].append((i, median))
        else:  # hidden, or a row that cannot be read: unknown people
            block["hidden"].append(i)
    everyone = [  # (median, where it is read)
        (b["shown"][0][1], f"the field '{name}', whose one group is everyone")
        for name, b in blocks.items()
        if len(b["shown"]) == 1 and not b["hidden"] and name
    ]
    for source in sources:
        for cell, sentence in overall.get(source, {}).values():
            everyone.append((cell, f"'{sentence}'"))
    for name, target in blocks.items():
        if not (target["hidden"] and len(target["shown"]) == 1):
            continue
        most = truth.threshold * len(target["hidden"])
        groups = [row_group(table, lay, i, truth) for i in target["hidden"]]
        if all(g is not None for g in groups):
            most = min(most, sum(g.size for g in groups))
        people = range(len(target["hidden"]), max(most, len(target["hidden"])) + 1)
        if people.stop - 1 > truth.threshold:
            continue  # together the hidden rows may be more people than the rule hides
        shown_i, others = target["shown"][0]
        o_low, o_high = _rounding(others)
        names = ", ".join(_row_name(table, lay, i) for i in target["hidden"])
        who = (
            f"the one person in '{names}'"
            if people.stop - 1 == 1
            else f"at least one of the {people.start} to {people.stop - 1} people in '{names}'"
        )
        for cell, where in everyone:
            report.tried[_MEDIANS] += 1
            low, high = _rounding(cell)
            if high < o_low:
                side, bound, where_to = "at most", high, "below"
            elif low > o_high:
                side, bound, where_to = "at least", low, "above"
            else:
                continue  # the same median with and without them: no side is told
            report.add(
                _MEDIANS,
                sources[0] if sources else "",
                f"{table.where}, rows '{names}'",
                f"{who} has a '{headers[median_j]}' value of {side} {bound:g}",
                f"everyone's median {cell.text}, from {where}, is {where_to} the "
                f"median {others.text} of '{_row_name(table, lay, shown_i)}', everyone else "
                f"in '{name or table.where}'; adding people on one side of a median moves "
                "it only towards them",
            )


def attack(pub: Publication, truth: Truth | None = None) -> Report:
    """Run every attack on a publication; ``truth`` enables attacks v (by size) and vi."""
    report = Report()
    known = truth or Truth()
    tables = unique_tables(pub)
    for table, sources in tables:
        attack_table(table, known, report, sources)
        attack_cell_families(table, sources, known, report)
        attack_intervals(table, sources, known, report)
        attack_means_across_fields(table, sources, known, report)
    overall_medians: dict[str, dict] = defaultdict(dict)
    for text in pub.texts:
        for m in _OVERALL_MEDIAN.finditer(text.text):
            overall_medians[text.source][m["v"]] = (parse_cell(m["v"]), _short(text.text))
    for table, sources in tables:
        attack_medians_across_fields(table, sources, known, report, overall_medians)
    seen_texts = set()
    for text in pub.texts:
        if (text.text, text.source) in seen_texts:
            continue
        seen_texts.add((text.text, text.source))
        attack_text_family(text, known, report)
    attack_cross_source(tables, known, report)
    attack_small_groups(tables, truth, report)
    if truth is not None:
        attack_labels(pub, truth, report)
    attack_small_counts(pub, tables, known, report)
    attack_overall_means(pub, tables, known, report)
    attack_machine_paths(pub, known, report)
    return report


def attack_folder(folder, truth: Truth | None = None) -> Report:
    from .facts import read_publication

    return attack(read_publication(folder), truth)


__all__ = ["Finding", "Report", "attack", "attack_folder", "layout"]
