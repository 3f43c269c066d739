"""Conversion of minor-unit amounts to the functional currency at the rate of a booking date."""

from __future__ import annotations

import bisect
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import numpy as np
import pandas as pd

from q2c_pipeline.core.money import minor_exponent
from q2c_pipeline.core.rounding import mul_div_half_up


class RateBook:
    """FX rates by pair: 1 ``from_currency`` = ``rate`` ``to_currency`` from ``rate_date`` on.

    The rate for a date is the latest on or before it; the inverse pair serves too (a direct row
    wins over an inverse row on the same date). Rates are exact fractions (Decimal ratios).
    """

    def __init__(self, fx_rates: pd.DataFrame | None) -> None:
        pairs: dict[tuple[str, str], dict[pd.Timestamp, tuple[int, int, int]]] = {}
        if fx_rates is not None and len(fx_rates):
            for row in fx_rates.itertuples(index=False):
                try:
                    rate = Decimal(str(row.rate).strip())
                except InvalidOperation as error:
                    raise ValueError(f"fx_rates: rate {row.rate!r} is not a decimal") from error
                if rate <= 0:
                    raise ValueError(f"fx_rates: rate {row.rate!r} must be positive")
                num, den = rate.as_integer_ratio()
                day = pd.Timestamp(row.rate_date).normalize()
                src, dst = str(row.from_currency).upper(), str(row.to_currency).upper()
                # priority 0 = direct row, 1 = inverse; the direct row wins on the same date.
                pairs.setdefault((src, dst), {})[day] = (0, num, den)
                inverse = pairs.setdefault((dst, src), {})
                if day not in inverse:
                    inverse[day] = (1, den, num)
        self._dates: dict[tuple[str, str], list[pd.Timestamp]] = {}
        self._rates: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for pair, by_day in pairs.items():
            days = sorted(by_day)
            self._dates[pair] = days
            self._rates[pair] = [(by_day[d][1], by_day[d][2]) for d in days]

    def ratio(self, from_currency: str, to_currency: str, on: pd.Timestamp) -> tuple[int, int]:
        """(numerator, denominator) of the rate for ``on``; ValueError naming pair and date."""
        if from_currency == to_currency:
            return 1, 1
        pair = (from_currency, to_currency)
        days = self._dates.get(pair, [])
        position = bisect.bisect_right(days, pd.Timestamp(on))
        if position == 0:
            raise ValueError(
                f"no FX rate {from_currency}->{to_currency} on or before "
                f"{pd.Timestamp(on).date().isoformat()}"
            )
        return self._rates[pair][position - 1]

    def convert(self, amounts, currencies, functional, dates) -> np.ndarray:
        """Each minor-unit amount in its functional currency, half-up to the minor unit."""
        amount = np.asarray(amounts, dtype=np.int64)
        if amount.size == 0:
            return np.zeros(0, dtype=np.int64)
        num, den = self._ratios(currencies, functional, dates)
        if all(int(v) < 2**62 for v in (*num, *den)):
            return mul_div_half_up(amount, num.astype(np.int64), den.astype(np.int64))
        out = [
            int((2 * abs(int(a)) * int(x) + int(t)) // (2 * int(t))) * (1 if a >= 0 else -1)
            for a, x, t in zip(amount, num, den, strict=True)
        ]
        return np.asarray(out, dtype=np.int64)

    def exact(self, amounts, currencies, functional, dates) -> list[Fraction]:
        """Each minor-unit amount in functional minor units, unrounded (a Fraction)."""
        if len(amounts) == 0:
            return []
        num, den = self._ratios(currencies, functional, dates)
        return [Fraction(int(a) * int(x), int(t))
                for a, x, t in zip(np.asarray(amounts, dtype=np.int64), num, den, strict=True)]

    def _ratios(self, currencies, functional, dates) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the (numerator, denominator) turning minor units of its currency into
        minor units of its functional currency on its date."""
        keys = pd.DataFrame(
            {"cur": np.asarray(currencies, dtype=object),
             "fc": np.asarray(functional, dtype=object),
             "day": pd.DatetimeIndex(np.asarray(dates, dtype="datetime64[ns]")).normalize()}
        )
        # earliest day first, so a missing rate is reported for the first day that needs it
        unique = keys.drop_duplicates().sort_values(["day", "cur", "fc"], kind="mergesort")
        unique = unique.reset_index(drop=True)
        nums, dens = [], []
        for cur, fc, day in unique.itertuples(index=False):
            if pd.isna(day):
                raise ValueError(f"no booking date to convert {cur} to {fc}")
            num, den = self.ratio(cur, fc, day)
            shift = minor_exponent(fc) - minor_exponent(cur)
            if shift >= 0:
                num *= 10**shift
            else:
                den *= 10 ** (-shift)
            nums.append(num)
            dens.append(den)
        unique["num"] = pd.Series(nums, dtype=object)
        unique["den"] = pd.Series(dens, dtype=object)
        merged = keys.merge(unique, on=["cur", "fc", "day"], how="left", validate="many_to_one")
        return merged["num"].to_numpy(), merged["den"].to_numpy()
