"""Generated financial news headlines for the generated symbols (no real news is used).

Every headline is **generated** from one of ``TEMPLATES`` and filled with invented company,
broker and product names; none describes a real company or event. Headlines follow the
symbol's return that day: strongly up days bring mostly positive news, strongly down days
mostly negative news, quiet days mostly neutral news, and big moves bring more headlines.
A headline that states a price move ("shares jump 4.1%") only appears on a day that moved
that way, with that day's size.

The label of a row is the sentiment of its template. Templates come in groups of the same
kind of news (``concept``) phrased differently; ``HELD_OUT_TEMPLATE_IDS`` (one phrasing of
most concepts, about a third of the templates) are for evaluation only, so a model is scored
on wordings it never saw in training.

Headlines of a day correlate with that day's return: a feature built from them describes the
session and is available only once it is over.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Label = Literal["negative", "neutral", "positive"]
Move = Literal["up", "down", "flat"]

LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")
COLUMNS = ("headline_id", "symbol", "ts", "headline", "template_id", "label")

# Class logits per unit of the day's standardised return z: (-SLOPE z, BIAS, +SLOPE z).
SENTIMENT_SLOPE = 1.5
NEUTRAL_BIAS = 1.0
# Headlines per symbol and day: 1 + Poisson(BASE + PER_SIGMA |z|), about 2 on average.
EXTRA_HEADLINES_BASE = 0.4
EXTRA_HEADLINES_PER_SIGMA = 0.7
# A move template needs |z| beyond this ("up"/"down") or within it ("flat").
MOVE_Z = 0.5
# Publication times: 06:00 to 21:00 of the session's day.
FIRST_SECOND, LAST_SECOND = 6 * 3600, 21 * 3600


@dataclass(frozen=True)
class Template:
    template_id: int
    label: Label
    # The kind of news ("earnings_beat"); a held-out template rephrases a trained concept.
    concept: str
    text: str
    # The price move the text states, if any; the template is only used on such days.
    move: Move | None = None
    held_out: bool = False

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(
            name for _, name, _, _ in string.Formatter().parse(self.text) if name is not None
        )


_Row = tuple[str, str, Move | None, bool]


def _train(concept: str, text: str, move: Move | None = None) -> _Row:
    return concept, text, move, False


def _held(concept: str, text: str, move: Move | None = None) -> _Row:
    return concept, text, move, True


def _templates(label: Label, first_id: int, rows: list[_Row]) -> list[Template]:
    return [
        Template(first_id + offset, label, concept, text, move, held)
        for offset, (concept, text, move, held) in enumerate(rows)
    ]


TEMPLATES: tuple[Template, ...] = (
    *_templates(
        "positive",
        100,
        [
            _train(
                "earnings", "{company} shares jump {pct}% after record {quarter} earnings", "up"
            ),
            _train("earnings", "{company} beats analyst estimates as {product} sales surge"),
            _held(
                "earnings", "{company} tops {quarter} profit forecasts; shares gain {pct}%", "up"
            ),
            _train("guidance", "{company} raises full-year guidance on strong demand in {region}"),
            _held("guidance", "{company} lifts its outlook for the year as orders pick up"),
            _train("rating", "{broker} upgrades {company} to buy, sees {pct2}% upside"),
            _held("rating", "{broker} turns bullish on {company}, lifts price target by {pct2}%"),
            _train("business", "{company} wins {amount} contract for {product}"),
            _train("business", "{company} lands {amount} order from customer in {region}"),
            _train("capital", "{company} lifts dividend by {pct2}% after strong cash flow"),
            _train("capital", "{company} announces {amount} share buyback"),
            _held("capital", "{ticker} rallies {pct}% as investors cheer {amount} buyback", "up"),
            _train(
                "regulatory", "Regulators approve {company_s} {product}, opening a large new market"
            ),
            _held("regulatory", "{company} wins regulatory clearance for {product}"),
            _train("deal", "{company} signs strategic partnership with {peer}"),
            _train("deal", "{company} soars {pct}% on takeover bid from {peer}", "up"),
            _train("price", "{company} stock climbs to 52-week high on upbeat outlook", "up"),
            _held("price", "{company} shares touch all-time high on strong demand", "up"),
            _train(
                "hedge",
                "{company} posts better-than-expected revenue despite tough market for {sector}",
            ),
            _held("hedge", "{company} grows sales despite the slowdown hitting other {sector}"),
            _train("negation", "{company} no longer expects a loss this year, CFO says"),
            _train("negation", "{company} avoids job cuts as demand recovers"),
            _held("negation", "{company} sees no hit from tariffs and keeps its growth targets"),
            _train("growth", "{company} profit doubles as cost cuts pay off"),
            _train("growth", "{company} order backlog hits all-time high"),
            _train("growth", "Investors pile into {company} after blowout quarter", "up"),
        ],
    ),
    *_templates(
        "negative",
        200,
        [
            _train("earnings", "{company} shares tumble {pct}% after profit warning", "down"),
            _train("earnings", "{company} misses {quarter} estimates as {product} demand weakens"),
            _held(
                "earnings",
                "{company} falls short of {quarter} profit forecasts; shares lose {pct}%",
                "down",
            ),
            _train("guidance", "{company} cuts full-year outlook, citing weak demand in {region}"),
            _held("guidance", "{company} lowers its forecast for the year as orders dry up"),
            _train("rating", "{broker} downgrades {company} to sell on valuation concerns"),
            _held("rating", "{broker} turns bearish on {company}, cuts price target by {pct2}%"),
            _train("business", "{company} loses its largest customer to {peer}"),
            _train("business", "{ticker} slides {pct}% after {peer} wins key contract", "down"),
            _train("capital", "{company} slashes dividend by {pct2}% to preserve cash"),
            _train("capital", "{company} announces {amount} writedown and job cuts"),
            _held("capital", "{company} suspends its dividend as cash flow turns negative"),
            _train("regulatory", "{company} fails to win regulatory approval for {product}"),
            _train("regulatory", "{company} faces regulatory probe into its accounting"),
            _held("regulatory", "Regulators reject {company_s} application for {product}"),
            _train("management", "{company} CEO resigns abruptly amid internal investigation"),
            _train("management", "{company} halts sales of {product} after customer complaints"),
            _train("price", "{company} stock sinks to 52-week low on weak sales", "down"),
            _train("price", "{company} plunges {pct}% as short sellers pile in", "down"),
            _held("price", "{company} shares hit multi-year low as investors flee", "down"),
            _train("hedge", "{company} falls {pct}% despite reassuring guidance", "down"),
            _held(
                "hedge", "{company} drops {pct}% despite upbeat comments from management", "down"
            ),
            _train(
                "negation", "{company} fails to meet revenue targets for a third straight quarter"
            ),
            _held("negation", "{company} does not expect a recovery before next year"),
            _train("credit", "Credit agency cuts {company_s} rating to junk"),
            _train("credit", "{company} warns of {amount} hit from supply chain disruption"),
        ],
    ),
    *_templates(
        "neutral",
        300,
        [
            _train("results", "{company} to report {quarter} earnings next week"),
            _train("results", "{company} shares little changed ahead of {quarter} results", "flat"),
            _held("results", "{company} will publish {quarter} results on Thursday"),
            _train("filing", "{company} sets date for annual shareholder meeting"),
            _train("filing", "{company} files annual report with regulators"),
            _held("filing", "{company} submits quarterly filing to regulators"),
            _train("management", "{company} names new chief financial officer"),
            _train("management", "{company} appoints former {peer} executive to its board"),
            _held("management", "{company} hires a new head of investor relations"),
            _train("rating", "{broker} keeps hold rating on {company}"),
            _held("rating", "{broker} reiterates neutral view on {company}"),
            _train("capital", "{company} completes previously announced debt refinancing"),
            _train("capital", "{company} board declares regular quarterly dividend"),
            _train(
                "price", "{company} trades flat as investors await central bank decision", "flat"
            ),
            _held("price", "{ticker} ends session near unchanged in light volume", "flat"),
            _train("corporate", "{company} to present at {region} investor conference"),
            _train("corporate", "{company} opens new office in {region}"),
            _train("corporate", "{company} to relocate headquarters within {region}"),
            _train(
                "guidance", "{company} confirms talks with {peer}, says no deal has been reached"
            ),
            _train("guidance", "{company} reiterates full-year guidance"),
            _held("guidance", "{company} keeps its annual forecast unchanged"),
        ],
    ),
)

TEMPLATE_BY_ID: Mapping[int, Template] = {t.template_id: t for t in TEMPLATES}

# Never used for training: the evaluation measures generalisation to unseen phrasings.
HELD_OUT_TEMPLATE_IDS: frozenset[int] = frozenset(t.template_id for t in TEMPLATES if t.held_out)


def is_held_out(template_ids: pd.Series) -> pd.Series:
    """Boolean mask of rows whose template is held out for evaluation."""
    return template_ids.isin(HELD_OUT_TEMPLATE_IDS)


# Invented names (none is a listed company, broker or brand).
_NAME_STEMS = (
    "Altavik",
    "Brennmoor",
    "Corvane",
    "Dunmarsh",
    "Elvaro",
    "Fenwyck",
    "Galloran",
    "Hexley",
    "Istrana",
    "Jorvale",
    "Kestmere",
    "Lorrimar",
    "Montvaine",
    "Norstead",
    "Orvella",
    "Pellicor",
    "Quarrow",
    "Rostane",
    "Selwick",
    "Tarnvale",
    "Ulverin",
    "Vantrel",
    "Wexmoor",
    "Yarrowgate",
    "Zephrine",
    "Ashcombe",
    "Brackwater",
    "Calloway",
    "Drummell",
    "Everholt",
)
_BROKERS = (
    "Hollis & Grant",
    "Varden Securities",
    "Oakhurst Research",
    "Pellham Partners",
    "Stanmore Capital Markets",
    "Quillon Advisors",
)
_REGIONS = (
    "Europe",
    "Asia",
    "Latin America",
    "North America",
    "the Middle East",
    "India",
    "Japan",
)


@dataclass(frozen=True)
class _SectorWords:
    suffixes: tuple[str, str]
    plural: str  # "{sector}" in a template: "chipmakers", "banks", ...
    products: tuple[str, ...]


_SECTOR_WORDS: Mapping[str, _SectorWords] = {
    "technology": _SectorWords(
        ("Systems", "Networks"),
        "chipmakers",
        ("cloud platform", "AI accelerator chip", "enterprise software", "data-center server"),
    ),
    "financials": _SectorWords(
        ("Bancorp", "Capital"),
        "regional banks",
        ("credit card", "mobile banking app", "mortgage product", "payments platform"),
    ),
    "healthcare": _SectorWords(
        ("Therapeutics", "Biosciences"),
        "drugmakers",
        ("cancer drug", "diabetes treatment", "diagnostic test", "heart device"),
    ),
    "energy": _SectorWords(
        ("Energy", "Petroleum"),
        "oil producers",
        ("fuel additive", "lubricant", "biofuel blend", "heating oil"),
    ),
    "consumer": _SectorWords(
        ("Brands", "Foods"),
        "retailers",
        ("sportswear", "packaged snacks", "online grocery", "premium beverage"),
    ),
    "industrials": _SectorWords(
        ("Industries", "Aerospace"),
        "manufacturers",
        ("jet engine", "freight locomotive", "factory robot", "excavator"),
    ),
    "utilities": _SectorWords(
        ("Power", "Utilities"),
        "utilities",
        ("smart meter", "solar panel", "home battery", "EV charger"),
    ),
    "materials": _SectorWords(
        ("Materials", "Mining"),
        "miners",
        ("battery-grade lithium", "copper wire", "specialty coating", "steel pipe"),
    ),
}
_GENERIC_WORDS = _SectorWords(
    ("Holdings", "Group"), "peers", ("flagship product", "new service", "core business")
)


def company_names(symbols: list[str], sectors: Mapping[str, str] | None = None) -> dict[str, str]:
    """An invented, unique company name per symbol ("Corvane Therapeutics")."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for index, symbol in enumerate(symbols):
        words = _sector_words(symbol, sectors)
        stem = _NAME_STEMS[index % len(_NAME_STEMS)]
        suffix = words.suffixes[(index // len(_NAME_STEMS)) % 2]
        name, round_ = f"{stem} {suffix}", 2
        while name in used:
            name, round_ = f"{stem} {suffix} {round_}", round_ + 1
        used.add(name)
        names[symbol] = name
    return names


def _sector_words(symbol: str, sectors: Mapping[str, str] | None) -> _SectorWords:
    sector = (sectors or {}).get(symbol, "")
    return _SECTOR_WORDS.get(sector, _GENERIC_WORDS)


def daily_returns(bars: pd.DataFrame) -> pd.DataFrame:
    """Per (symbol, day): close-to-close return (open-to-close on a symbol's first bar) and
    ``z``, that return over the symbol's standard deviation of returns in ``bars``."""
    frame = bars[["symbol", "ts", "open", "close"]].sort_values(["symbol", "ts"])
    previous = frame.groupby("symbol")["close"].shift(1).fillna(frame["open"])
    frame = frame.assign(ret=frame["close"] / previous - 1.0)
    scale = frame.groupby("symbol")["ret"].transform("std")
    scale = scale.where(np.isfinite(scale) & (scale > 0), 0.02)
    return frame.assign(z=frame["ret"] / scale).reset_index(drop=True)


def _label_probabilities(z: np.ndarray) -> np.ndarray:
    logits = np.stack(
        [-SENTIMENT_SLOPE * z, np.full_like(z, NEUTRAL_BIAS), SENTIMENT_SLOPE * z], axis=1
    )
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def _fits_move(template: Template, z: float) -> bool:
    if template.move is None:
        return True
    if template.move == "up":
        return z > MOVE_Z
    if template.move == "down":
        return z < -MOVE_Z
    return abs(z) < MOVE_Z


def _quarter_reported(day: pd.Timestamp) -> str:
    """The quarter a company reports on around ``day`` (the one that ended before it)."""
    quarter = (day - pd.Timedelta(days=45)).quarter
    return ("first", "second", "third", "fourth")[quarter - 1] + "-quarter"


def _amount(rng: np.random.Generator) -> str:
    millions = float(np.exp(rng.normal(np.log(400.0), 1.0)))
    if millions >= 1000:
        return f"${millions / 1000:.1f} billion"
    return f"${max(10, round(millions / 10) * 10):.0f} million"


@dataclass(frozen=True)
class _Day:
    symbol: str
    day: pd.Timestamp
    ret: float
    z: float


class _Writer:
    """Renders headlines; every random draw comes from one generator, in row order."""

    def __init__(
        self, symbols: list[str], sectors: Mapping[str, str] | None, rng: np.random.Generator
    ) -> None:
        self.rng = rng
        self.sectors = sectors
        self.names = company_names(symbols, sectors)
        self.symbols = symbols
        self.by_label = {label: [t for t in TEMPLATES if t.label == label] for label in LABELS}

    def pick(self, label: Label, z: float, used: set[int]) -> Template:
        """A template of ``label`` that fits the day's move, not yet used that day if possible
        (the same story twice in a day for one company is not news)."""
        fitting = [t for t in self.by_label[label] if _fits_move(t, z)]
        candidates = [t for t in fitting if t.template_id not in used] or fitting
        return candidates[int(self.rng.integers(len(candidates)))]

    def render(self, template: Template, day: _Day) -> str:
        rng, words = self.rng, _sector_words(day.symbol, self.sectors)
        peers = [s for s in self.symbols if s != day.symbol] or [day.symbol]
        company = self.names[day.symbol]
        fields = {
            "company": company,
            "company_s": company + ("'" if company.endswith("s") else "'s"),
            "ticker": day.symbol,
            "sector": words.plural,
            "product": words.products[int(rng.integers(len(words.products)))],
            "pct": f"{max(abs(day.ret) * 100, 0.1):.1f}",
            "pct2": str(int(rng.integers(5, 30))),
            "amount": _amount(rng),
            "quarter": _quarter_reported(day.day),
            "region": _REGIONS[int(rng.integers(len(_REGIONS)))],
            "broker": _BROKERS[int(rng.integers(len(_BROKERS)))],
            "peer": self.names[peers[int(rng.integers(len(peers)))]],
        }
        return template.text.format(**{key: fields[key] for key in template.fields})


def generate_headlines(
    bars: pd.DataFrame,
    rng: np.random.Generator,
    sectors: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Generated news headlines for daily ``bars`` (columns symbol, ts, open, close, ...).

    Returns one row per headline: ``headline_id`` (1..n in publication order), ``symbol``,
    ``ts`` (a time during the bar's day), ``headline``, ``template_id`` and ``label``
    (negative/neutral/positive). ``sectors`` (symbol -> sector, as in the symbol table)
    picks sector-specific company names and products. Deterministic for the state of ``rng``.
    """
    days = daily_returns(bars)
    if days.empty:
        return _empty_frame()
    z = days["z"].to_numpy(dtype=float)
    counts = 1 + rng.poisson(EXTRA_HEADLINES_BASE + EXTRA_HEADLINES_PER_SIGMA * np.abs(z))
    day_index = np.repeat(np.arange(len(days)), counts)
    cumulative = _label_probabilities(z[day_index]).cumsum(axis=1)
    draws = rng.random(len(day_index))
    label_index = np.minimum((draws[:, None] > cumulative).sum(axis=1), len(LABELS) - 1)
    seconds = rng.integers(FIRST_SECOND, LAST_SECOND, size=len(day_index))

    writer = _Writer(sorted(days["symbol"].unique()), sectors, rng)
    symbols = days["symbol"].astype(str).tolist()
    stamps = list(pd.to_datetime(days["ts"]))
    returns = days["ret"].tolist()
    headlines, template_ids = [], []
    used: set[int] = set()
    for position, (row, label_position) in enumerate(
        zip(day_index.tolist(), label_index.tolist(), strict=True)
    ):
        if position == 0 or row != day_index[position - 1]:
            used = set()
        day = _Day(symbols[row], stamps[row], returns[row], float(z[row]))
        template = writer.pick(LABELS[label_position], day.z, used)
        used.add(template.template_id)
        headlines.append(writer.render(template, day))
        template_ids.append(template.template_id)

    frame = pd.DataFrame(
        {
            "symbol": days["symbol"].to_numpy()[day_index],
            "ts": pd.to_datetime(days["ts"].to_numpy()[day_index]).normalize()
            + pd.to_timedelta(seconds, unit="s"),
            "headline": headlines,
            "template_id": np.asarray(template_ids, dtype=np.int64),
            "label": np.asarray(LABELS, dtype=object)[label_index],
        }
    )
    frame = frame.sort_values(["ts", "symbol"], kind="stable", ignore_index=True)
    frame.insert(0, "headline_id", np.arange(1, len(frame) + 1, dtype=np.int64))
    return frame


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "headline_id": pd.Series(dtype=np.int64),
            "symbol": pd.Series(dtype=object),
            "ts": pd.Series(dtype="datetime64[ns]"),
            "headline": pd.Series(dtype=object),
            "template_id": pd.Series(dtype=np.int64),
            "label": pd.Series(dtype=object),
        }
    )
