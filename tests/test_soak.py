"""The soak test in the suite: mixed messages from 300 members with WeCom retries and a flaky API,
then the audit of tests/soak.py (nothing lost, nothing doubled, no 5xx, no ERROR in the log, the
ledger's totals equal to its lines). `PIONEER_SOAK_MESSAGES` sets the size: 3,000 by default for
`make test`, 20,000 in CI (.ci/run); docs/RELIABILITY.md has the figures."""

from __future__ import annotations

import os

from tests.soak import SOAK_OVERRIDES, soak

MESSAGES = int(os.environ.get("PIONEER_SOAK_MESSAGES", "3000"))


async def test_soak_loses_and_doubles_nothing(make_bot):  # type: ignore[no-untyped-def]
    bot = await make_bot(members=False, **SOAK_OVERRIDES)
    report = await soak(bot, messages=MESSAGES, members=300)
    print(report.summary())
    assert report.messages == MESSAGES
    assert report.retries > 0 and report.api_failures > 0 and report.approvals > 0  # the faults happened
    assert report.claims_submitted > 0
    assert not report.problems, "\n".join(report.problems)
