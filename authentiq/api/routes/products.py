"""``/v1/products``: the brand/model pairs this deployment serves, with their verdict thresholds.

Once API keys exist, ``PUT`` needs the admin scope.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from authentiq.api.auth import require
from authentiq.api.deps import ServicesDep
from authentiq.api.schemas import Product, ProductList
from authentiq.api.uploads import PROBLEMS
from authentiq.pipeline.verdict import ProductThresholds, effective_thresholds
from authentiq.services.container import Services
from authentiq.storage.references import ProductRow

router = APIRouter(prefix="/v1/products", tags=["products"])
Name = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$",
                           description="no control characters")]


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    thresholds: ProductThresholds = Field(
        default_factory=ProductThresholds,
        description="overrides of the model's defaults; omitted or null values keep the default")


@router.get("", response_model=ProductList, summary="Products, their thresholds and reference counts",
            dependencies=[require("submit", "review")])
async def list_products(services: ServicesDep) -> dict[str, Any]:
    rows = await asyncio.to_thread(services.references.products)
    await asyncio.to_thread(services.index.sync)
    items = [_product(services, r) for r in rows]
    return {"items": items, "count": len(items)}


@router.put("/{brand}/{model}", response_model=Product, responses={422: PROBLEMS[422]},
            summary="Create a product or set its threshold overrides", dependencies=[require("admin")])
async def put_product(brand: Name, model: Name, update: ProductUpdate,
                      services: ServicesDep) -> dict[str, Any]:
    overrides = update.thresholds.model_dump(exclude_none=True)
    row = await asyncio.to_thread(services.references.put_product, brand, model, overrides)
    await asyncio.to_thread(services.index.sync, force=True)
    return _product(services, row)


def _product(services: Services, row: ProductRow) -> dict[str, Any]:
    spec = services.backend.spec
    return {"brand": row.brand, "model": row.model, "overrides": row.thresholds,
            "thresholds": effective_thresholds(spec, row.thresholds),
            "references": services.index.count(row.brand, row.model),
            "trained_on": (row.brand.casefold(), row.model.casefold()) in
            {(b.casefold(), m.casefold()) for b, m in spec.products}}
