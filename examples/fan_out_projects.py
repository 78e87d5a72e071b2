"""Concurrent lookups across many projects under one pool and one set of rate limits.

    python examples/fan_out_projects.py

Against your PostHog it visits the projects in ``POSTHOG_PROJECT_IDS`` (comma-separated; default
``POSTHOG_PROJECT_ID``); offline, projects 1, 2, 3 and 999 (which does not exist: its error is
collected, the others go on).
"""

from __future__ import annotations

import asyncio

from _target import posthog, project_ids

from posthog_async import ScopedPostHog


async def plan_breakdown(project: ScopedPostHog) -> dict[str, int]:
    values = await project.persons.values(key="plan")
    return {str(v.name): v.count or 0 for v in values.results}


async def main() -> None:
    async with posthog() as ph:
        result = await ph.fan_out(project_ids(), plan_breakdown)
        for project_id, breakdown in sorted(result.results.items(), key=lambda kv: str(kv[0])):
            print(f"project {project_id}: {breakdown}")
        for project_id, error in result.errors.items():
            print(f"project {project_id} failed: {error}")  # one failure does not stop the rest


if __name__ == "__main__":
    asyncio.run(main())
