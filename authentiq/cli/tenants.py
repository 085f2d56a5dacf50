"""``authentiq tenants create|list``: the tenants that keys (and everything they make) belong to."""

from __future__ import annotations

import argparse

from authentiq.cli.keys import database


def create(args: argparse.Namespace) -> int:
    from authentiq.storage.tenants import create_tenant

    with database(args) as engine:
        row = create_tenant(engine, args.tenant_id, args.name)
    print(f"tenant {row.id} ({row.name}) created; give it keys with "
          f"`authentiq keys create NAME --scopes submit --tenant {row.id}`")
    return 0


def list_(args: argparse.Namespace) -> int:
    from authentiq.storage.keys import list_keys
    from authentiq.storage.tenants import list_tenants

    with database(args, existing=True) as engine:
        tenants = list_tenants(engine)
        keys = list_keys(engine)
    for t in tenants:
        live = sum(1 for k in keys if k.tenant_id == t.id and k.revoked_at is None)
        keys_word = "active key" if live == 1 else "active keys"
        print(f"{t.id:<24} {t.name:<32} created {t.created_at:%Y-%m-%d %H:%M}  {live} {keys_word}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    t = sub.add_parser("tenants", help="tenants: each key, report, job and share link belongs to one")
    t_sub = t.add_subparsers(dest="tenants_command", required=True)
    c = t_sub.add_parser("create", help="create a tenant (a marketplace, a store chain)")
    c.add_argument("tenant_id", help="a short slug, e.g. 'marketplace-eu'")
    c.add_argument("--name", help="a readable name (default: the id)")
    c.set_defaults(func=create)
    ls = t_sub.add_parser("list", help="ids, names, active keys")
    ls.set_defaults(func=list_)
    for p in (c, ls):
        p.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL")
