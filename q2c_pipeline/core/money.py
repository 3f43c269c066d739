"""Exact money: integer minor units per ISO 4217, conversion to and from decimal strings."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor-unit exponents that differ from 2. Everything else has 2.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}

# Active ISO 4217 currency codes (the list maintained by SIX for ISO, 2025 edition, including XCG
# and ZWG), without precious metals, bond-market units, SDRs and the testing codes: the codes an
# invoice, a payment or a contract can be in.
ISO_4217 = frozenset("""
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD
    JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT
    MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG
    QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF
    XPF YER ZAR ZMW ZWG
""".split())


def minor_exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: str | Decimal | int, currency: str) -> int:
    """Decimal amount (string or Decimal) in major units -> integer minor units, half-up.

    Floats are refused: they cannot carry money exactly.
    """
    if isinstance(amount, float):
        raise TypeError(f"money must not be a float: {amount!r}")
    value = Decimal(str(amount).strip())
    scaled = value.scaleb(minor_exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor(amount_minor: int, currency: str) -> str:
    """Integer minor units -> decimal string in major units ("1234.50")."""
    exponent = minor_exponent(currency)
    value = Decimal(int(amount_minor)).scaleb(-exponent)
    return f"{value:.{exponent}f}"


def round_half_up(value: Decimal) -> int:
    """Round a Decimal number of minor units to an integer, half away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def major_units(name: str, totals) -> dict:
    """``<name> <CCY>``: each currency's total in major units (what a controller reads), with
    the currency in the label; the tables keep integer minor units."""
    return {f"{name} {currency}": f"{Decimal(from_minor(int(total), currency)):,}"
            for currency, total in sorted(totals.items())}
