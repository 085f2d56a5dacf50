"""stored reports keep ids, not URLs: ``links`` leave the stored body (the API makes them from
the ids), and ``heatmaps.images`` (class → view → URL) becomes ``heatmaps.views`` (the views
with a heatmap). Clients see the same links as before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 04:00:00
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

reports = sa.table('reports', sa.column('id', sa.String), sa.column('body', sa.JSON))
PAGE = 500


def _pages() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    conn, last = op.get_bind(), ''
    while True:
        rows = conn.execute(sa.select(reports.c.id, reports.c.body).where(reports.c.id > last)
                            .order_by(reports.c.id).limit(PAGE)).all()
        if not rows:
            return
        yield [(r.id, dict(r.body)) for r in rows]
        last = rows[-1].id


def _rewrite(change: Any) -> None:
    conn = op.get_bind()
    for page in _pages():
        for report_id, body in page:
            if change(report_id, body):
                conn.execute(reports.update().where(reports.c.id == report_id).values(body=body))


def upgrade() -> None:
    def to_ids(report_id: str, body: dict[str, Any]) -> bool:
        heatmaps = dict(body.get('heatmaps') or {})
        if 'links' not in body and 'images' not in heatmaps:
            return False
        body.pop('links', None)
        images = heatmaps.pop('images', None) or {}
        first: dict[str, str] = next(iter(images.values()), {})
        heatmaps['views'] = list(first)
        body['heatmaps'] = heatmaps
        return True

    _rewrite(to_ids)


def downgrade() -> None:
    def to_urls(report_id: str, body: dict[str, Any]) -> bool:
        heatmaps = dict(body.get('heatmaps') or {})
        if 'views' not in heatmaps:
            return False
        base = f'/v1/reports/{report_id}'
        views = heatmaps.pop('views')
        heatmaps['images'] = {cls: {v: f'{base}/heatmaps/{cls}/{v}' for v in views}
                              for cls in heatmaps.get('classes', [])}
        body['heatmaps'] = heatmaps
        body['links'] = {'self': base, 'page': f'/reports/{report_id}', 'pdf': f'{base}.pdf',
                         'views': {v['view']: f'{base}/views/{v["view"]}'
                                   for v in body.get('views', [])}}
        return True

    _rewrite(to_urls)
