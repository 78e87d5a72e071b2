"""``python -m posthog_async.testing``: the fake PostHog standalone, every knob on the command line."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from ._deletions import BULK_DELETE_VERSIONS
from ._faults import Faults
from ._projects import MEMBER, OWNER
from ._query import QueryOptions
from ._server import FakePostHog
from ._throttle import BUCKETS, PRODUCTION_LIMITS, parse_windows


def _bucket_spec(text: str) -> tuple[str, Any]:
    """``person_deletes=60/10,600/3600`` (or ``person_deletes=none``)."""
    name, sep, spec = text.partition("=")
    if not sep or name not in BUCKETS:
        raise argparse.ArgumentTypeError(
            f"expected BUCKET=REQUESTS/SECONDS[,...] with BUCKET one of {', '.join(sorted(BUCKETS))}")
    if spec.strip().lower() in ("none", "off"):
        return name, None
    try:
        return name, parse_windows(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _project_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated project ids, got {text!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError("expected at least one project id")
    return ids


def _organization_spec(text: str) -> tuple[str, list[int], set[str]]:
    """``Acme=2,3`` or ``Legacy=4:member,no-personal-keys``."""
    name, sep, rest = text.partition("=")
    ids, _, flags = rest.partition(":")
    options = {f.strip() for f in flags.split(",") if f.strip()}
    if not sep or not name.strip() or options - {"member", "no-personal-keys"}:
        raise argparse.ArgumentTypeError(
            "expected NAME=ID[,ID...][:member][,no-personal-keys], e.g. Legacy=4:no-personal-keys")
    return name.strip(), _project_ids(ids), options


def _scoped_key(text: str) -> tuple[str, list[int]]:
    key, sep, ids = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError("expected KEY=ID[,ID...]")
    return key.strip(), _project_ids(ids)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m posthog_async.testing",
                                description="Run an offline fake PostHog API on 127.0.0.1.")
    p.add_argument("--port", type=int, default=8010)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--persons", type=int, default=1000, help="persons to seed (default 1000)")
    p.add_argument("--projects", type=_project_ids, default=[1],
                   help="comma-separated project ids (default 1); with several, every project "
                        "gets --persons persons")
    p.add_argument("--overlap", type=float, default=0.0,
                   help="with several projects: the share of persons whose distinct ids exist in "
                        "every project (0-1, default 0)")
    p.add_argument("--organization", action="append", type=_organization_spec, default=[],
                   metavar="NAME=IDS[:FLAGS]",
                   help="put projects in another organisation (repeatable); FLAGS: member (the "
                        "user is no admin there: private projects are hidden), no-personal-keys "
                        "(the organisation refuses a member's personal API keys)")
    p.add_argument("--private-project", action="append", type=int, default=[], metavar="ID",
                   help="a project only organisation admins see (repeatable)")
    p.add_argument("--pending-deletion-project", action="append", type=int, default=[],
                   metavar="ID", help="a project PostHog is deleting (repeatable)")
    p.add_argument("--scoped-key", action="append", type=_scoped_key, default=[],
                   metavar="KEY=IDS", help="another key limited to these projects (scoped_teams)")
    p.add_argument("--event-deletion-delay", type=float, default=None,
                   help="seconds until a delete_events request's deletion_status row is completed "
                        "(PostHog's Sunday 05:00 UTC batch, made short; default: never)")
    p.add_argument("--api-key", default="phx_fake_personal_api_key")
    p.add_argument("--seed", type=int, default=0, help="seed for data and faults")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    p.add_argument("--jitter", type=float, default=0.0, help="up to this many more seconds, at random")
    p.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 5xx")
    p.add_argument("--drop-rate", type=float, default=0.0, help="share of connections dropped")
    p.add_argument("--lose-answer-rate", type=float, default=0.0,
                   help="share of requests processed whose answer is then lost (connection closed)")
    p.add_argument("--queue-deletes", action="store_true",
                   help="bulk_delete queues persons and deletes them later (PERSON_BULK_DELETE_ASYNC)")
    p.add_argument("--delete-delay", type=float, default=0.2,
                   help="seconds before queued deletions run (default 0.2)")
    p.add_argument("--apply-delay", type=float, default=0.05,
                   help="seconds before accepted writes (PATCH, split, ...) take effect")
    p.add_argument("--bulk-delete-version", choices=BULK_DELETE_VERSIONS, default="P-D",
                   help="the bulk_delete answer shape (default P-D, the newest)")
    p.add_argument("--short-pages", action="store_true",
                   help="persons pages lose their last row but keep next")
    p.add_argument("--rate-limit", action="append", type=_bucket_spec, default=[],
                   metavar="BUCKET=N/S[,N/S]",
                   help="replace one bucket's windows, e.g. person_deletes=60/10,600/3600 "
                        "(repeatable; 'none' removes the bucket; others keep production limits)")
    p.add_argument("--no-rate-limits", action="store_true",
                   help="start from no limits (only --rate-limit buckets are throttled)")
    p.add_argument("--no-retry-after", action="store_true",
                   help="send 429s without Retry-After, as older servers do")
    p.add_argument("--no-advanced-permissions", action="store_true",
                   help="the organization lacks the feature sharing passwords need")
    q = p.add_argument_group("query API (/query/)")
    q.add_argument("--query-concurrency", type=int, default=3,
                   help="queries a team may run at once (default 3, as PostHog)")
    q.add_argument("--query-slot-wait", type=float, default=30.0,
                   help="seconds a query waits for a slot before its 429 (default 30)")
    q.add_argument("--query-latency", type=float, default=0.0,
                   help="seconds every query runs (to see async modes and the concurrency cap)")
    q.add_argument("--query-allow-offset", action="store_true",
                   help="accept OFFSET in HogQL (an organisation on PostHog's allow-list)")
    q.add_argument("--query-new-concurrency-message", action="store_true",
                   help="the newest servers' wording of the concurrency 429")
    q.add_argument("--query-old-stickiness", action="store_true",
                   help="an older server without StickinessActorsQuery")
    return p


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    limits: dict[str, Any] = {} if args.no_rate_limits else dict(PRODUCTION_LIMITS)
    for name, windows in args.rate_limit:
        if windows is None:
            limits.pop(name, None)
        else:
            limits[name] = windows

    server = FakePostHog(
        api_key=args.api_key, host=args.host, port=args.port,
        project_ids=args.projects, rate_limits=limits or None,
        event_deletion_delay=args.event_deletion_delay,
        faults=Faults(error_rate=args.error_rate, drop_rate=args.drop_rate,
                      lose_answer_rate=args.lose_answer_rate, latency=args.latency,
                      jitter=args.jitter, seed=args.seed),
        short_pages=args.short_pages, queue_person_deletions=args.queue_deletes,
        queued_deletion_delay=args.delete_delay, apply_delay=args.apply_delay,
        bulk_delete_version=args.bulk_delete_version, seed=args.seed,
        retry_after_header=not args.no_retry_after,
        advanced_permissions=not args.no_advanced_permissions,
        query_options=QueryOptions(
            concurrency=args.query_concurrency, slot_wait=args.query_slot_wait,
            latency=args.query_latency, allow_offset=args.query_allow_offset,
            new_concurrency_message=args.query_new_concurrency_message,
            stickiness_actors_query=not args.query_old_stickiness))
    started = time.perf_counter()
    try:
        arrange(server, args)
    except ValueError as exc:
        parser.error(str(exc))
    seeded = time.perf_counter() - started

    async def run() -> None:
        async with server:
            print(f"fake PostHog on {server.url} (projects {', '.join(map(str, server.projects))}, "
                  f"{args.persons} persons each seeded in {seeded:.1f}s)")
            print(f"  export POSTHOG_HOST={server.url} POSTHOG_PROJECT_ID={server.default_project} "
                  f"POSTHOG_PERSONAL_API_KEY={args.api_key}")
            print("Ctrl-C to stop.", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


def arrange(server: FakePostHog, args: argparse.Namespace) -> None:
    """Organisations, private and pending projects, scoped keys and persons, as the options
    say (``ValueError`` for a project that does not exist)."""
    for name, ids, flags in args.organization:
        org = server.add_organization(
            name, membership_level=MEMBER if flags else OWNER,
            members_can_use_personal_api_keys="no-personal-keys" not in flags)
        for pid in ids:
            if pid in server.projects:
                server.projects[pid].organization_id = org.id
            else:
                server.add_project(pid, organization=org)
    for pid in [*args.private_project, *args.pending_deletion_project]:
        if pid not in server.projects:
            raise ValueError(f"project {pid} is not among --projects or --organization")
    for pid in args.private_project:
        server.projects[pid].private = True
    for pid in args.pending_deletion_project:
        server.projects[pid].is_pending_deletion = True
    for key, ids in args.scoped_key:
        server.add_key(key, projects=ids)
    if not 0.0 <= args.overlap <= 1.0:
        raise ValueError("--overlap must be between 0 and 1")
    if len(server.projects) > 1:
        server.seed_persons_across(args.persons, overlap=args.overlap)
    else:
        server.seed_persons(args.persons)


if __name__ == "__main__":
    main()
