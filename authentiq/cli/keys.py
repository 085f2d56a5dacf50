"""``authentiq keys create|list|revoke``: API keys, against the service's database."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine


@contextmanager
def _engine(args: argparse.Namespace) -> Iterator[Engine]:
    from sqlmodel import SQLModel

    import authentiq.keys  # noqa: F401 - registers the table
    from authentiq.reports import make_engine
    from authentiq.settings import Settings

    engine = make_engine(args.database_url or Settings().database_url)
    SQLModel.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def create(args: argparse.Namespace) -> int:
    from authentiq.keys import create_key

    with _engine(args) as engine:
        row, key = create_key(engine, args.name, [s.strip() for s in args.scopes.split(",") if s.strip()],
                              args.rate_limit)
    print(f"key id {row.id} ({row.name}; scopes {', '.join(row.scopes)})")
    print(key)
    print("This is the only time the key is shown; it is stored as a hash. Send it as "
          "'Authorization: Bearer <key>' or 'X-API-Key: <key>'.")
    return 0


def list_(args: argparse.Namespace) -> int:
    from authentiq.keys import list_keys

    with _engine(args) as engine:
        rows = list_keys(engine)
    for r in rows:
        state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
        print(f"{r.id}  {r.name:<24} {','.join(r.scopes):<20} created {r.created_at:%Y-%m-%d %H:%M}  {state}")
    if not rows:
        print("no keys: with AUTHENTIQ_AUTH=auto the API is open until one exists")
    return 0


def revoke(args: argparse.Namespace) -> int:
    from authentiq.keys import revoke_key

    with _engine(args) as engine:
        row = revoke_key(engine, args.key_id)
    print(f"revoked {row.id} ({row.name}); calls with it now get 401")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    k = sub.add_parser("keys", help="API keys: create (shown once), list, revoke")
    k_sub = k.add_subparsers(dest="keys_command", required=True)
    c = k_sub.add_parser("create", help="create a key and print it once")
    c.add_argument("name", help="who holds it, e.g. 'marketplace-eu' or 'kiosk-milano-1'")
    c.add_argument("--scopes", required=True, help="comma-separated: submit, review, admin")
    c.add_argument("--rate-limit", help="this key's own limit, e.g. 1200/minute "
                                        "(default: AUTHENTIQ_RATE_LIMIT)")
    c.set_defaults(func=create)
    ls = k_sub.add_parser("list", help="ids, names, scopes, state (never the keys)")
    ls.set_defaults(func=list_)
    r = k_sub.add_parser("revoke", help="revoke a key by id")
    r.add_argument("key_id")
    r.set_defaults(func=revoke)
    for p in (c, ls, r):
        p.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL")
