"""Stripe usage prices, rated exactly (docs.stripe.com/api/prices/object; docs/usage-rating.md).

A metered price bills what a period's usage comes to. Every shape Stripe prices usage with is read:

- ``per_unit``: ``unit_amount_decimal`` (minor units per unit, up to 12 decimal places, so a
  sub-cent rate such as 0.25 cents per call is exact), after ``transform_quantity`` (``divide_by``
  units per package, ``round`` ``up`` or ``down``: per 1,000 calls, rounded up, is
  ``ceil(calls / 1000) x unit``);
- ``tiered`` ``graduated``: each tier's units at that tier's ``unit_amount_decimal``, plus the
  ``flat_amount_decimal`` of every tier the quantity reaches;
- ``tiered`` ``volume``: every unit at the rate (and flat fee) of the tier the total falls in;
- ``currency_options``: the same price in other currencies, each with its own amounts or tiers.

``amount(q)`` is what the period's total quantity ``q`` bills, computed at full precision and
rounded half-up to the minor unit once per period (one invoice line); zero usage bills zero. A
usage event is rated as the increase it makes: ``amount(cumulative) - amount(cumulative - q)``
within its billing period (``usage.map_usage``), so the events of a period add up to exactly
what the period bills. Under volume pricing a larger total can lower every unit's rate, and the
event that crosses into the cheaper tier then carries a negative increase (a cumulative catch-up;
DECISIONLOG.md "Usage rated at what the period bills").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import numpy as np

_SAFE = 2**61


class UnsupportedPrice(ValueError):
    """A price whose shape q2c cannot rate exactly (named in the usage row's quarantine)."""


@dataclass(frozen=True)
class Tier:
    up_to: int | None  # inclusive upper bound of the tier; None is "inf"
    unit: Fraction  # minor units per unit
    flat: Fraction  # minor units once the tier is reached


@dataclass(frozen=True)
class UsagePrice:
    """One metered price in one currency."""

    price_id: str
    currency: str
    scheme: str  # per_unit | graduated | volume
    unit: Fraction = Fraction(0)
    tiers: tuple[Tier, ...] = ()
    divide_by: int = 1
    round: str | None = None  # up | down (transform_quantity), None without a transform
    interval: str = "month"
    interval_count: int = 1
    meter: str | None = None

    def describe(self) -> str:
        """The price in words, for the rated-usage payload and the usage tie-out."""
        if self.scheme == "per_unit":
            per = f" per {self.divide_by} (rounded {self.round})" if self.divide_by != 1 else ""
            return f"{_text(self.unit)} minor units{per}"
        parts = [f"up to {t.up_to if t.up_to is not None else 'inf'}: {_text(t.unit)}"
                 + (f" + {_text(t.flat)} flat" if t.flat else "") for t in self.tiers]
        return f"{self.scheme} tiers (" + "; ".join(parts) + ")"

    def amount(self, quantity: np.ndarray) -> np.ndarray:
        """What a period's total quantity bills, in minor units (int64), element-wise.

        ``quantity`` holds whole non-negative units."""
        q = np.asarray(quantity, dtype=np.int64)
        if q.size and int(q.min()) < 0:
            raise ValueError("usage quantities must be >= 0")
        if self.scheme == "per_unit":
            units = q
            if self.divide_by != 1:
                units = (q + (self.divide_by - 1)) // self.divide_by if self.round == "up" \
                    else q // self.divide_by
            return _round_half_up([(units, self.unit)], [], q.size)
        lower = 0
        terms, flats = [], []
        for tier in self.tiers:
            upper = tier.up_to
            if self.scheme == "graduated":
                top = q if upper is None else np.minimum(q, upper)
                terms.append((np.maximum(top - lower, 0), tier.unit))
                flats.append((q > lower, tier.flat))
            else:  # volume: the tier the total falls in prices every unit
                inside = (q > lower) & (True if upper is None else q <= upper)
                terms.append((np.where(inside, q, 0), tier.unit))
                flats.append((inside, tier.flat))
            if upper is None:
                break
            lower = upper
        return _round_half_up(terms, flats, q.size)


def _round_half_up(terms: list[tuple[np.ndarray, Fraction]],
                   flats: list[tuple[np.ndarray, Fraction]], size: int) -> np.ndarray:
    """sum(units x rate) + sum(reached x flat), rounded half-up once, exactly."""
    rates = [rate for _, rate in terms] + [flat for _, flat in flats]
    denominator = math.lcm(*[r.denominator for r in rates]) if rates else 1
    bound = sum(int(np.abs(units).max(initial=0)) * abs(rate.numerator)
                * (denominator // rate.denominator) for units, rate in terms) \
        + sum(abs(flat.numerator) * (denominator // flat.denominator) for _, flat in flats)
    exact = object if 2 * bound + denominator >= _SAFE else np.int64
    total = np.zeros(size, dtype=exact)
    for units, rate in [*terms, *flats]:
        scaled = int(rate.numerator * (denominator // rate.denominator))
        total = total + np.asarray(units).astype(exact) * scaled
    rounded = (2 * total + denominator) // (2 * denominator)  # totals are >= 0 here
    return np.asarray(rounded, dtype=np.int64)


def _text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return format(Decimal(value.numerator) / Decimal(value.denominator), "f")


def _decimal(value: Any, field: str, integer: Any = None) -> Fraction:
    """A Stripe ``*_decimal`` string (else its integer twin) as an exact fraction."""
    text = value if value is not None else integer
    if text is None:
        return Fraction(0)
    try:
        number = Decimal(str(text))
    except InvalidOperation as error:
        raise UnsupportedPrice(f"{field} {text!r} is not a decimal number") from error
    if not number.is_finite() or number < 0:
        raise UnsupportedPrice(f"{field} {text!r} is not a non-negative decimal number")
    return Fraction(number)


def _tiers(raw: Any, price_id: str) -> tuple[Tier, ...]:
    if not isinstance(raw, list) or not raw:
        raise UnsupportedPrice(f"price {price_id!r}: tiered without tiers (Stripe sends them "
                               "only expanded: tiers, currency_options.<currency>.tiers)")
    tiers = []
    previous = 0
    for index, tier in enumerate(raw):
        up_to = tier.get("up_to")
        if up_to in (None, "inf"):
            up_to = None
        else:
            try:
                up_to = int(up_to)
            except (TypeError, ValueError) as error:
                raise UnsupportedPrice(f"price {price_id!r}: tiers[{index}].up_to {up_to!r} "
                                       "is not a whole number") from error
            if up_to <= previous:
                raise UnsupportedPrice(f"price {price_id!r}: tiers[{index}].up_to {up_to} "
                                       "does not rise")
            previous = up_to
        tiers.append(Tier(
            up_to,
            _decimal(tier.get("unit_amount_decimal"), f"tiers[{index}].unit_amount_decimal",
                     tier.get("unit_amount")),
            _decimal(tier.get("flat_amount_decimal"), f"tiers[{index}].flat_amount_decimal",
                     tier.get("flat_amount")),
        ))
        if tiers[-1].flat.denominator != 1:
            raise UnsupportedPrice(f"price {price_id!r}: tiers[{index}].flat_amount_decimal "
                                   "is not a whole number of minor units")
        if up_to is None:
            break
    if tiers[-1].up_to is not None:
        raise UnsupportedPrice(f"price {price_id!r}: the last tier must be up_to 'inf'")
    return tuple(tiers)


def usage_prices_of(price: Mapping[str, Any]) -> list[UsagePrice | UnsupportedPrice]:
    """A Stripe price object -> one ``UsagePrice`` per currency (the price's own currency, then
    each of ``currency_options``), or the reason it cannot be rated, per currency."""
    price_id = str(price.get("id"))
    recurring = price.get("recurring") or {}
    transform = price.get("transform_quantity") or {}
    scheme = price.get("billing_scheme") or "per_unit"
    variants: list[tuple[str, Mapping[str, Any]]] = [(str(price.get("currency") or ""), price)]
    options = price.get("currency_options") or {}
    if isinstance(options, Mapping):
        variants += [(str(code), option or {}) for code, option in sorted(options.items())
                     if str(code).lower() != str(price.get("currency") or "").lower()]
    out: list[UsagePrice | UnsupportedPrice] = []
    for currency, source in variants:
        try:
            out.append(_one_price(price_id, currency.upper(), scheme, price, source, recurring,
                                  transform))
        except UnsupportedPrice as error:
            error.currency = currency.upper()  # type: ignore[attr-defined]
            out.append(error)
    return out


def _one_price(price_id: str, currency: str, scheme: str, price: Mapping[str, Any],
               source: Mapping[str, Any], recurring: Mapping[str, Any],
               transform: Mapping[str, Any]) -> UsagePrice:
    if any(_enabled(x.get("custom_unit_amount")) for x in (price, source)):
        raise UnsupportedPrice(f"price {price_id!r}: a customer-chosen amount "
                               "(custom_unit_amount) cannot price usage")
    aggregate = recurring.get("aggregate_usage")
    if aggregate not in (None, "sum"):
        raise UnsupportedPrice(f"price {price_id!r}: aggregate_usage {aggregate!r} bills one "
                               "reading of the period, not the sum of its events")
    interval = str(recurring.get("interval") or "month")
    count = int(recurring.get("interval_count") or 1)
    common = {"price_id": price_id, "currency": currency, "interval": interval,
              "interval_count": count, "meter": recurring.get("meter")}
    if scheme == "tiered":
        if transform:
            raise UnsupportedPrice(f"price {price_id!r}: transform_quantity with tiers "
                                   "(Stripe refuses the combination)")
        mode = price.get("tiers_mode")
        if mode not in ("graduated", "volume"):
            raise UnsupportedPrice(f"price {price_id!r}: tiers_mode {mode!r} is neither "
                                   "'graduated' nor 'volume'")
        return UsagePrice(scheme=str(mode), tiers=_tiers(source.get("tiers"), price_id), **common)
    if scheme != "per_unit":
        raise UnsupportedPrice(f"price {price_id!r}: billing_scheme {scheme!r} is unknown")
    if source.get("unit_amount_decimal") is None and source.get("unit_amount") is None:
        raise UnsupportedPrice(f"price {price_id!r}: no unit_amount_decimal in {currency}")
    divide_by, rounding = 1, None
    if transform:
        try:
            divide_by = int(transform.get("divide_by"))
        except (TypeError, ValueError) as error:
            raise UnsupportedPrice(f"price {price_id!r}: transform_quantity.divide_by "
                                   f"{transform.get('divide_by')!r} is not a whole number"
                                   ) from error
        rounding = transform.get("round")
        if divide_by < 1 or rounding not in ("up", "down"):
            raise UnsupportedPrice(f"price {price_id!r}: transform_quantity {dict(transform)!r}"
                                   " needs divide_by >= 1 and round 'up' or 'down'")
    return UsagePrice(scheme="per_unit", divide_by=divide_by, round=rounding,
                      unit=_decimal(source.get("unit_amount_decimal"), "unit_amount_decimal",
                                    source.get("unit_amount")), **common)


def _enabled(custom: Any) -> bool:
    """A ``custom_unit_amount`` that is set (Stripe's own fixture sends one whose fields are
    all null: not a customer-chosen amount)."""
    if not isinstance(custom, Mapping):
        return bool(custom)
    return any(value is not None for value in custom.values())


def price_to_json(price: UsagePrice) -> str:
    """A stable text form (the price table's ``pricing`` column; rows sort and compare on it)."""
    return json.dumps({
        "price_id": price.price_id, "currency": price.currency, "scheme": price.scheme,
        "unit": _text(price.unit), "divide_by": price.divide_by, "round": price.round,
        "tiers": [[t.up_to, _text(t.unit), _text(t.flat)] for t in price.tiers],
        "interval": price.interval, "interval_count": price.interval_count,
        "meter": price.meter,
    }, sort_keys=True)


def price_from_json(text: str) -> UsagePrice:
    data = json.loads(text)
    return UsagePrice(
        price_id=data["price_id"], currency=data["currency"], scheme=data["scheme"],
        unit=Fraction(Decimal(data["unit"])), divide_by=int(data["divide_by"]),
        round=data["round"], interval=data["interval"],
        interval_count=int(data["interval_count"]), meter=data["meter"],
        tiers=tuple(Tier(up, Fraction(Decimal(unit)), Fraction(Decimal(flat)))
                    for up, unit, flat in data["tiers"]),
    )
