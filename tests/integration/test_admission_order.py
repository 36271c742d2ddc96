"""Issue 24 item 5: a burst above the screening slots, deferred in the queue as in AWS, ends with one
scored decision per upload and none in ERROR.

On main before this change, 12 distinct clips with 2 slots and deferral on ended 6 of 12 ERROR
PIPELINE_ERROR in 475 s: a running screening's reuse check waited for uploads queued behind its own
slot (same-second receipt times, ordered by the keyed id, not by upload) until it gave up. The gate
now admits in receipt order (kyc.domain.reuse.admission_verdict), so a check only waits for uploads
that run. Figures for 12 and 50 uploads: benchmarks/admission_burst.py, docs/provenance.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip

pytestmark = pytest.mark.integration

UPLOADS, SLOTS = 12, 2


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    settings = LocalStackSettings(frame_count=4, max_running_executions=SLOTS, defer_when_full=True)
    with LocalStack(settings) as running:
        yield running


def test_the_local_stack_defers_uploads_when_full_by_default_as_the_mapping_does_in_aws() -> None:
    assert LocalStackSettings().defer_when_full


def test_a_burst_above_the_slots_deferred_in_the_queue_ends_without_error(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clips = [
        make_clip(tmp_path / f"c{i:02d}.mp4", width=128, height=128, fps=8, seconds=1.2,
                  colour=(40 + 15 * i % 200, 90, 160))
        for i in range(UPLOADS)
    ]  # fmt: skip
    deferred: Counter[str] = Counter()
    deliver = stack._deliver_batch

    def counting(queue_url: str, function: str, messages: list[dict[str, Any]]) -> set[str]:
        failed = deliver(queue_url, function, messages)
        if function == "StartScreeningFunction":
            deferred.update(failed)
        return failed

    monkeypatch.setattr(stack, "_deliver_batch", counting)
    ids = [stack.upload(c, key=f"uploads/burst/{i:02d}/c.mp4")["submission_id"] for i, c in enumerate(clips)]
    items = [stack.wait_for_decision(s, timeout_s=600) for s in ids]

    assert all(items), [s for s, i in zip(ids, items, strict=True) if not i]
    decisions = Counter(i["decision"] for i in items)
    assert decisions["ERROR"] == 0, [(i["decision"], i.get("reasons")) for i in items]
    assert sum(deferred.values()) >= UPLOADS - SLOTS  # the gate was full: uploads waited in the queue
    # every upload's admission record ends settled: no queued or started row is left to hold anyone
    ddb = stack.client("dynamodb")
    (table,) = [t for t in ddb.list_tables()["TableNames"] if "reuse" in t.lower()]
    states = {
        ddb.get_item(TableName=table, Key={"pk": {"S": f"adm#{s}"}, "sk": {"S": "adm"}}, ConsistentRead=True)[
            "Item"
        ]["state"]["S"]
        for s in ids
    }
    assert states == {"settled"}
