"""``authentiq keys create|list|revoke|webhook``: API keys, against the service's database."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from authentiq.errors import AuthentiqError

if TYPE_CHECKING:
    from authentiq.storage.webhooks import WebhookRow


@contextmanager
def database(args: argparse.Namespace, *, existing: bool = False) -> Iterator[Engine]:
    """``existing``: a command that only reads (or changes what must be there) refuses a
    database that is not there instead of creating it."""
    from authentiq.storage.db import open_configured

    engine = open_configured(args.database_url, existing=existing)
    try:
        yield engine
    finally:
        engine.dispose()


def create(args: argparse.Namespace) -> int:
    from authentiq.storage.keys import create_key
    from authentiq.storage.webhooks import check_url, set_webhook

    if args.webhook:
        check_url(args.webhook)
    with database(args) as engine:
        row, key = create_key(engine, args.name, [s.strip() for s in args.scopes.split(",") if s.strip()],
                              args.rate_limit, tenant=args.tenant)
        hook = set_webhook(engine, row.id, args.webhook) if args.webhook else None
    print(f"key id {row.id} ({row.name}; tenant {row.tenant_id}; scopes {', '.join(row.scopes)})")
    print(key)
    print("This is the only time the key is shown; it is stored as a hash. Send it as "
          "'Authorization: Bearer <key>' or 'X-API-Key: <key>'.")
    if hook is not None:
        _print_hook(hook)
    return 0


def webhook(args: argparse.Namespace) -> int:
    from authentiq.storage.keys import principal_of
    from authentiq.storage.webhooks import remove_webhook, set_webhook, webhook_of

    with database(args) as engine:
        if principal_of(engine, args.key_id) is None:
            raise AuthentiqError(f"no active key with id {args.key_id!r} (see `authentiq keys list`)")
        if args.remove:
            gone = remove_webhook(engine, args.key_id)
            print(f"key {args.key_id}: webhook removed" if gone else
                  f"key {args.key_id} had no webhook")
            return 0
        if args.url is None:
            hook = webhook_of(engine, args.key_id)
            if hook is None:
                print(f"key {args.key_id} has no webhook; set one with "
                      f"`authentiq keys webhook {args.key_id} https://...`")
                return 0
        else:
            hook = set_webhook(engine, args.key_id, args.url, rotate=args.rotate_secret)
    _print_hook(hook)
    return 0


def _print_hook(hook: WebhookRow) -> None:
    print(f"webhook for key {hook.key_id}: {hook.url}")
    print(f"signing secret: {hook.secret}")
    print("Check each delivery's AuthentiQ-Signature header with this secret "
          "(recipe: docs/webhooks.md).")


def list_(args: argparse.Namespace) -> int:
    from authentiq.storage.keys import list_keys
    from authentiq.storage.webhooks import webhook_urls

    with database(args, existing=True) as engine:
        rows = list_keys(engine)
        hooks = webhook_urls(engine)
    for r in rows:
        state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
        hook = hooks.get(r.id)
        print(f"{r.id}  {r.name:<24} {r.tenant_id:<16} {','.join(r.scopes):<20} "
              f"created {r.created_at:%Y-%m-%d %H:%M}  {state}" + (f"  webhook {hook}" if hook else ""))
    if not rows:
        print("no keys: with AUTHENTIQ_AUTH=auto the API is open until one exists")
    return 0


def revoke(args: argparse.Namespace) -> int:
    from authentiq.storage.keys import revoke_key

    with database(args, existing=True) as engine:
        row = revoke_key(engine, args.key_id)
    print(f"revoked {row.id} ({row.name}); calls with it now get 401")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    k = sub.add_parser("keys", help="API keys: create (shown once), list, revoke")
    k_sub = k.add_subparsers(dest="keys_command", required=True)
    c = k_sub.add_parser("create", help="create a key and print it once")
    c.add_argument("name", help="who holds it, e.g. 'marketplace-eu' or 'kiosk-milano-1'")
    c.add_argument("--scopes", required=True, help="comma-separated: submit, review, admin, auditor "
                                                   "(auditor: review every tenant's reports)")
    c.add_argument("--tenant", default="default", help="the tenant the key and all it makes belong "
                                                       "to (default: default; `authentiq tenants`)")
    c.add_argument("--rate-limit", help="this key's own limit, e.g. 1200/minute "
                                        "(default: AUTHENTIQ_RATE_LIMIT)")
    c.add_argument("--webhook", metavar="URL", help="where this key's async job results are posted")
    c.set_defaults(func=create)
    ls = k_sub.add_parser("list", help="ids, names, scopes, state (never the keys)")
    ls.set_defaults(func=list_)
    r = k_sub.add_parser("revoke", help="revoke a key by id")
    r.add_argument("key_id", help="the key's id (`authentiq keys list`)")
    r.set_defaults(func=revoke)
    w = k_sub.add_parser("webhook", help="show, set or remove a key's webhook (prints the signing "
                                         "secret)")
    w.add_argument("key_id", help="the key's id (`authentiq keys list`)")
    w.add_argument("url", nargs="?", help="http(s) URL for async job results; omit to show")
    w.add_argument("--rotate-secret", action="store_true", help="new signing secret")
    w.add_argument("--remove", action="store_true", help="send no more webhooks for this key")
    w.set_defaults(func=webhook)
    for p in (c, ls, r, w):
        p.add_argument("--database-url", help="default: AUTHENTIQ_DATABASE_URL")
