"""``authentiq products add|list|set``: the products (brand/model) this deployment serves and their
threshold overrides, in the same table ``PUT /v1/products/{brand}/{model}`` writes.

A running server sees a change within ``AUTHENTIQ_REFERENCE_SYNC_S`` (the change counter every
product write bumps). Thresholds are validated by the API's own model (``ProductThresholds``).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from authentiq.contract.model_spec import ModelSpec, read_spec
from authentiq.errors import AuthentiqError, InvalidField, UnknownProduct
from authentiq.pipeline.verdict import ProductThresholds, effective_thresholds
from authentiq.settings import Settings
from authentiq.storage.blobs import open_blobs
from authentiq.storage.db import open_configured
from authentiq.storage.references import ProductRow, ReferenceStore, product_key

HELP = {
    "min_similarity": "an item must resemble its closest genuine references at least this much "
                      "to be called authentic (-1..1)",
    "authentic_below": "fused probability below which an item is authentic (0..1)",
    "counterfeit_above": "fused probability from which an item is counterfeit (0..1)",
    "classifier_authentic_below": "classifier-alone band, lower edge (no references) (0..1)",
    "classifier_counterfeit_above": "classifier-alone band, upper edge (no references) (0..1)",
    "mismatch_margin": "how much better another product's references must match than the "
                       "claimed product's for a model mismatch (0..2)",
    "allow_classifier_only": "may an item be called authentic on the classifier alone while the "
                             "product has no genuine references",
}
OPTIONS = {name: "--" + name.replace("_", "-") for name in ProductThresholds.model_fields}


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("products", help="the products (brand/model) served and their thresholds "
                                        "(like PUT /v1/products)")
    ps = p.add_subparsers(dest="products_command", required=True, metavar="COMMAND")
    a = ps.add_parser("add", help="create a product, optionally with threshold overrides")
    _names(a)
    _threshold_options(a)
    a.set_defaults(func=add)
    s = ps.add_parser("set", help="change some threshold overrides of a product")
    _names(s)
    _threshold_options(s)
    s.add_argument("--reset", action="append", choices=sorted(OPTIONS), metavar="NAME",
                   help="drop this override (back to the model's default); repeatable; one of "
                        + ", ".join(sorted(OPTIONS)))
    s.add_argument("--reset-all", action="store_true", help="drop every override")
    s.set_defaults(func=set_)
    ls = ps.add_parser("list", help="every product: its references and overrides (--json: also the "
                                     "thresholds in force)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--model", type=Path,
                    help="the model whose defaults and products apply (default: AUTHENTIQ_MODEL_PATH)")
    ls.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL, else the data folder's")
    ls.set_defaults(func=list_)


def _names(p: argparse.ArgumentParser) -> None:
    p.add_argument("brand", help="e.g. Castellan (case is kept; matching ignores it)")
    p.add_argument("model", help="e.g. Riva")
    p.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL, else the data folder's")


def _threshold_options(p: argparse.ArgumentParser) -> None:
    for name, field in ProductThresholds.model_fields.items():
        text = HELP.get(name) or field.description or name.replace("_", " ")
        if field.annotation == bool | None:
            p.add_argument(OPTIONS[name], dest=name, action=argparse.BooleanOptionalAction,
                           default=None, help=f"{text} (default: the model's, false)")
        else:
            p.add_argument(OPTIONS[name], dest=name, type=float, metavar="X",
                           help=f"{text} (default: the model's)")


@contextmanager
def _store(args: argparse.Namespace, *, existing: bool = False) -> Iterator[ReferenceStore]:
    """``existing``: a command that only reads (list) refuses a database that is not there."""
    engine = open_configured(args.database_url, existing=existing)
    try:
        yield ReferenceStore(engine, open_blobs(Settings().storage).child("references"))
    finally:
        engine.dispose()


def _check_name(what: str, value: str) -> str:
    value = value.strip()
    if not value or len(value) > 128 or re.search(r"[\x00-\x1f\x7f]", value):
        raise InvalidField(f"{what} {value!r} must be 1 to 128 characters, without control characters")
    return value


def _given(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in OPTIONS if getattr(args, name) is not None}


def _validated(overrides: dict[str, Any]) -> dict[str, Any]:
    try:
        return ProductThresholds.model_validate(overrides).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise InvalidField("; ".join(
            f"{OPTIONS.get(str(e['loc'][0]), '') if e['loc'] else ''} {e['msg']}".strip()
            .replace("Value error, ", "") for e in exc.errors())) from None


def _find(store: ReferenceStore, brand: str, model: str) -> ProductRow | None:
    key = product_key(brand, model)
    return next((row for row in store.products() if row.key == key), None)


def add(args: argparse.Namespace) -> int:
    brand, model = _check_name("brand", args.brand), _check_name("model", args.model)
    overrides = _validated(_given(args))
    with _store(args) as store:
        existing = _find(store, brand, model)
        if existing is not None:
            raise InvalidField(f"{existing.brand} / {existing.model} is already a product; change "
                               f"its thresholds with `authentiq products set`")
        row = store.put_product(brand, model, overrides)
    print(f"added {row.brand} / {row.model}" + (f" with {_overrides(row)}" if row.thresholds else ""))
    return 0


def set_(args: argparse.Namespace) -> int:
    brand, model = _check_name("brand", args.brand), _check_name("model", args.model)
    changes = _given(args)
    if not changes and not args.reset and not args.reset_all:
        raise AuthentiqError("nothing to change: give an option such as --min-similarity 0.8, "
                             "or --reset NAME (see `authentiq products set --help`)")
    with _store(args) as store:
        row = _find(store, brand, model)
        if row is None:
            raise UnknownProduct(f"{brand} / {model} is not a product; create it with "
                                 f"`authentiq products add {_quote(brand)} {_quote(model)}`")
        kept = {} if args.reset_all else {k: v for k, v in row.thresholds.items()
                                         if k not in (args.reset or ())}
        row = store.put_product(row.brand, row.model, _validated({**kept, **changes}))
    print(f"{row.brand} / {row.model}: {_overrides(row) or 'no overrides (the model defaults apply)'}")
    return 0


def list_(args: argparse.Namespace) -> int:
    spec = _spec(args.model)
    declared = {(b.casefold(), m.casefold()) for b, m in spec.products} if spec else set()
    with _store(args, existing=True) as store:
        rows = [(row, store.count(brand=row.brand, model=row.model)) for row in store.products()]
    items: list[dict[str, Any]] = [
        {"brand": row.brand, "model": row.model, "references": n, "overrides": row.thresholds,
         "trained_on": (row.brand.casefold(), row.model.casefold()) in declared,
         **({"thresholds": effective_thresholds(spec, row.thresholds)} if spec else {})}
        for row, n in rows]
    if args.json:
        print(json.dumps({"items": items, "count": len(items)}, indent=2, ensure_ascii=False))
        return 0
    if not items:
        print("no products yet: `authentiq products add BRAND MODEL`, or serve a model that "
              "declares its products")
        return 0
    width = min(40, max(len(f"{i['brand']} / {i['model']}") for i in items) + 2)
    print(f"{'product':<{width}}{'references':>11}  {'declared':<9} overrides")
    for i in items:
        name = f"{i['brand']} / {i['model']}"
        print(f"{name[:width - 1]:<{width}}{i['references']:>11}  "
              f"{('yes' if i['trained_on'] else 'no') if spec else '?':<9} "
              f"{_format(i['overrides']) or '-'}")
    if spec:
        print(f"(declared: whether the model {spec.version_key} names the product)")
    return 0


def _spec(path: Path | None) -> ModelSpec | None:
    """The model's contract for its defaults; None (said so) when the model cannot be read."""
    try:
        return read_spec(path or Settings().model_path)
    except AuthentiqError:
        return None


def _overrides(row: ProductRow) -> str:
    return _format(row.thresholds)


def _format(thresholds: dict[str, Any]) -> str:
    return ", ".join(f"{k} {str(v).lower() if isinstance(v, bool) else v}"
                     for k, v in sorted(thresholds.items()))


def _quote(name: str) -> str:
    return f'"{name}"' if re.search(r"\s|&", name) else name
