"""unit_converter and currency_converter: offline, from bundled tables.

Units: a table of linear factors to one base unit per dimension (length in m,
mass in kg, time in s, volume in l, area in m², speed in m/s, data in bytes,
energy in J, pressure in Pa) plus the affine temperature scales. Currency:
tools/data/currency_rates.json, a dated table with EUR as base; every answer
names the table's date so a user can judge it.
"""

from __future__ import annotations

import json
from pathlib import Path

from kernel.protocol.messages import EINVAL
from tools.base import READ_ONLY, Tool, ToolError, obj_schema

RATES_FILE = Path(__file__).resolve().parent / "data" / "currency_rates.json"

# unit -> (dimension, factor to the dimension's base unit)
UNITS: dict[str, tuple[str, float]] = {}


def _units(dim: str, table: dict[str, float]) -> None:
    for names, f in table.items():
        for n in names.split("|"):
            UNITS[n] = (dim, f)


_units("length", {"m|meter|meters|metre|metres": 1, "km|kilometer|kilometers|kilometre|kilometres": 1e3,
                  "cm|centimeter|centimeters": 1e-2, "mm|millimeter|millimeters": 1e-3, "um|micrometer": 1e-6,
                  "nm|nanometer": 1e-9, "in|inch|inches": 0.0254, "ft|foot|feet": 0.3048,
                  "yd|yard|yards": 0.9144, "mi|mile|miles": 1609.344, "nmi|nautical mile|nautical miles": 1852})
_units("mass", {"kg|kilogram|kilograms": 1, "g|gram|grams": 1e-3, "mg|milligram|milligrams": 1e-6,
                "t|tonne|tonnes|metric ton": 1e3, "lb|lbs|pound|pounds": 0.45359237, "oz|ounce|ounces": 0.028349523125,
                "st|stone|stones": 6.35029318})
_units("time", {"s|sec|second|seconds": 1, "ms|millisecond|milliseconds": 1e-3, "min|minute|minutes": 60,
                "h|hr|hour|hours": 3600, "day|days": 86400, "week|weeks": 604800, "year|years": 31557600})
_units("volume", {"l|liter|liters|litre|litres": 1, "ml|milliliter|milliliters": 1e-3, "m3|cubic meter": 1e3,
                  "gal|gallon|gallons": 3.785411784, "qt|quart|quarts": 0.946352946, "pt|pint|pints": 0.473176473,
                  "cup|cups": 0.2365882365, "floz|fl oz|fluid ounce": 0.0295735295625})
_units("area", {"m2|square meter|square meters": 1, "km2|square kilometer": 1e6, "ha|hectare|hectares": 1e4,
                "acre|acres": 4046.8564224, "ft2|square foot|square feet": 0.09290304, "mi2|square mile": 2589988.110336})
_units("speed", {"m/s|mps": 1, "km/h|kph|kmh": 1 / 3.6, "mph": 0.44704, "kn|knot|knots": 1852 / 3600})
_units("data", {"b|byte|bytes": 1, "kb|kilobyte": 1e3, "mb|megabyte": 1e6, "gb|gigabyte": 1e9, "tb|terabyte": 1e12,
                "kib|kibibyte": 1024, "mib|mebibyte": 1024**2, "gib|gibibyte": 1024**3, "bit|bits": 0.125})
_units("energy", {"j|joule|joules": 1, "kj|kilojoule": 1e3, "cal|calorie|calories": 4.184,
                  "kcal|kilocalorie|kilocalories": 4184, "wh|watt hour": 3600, "kwh|kilowatt hour": 3.6e6})
_units("pressure", {"pa|pascal": 1, "kpa": 1e3, "bar": 1e5, "atm|atmosphere": 101325, "psi": 6894.757293168})

TEMPS = {"c": "c", "celsius": "c", "°c": "c", "f": "f", "fahrenheit": "f", "°f": "f", "k": "k", "kelvin": "k"}


def _to_kelvin(v: float, s: str) -> float:
    return {"c": v + 273.15, "f": (v - 32) * 5 / 9 + 273.15, "k": v}[s]


def _from_kelvin(v: float, s: str) -> float:
    return {"c": v - 273.15, "f": (v - 273.15) * 9 / 5 + 32, "k": v}[s]


def convert_units(value: float, frm: str, to: str) -> float:
    a, b = frm.strip().lower(), to.strip().lower()
    if a in TEMPS or b in TEMPS:
        if a not in TEMPS or b not in TEMPS:
            raise ToolError(EINVAL, f"cannot convert {frm!r} to {to!r}: only temperatures convert to temperatures")
        return _from_kelvin(_to_kelvin(value, TEMPS[a]), TEMPS[b])
    ua, ub = UNITS.get(a), UNITS.get(b)
    for name, u in ((frm, ua), (to, ub)):
        if u is None:
            raise ToolError(EINVAL, f"unknown unit {name!r}")
    if ua[0] != ub[0]:
        raise ToolError(EINVAL, f"cannot convert {ua[0]} ({frm}) to {ub[0]} ({to})")
    return value * ua[1] / ub[1]


def _nice(x: float) -> float:
    return float(f"{x:.6g}") if abs(x) < 1e15 else x


def _pair_schema(amount: str, frm: str, to: str, max_len: int) -> dict:
    """Schema of a converter's arguments: a number and the two names (up to ``max_len`` characters)."""
    name = {"type": "string", "minLength": 1, "maxLength": max_len}
    return obj_schema([amount, frm, to], **{amount: {"type": "number"}, frm: name, to: dict(name)})


class _Converter(Tool):
    """What both converters share: read-only table look-ups, cheap enough to run 8 at once."""

    side_effect = READ_ONLY
    parallel = 8
    timeout_s = 2.0


class UnitConverter(_Converter):
    name = "unit_converter"
    _NAMES = tuple(sorted({*UNITS, *TEMPS}))
    keywords = ("convert", "unit", "units", *_NAMES)
    values = {"from_unit": _NAMES, "to_unit": _NAMES}
    description = ("Convert a value between units of length, mass, time, volume, area, speed, data, energy, "
                   "pressure or temperature, e.g. value=5, from_unit='km', to_unit='mi'.")
    schema = _pair_schema("value", "from_unit", "to_unit", 32)

    def run(self, args, ctx):
        out = convert_units(args["value"], args["from_unit"], args["to_unit"])
        return {"value": _nice(out), "unit": args["to_unit"]}


class CurrencyConverter(_Converter):
    name = "currency_converter"
    _TABLE = json.loads(RATES_FILE.read_text())
    _NAMES = tuple(sorted({*(c.lower() for c in _TABLE["rates"]), *(a.lower() for a in _TABLE["aliases"])}))
    keywords = ("convert", "currency", "exchange", "money", *(n for n in _NAMES if n not in ("try", "real")))
    values = {"from_currency": _NAMES, "to_currency": _NAMES}
    description = ("Convert an amount between currencies with a bundled, dated rate table (offline), "
                   "e.g. amount=100, from_currency='USD', to_currency='EUR'.")
    schema = _pair_schema("amount", "from_currency", "to_currency", 16)

    def table(self) -> dict:
        return self._TABLE

    def code(self, name: str) -> str:
        t = self.table()
        key = name.strip().upper()
        key = t["aliases"].get(key, key)
        if key not in t["rates"]:
            raise ToolError(EINVAL, f"unknown currency {name!r} (known: {', '.join(sorted(t['rates']))})")
        return key

    def run(self, args, ctx):
        t = self.table()
        a, b = self.code(args["from_currency"]), self.code(args["to_currency"])
        out = args["amount"] / t["rates"][a] * t["rates"][b]
        return {"amount": round(out, 4), "currency": b, "rate": _nice(t["rates"][b] / t["rates"][a]),
                "rates_date": t["date"], "source": t["source"]}


TOOLS = [UnitConverter(), CurrencyConverter()]
