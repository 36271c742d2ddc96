"""The lineage of a decision: which bytes, which frames, which model and policy, what came out.

Every artefact is named by its content hash, so an auditor can check each link against the
stored objects (``verify_lineage``) without trusting the pipeline that wrote them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kyc.domain.frame_location import slice_range
from kyc.domain.timestamps import parse_utc

LINEAGE_VERSION = "1"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(document: Any) -> bytes:
    """One byte form per document, so its hash in the lineage can be recomputed by anyone."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build_lineage(
    *,
    submission: Mapping[str, Any],
    pseudonymous_key: str,
    execution_arn: str | None,
    validation: Mapping[str, Any] | None,
    frames: Mapping[str, Any] | None,
    scoring: Sequence[Mapping[str, Any]],
    decision: Mapping[str, Any],
    code_version: Mapping[str, str],
    parameters: Mapping[str, Any],
) -> dict[str, Any]:
    validation = validation or {}
    return {
        "lineage_version": LINEAGE_VERSION,
        "submission_id": submission["submission_id"],
        "execution_arn": execution_arn,
        "source": {
            "bucket": submission.get("bucket"),
            "key": pseudonymous_key,
            "version_id": submission.get("version_id"),
            "etag": submission.get("etag"),
            "sha256": validation.get("sha256") or None,
            "size": validation.get("size"),
        },
        "validation": {
            "accepted": validation.get("accepted"),
            "reason": validation.get("reason"),
            "media": validation.get("media"),
        },
        "frames": dict(frames) if frames else None,
        "scoring": [dict(s) for s in scoring],
        "decision": dict(decision),
        "code_version": dict(code_version),
        "parameters": dict(parameters),
    }


def verify_lineage(lineage: Mapping[str, Any], fetch: Callable[[str, str], bytes | None]) -> list[str]:
    """Recompute every hash the lineage names; return what does not match (empty when intact).

    ``fetch(bucket, key)`` returns the stored bytes or None when the object is gone (frames
    expire after a day, so a missing frame is reported, not treated as tampering).
    """
    problems: list[str] = []
    frames = lineage.get("frames") or {}
    bucket = frames.get("bucket")
    if frames.get("manifest_key"):
        data = fetch(bucket, frames["manifest_key"])
        if data is None:
            problems.append(f"missing: {frames['manifest_key']}")
        elif sha256_hex(data) != frames.get("manifest_sha256"):
            problems.append(f"hash mismatch: {frames['manifest_key']}")
    objects: dict[str, bytes | None] = {}  # frames share their batch's object: fetch each once
    for frame in frames.get("items", []):
        if frame["key"] not in objects:
            objects[frame["key"]] = fetch(bucket, frame["key"])
        data = objects[frame["key"]]
        where = frame["key"] if "offset" not in frame else f"{frame['key']} @{frame['offset']}"
        if data is None:
            problems.append(f"missing: {where}")
        elif sha256_hex(slice_range(data, frame)) != frame["sha256"]:
            problems.append(f"hash mismatch: {where}")
    for batch in lineage.get("scoring", []):
        if batch.get("result_key"):
            data = fetch(batch["bucket"], batch["result_key"])
            if data is None:
                problems.append(f"missing: {batch['result_key']}")
            elif sha256_hex(data) != batch.get("result_sha256"):
                problems.append(f"hash mismatch: {batch['result_key']}")
    decision = lineage.get("decision") or {}
    if decision.get("scores_key"):
        data = fetch(decision["bucket"], decision["scores_key"])
        if data is None:
            problems.append(f"missing: {decision['scores_key']}")
        elif sha256_hex(data) != decision.get("scores_sha256"):
            problems.append(f"hash mismatch: {decision['scores_key']}")
    return problems


# --------------------------------------------------------------------------- the chain from logs
#
# Each stage logs one record (message "lineage") naming what it read and wrote by content hash.
# ``chain_from_logs`` rebuilds one submission's chain from those records alone, so the decision
# can be audited without trusting the state machine's history (kept 90 days) or the pipeline's
# own summary; ``verify_chain`` then checks every named hash against the stored objects.

LINEAGE_MESSAGE = "lineage"
# notify (a REVIEW's contact sheet) and erase (a data-subject request) come after the decision; review
# (issue 20) is a person's verdict or approval, one record each, told apart by their ``record_id``.
STAGE_ORDER = (
    "validate",
    "extract",
    "faces",
    "score",
    "reuse",
    "decide",
    "reconcile",
    "notify",
    "review",
    "erase",
)
TERMINAL_STAGES = ("decide", "reconcile")
SCORED_DECISIONS = frozenset({"PASS", "REVIEW", "REJECT"})
_BATCH_KEY_SUFFIX = ".json"


class LineageError(ValueError):
    """The records cannot be read as the lineage of one submission."""


@dataclass(frozen=True)
class StageRecord:
    """One stage's lineage entry, with where it was logged (function, request, time)."""

    stage: str
    submission_id: str
    entry: Mapping[str, Any]
    function_name: str | None = None
    request_id: str | None = None
    timestamp: str | None = None
    log_group: str | None = None

    @property
    def inputs(self) -> Mapping[str, Any]:
        return self.entry.get("inputs") or {}

    @property
    def outputs(self) -> Mapping[str, Any]:
        return self.entry.get("outputs") or {}

    @property
    def batch_index(self) -> int | None:
        value = self.entry.get("batch_index")
        return int(value) if value is not None else None

    @property
    def record_id(self) -> str | None:
        """Which record of a stage that keeps several (review: ``verdict#v000001``, ``approval#...``)."""
        value = self.entry.get("record_id")
        return str(value) if value is not None else None

    @property
    def label(self) -> str:
        if self.record_id is not None:
            return f"{self.stage}[{self.record_id}]"
        return self.stage if self.batch_index is None else f"{self.stage}[{self.batch_index}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "function_name": self.function_name,
            "request_id": self.request_id,
            "timestamp": self.timestamp,
            **{k: v for k, v in self.entry.items() if k not in ("stage", "submission_id")},
        }


@dataclass(frozen=True)
class LineageChain:
    """One submission's stages in pipeline order, and the gaps found in the logs themselves."""

    submission_id: str
    stages: tuple[StageRecord, ...]
    problems: tuple[str, ...] = ()

    def first(self, stage: str) -> StageRecord | None:
        return next((s for s in self.stages if s.stage == stage), None)

    @property
    def scores(self) -> tuple[StageRecord, ...]:
        return tuple(s for s in self.stages if s.stage == "score")

    @property
    def terminal(self) -> StageRecord | None:
        return next((s for s in self.stages if s.stage in TERMINAL_STAGES), None)

    @property
    def decision(self) -> str | None:
        terminal = self.terminal
        return terminal.outputs.get("decision") if terminal else None

    @property
    def execution_arn(self) -> str | None:
        return next((s.entry["execution_arn"] for s in self.stages if s.entry.get("execution_arn")), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "decision": self.decision,
            "execution_arn": self.execution_arn,
            "stages": [s.to_dict() for s in self.stages],
            "problems": list(self.problems),
        }


# The field a log reader adds to each record: the log group it was read from (Logs Insights: @log).
LOG_GROUP_FIELD = "@log_group"


def chain_from_logs(
    records: Iterable[Mapping[str, Any]],
    submission_id: str | None = None,
    *,
    stage_groups: Mapping[str, str] | None = None,
) -> LineageChain:
    """Rebuild one submission's lineage from log records alone and report its gaps.

    ``records`` are parsed JSON log lines from any function (other messages are skipped). When
    ``submission_id`` is None the records must name exactly one submission. With ``stage_groups``
    (stage -> the log group of the one function that logs it), a stage record read from any other
    group (``LOG_GROUP_FIELD``) is refused and reported: a role can write its own log group, so a
    record is a witness only of the function that owns the group (issue 23).
    """
    stages = [_stage_record(r) for r in records if _is_lineage(r)]
    ids = {s.submission_id for s in stages}
    if submission_id is None:
        if len(ids) != 1:
            raise LineageError(f"the records name {len(ids)} submissions; say which one")
        submission_id = ids.pop()
    mine = [s for s in stages if s.submission_id == submission_id]
    foreign: list[str] = []
    if stage_groups is not None:
        own = [
            s for s in mine if stage_groups.get(s.stage) is not None and s.log_group == stage_groups[s.stage]
        ]
        foreign = [
            f"foreign record: a {s.label} record in {s.log_group or 'an unknown log group'}, "
            f"not {stage_groups.get(s.stage) or 'any stage function'}'s (ignored)"
            for s in mine
            if s not in own
        ]
        mine = own
    ordered, problems = _deduplicate(sorted(mine, key=_stage_sort_key))
    chain = LineageChain(submission_id, tuple(ordered))
    return LineageChain(submission_id, chain.stages, tuple(foreign + problems + _gaps(chain)))


def _is_lineage(record: Mapping[str, Any]) -> bool:
    return record.get("message") == LINEAGE_MESSAGE and isinstance(record.get(LINEAGE_MESSAGE), Mapping)


def _stage_record(record: Mapping[str, Any]) -> StageRecord:
    entry = record[LINEAGE_MESSAGE]
    return StageRecord(
        stage=str(entry.get("stage")),
        submission_id=str(entry.get("submission_id")),
        entry=entry,
        function_name=record.get("function_name"),
        request_id=record.get("function_request_id"),
        timestamp=record.get("timestamp"),
        log_group=record.get(LOG_GROUP_FIELD),
    )


def _stage_sort_key(stage: StageRecord) -> tuple[int, int, str]:
    rank = STAGE_ORDER.index(stage.stage) if stage.stage in STAGE_ORDER else len(STAGE_ORDER)
    return rank, stage.batch_index or 0, stage.timestamp or ""


def _deduplicate(stages: list[StageRecord]) -> tuple[list[StageRecord], list[str]]:
    """A retried stage may log twice with the same outputs (kept once); different outputs, or two
    terminal records, mean two versions of the truth and are reported."""
    kept: list[StageRecord] = []
    problems: list[str] = []
    for stage in stages:
        if stage.stage not in STAGE_ORDER:
            problems.append(f"unknown stage {stage.stage!r} in the logs")
            continue
        same = [
            k
            for k in kept
            if k.stage == stage.stage
            and k.batch_index == stage.batch_index
            and k.record_id == stage.record_id
        ]
        if stage.stage in TERMINAL_STAGES and (
            earlier := next((k for k in kept if k.stage in TERMINAL_STAGES), None)
        ):
            problems.append(
                f"duplicate terminal record: {stage.stage} says {stage.outputs.get('decision')}, "
                f"{earlier.stage} already said {earlier.outputs.get('decision')}"
            )
            continue
        if same:
            if dict(same[0].outputs) != dict(stage.outputs):
                problems.append(f"conflicting {stage.label} records: the stage logged two different outputs")
            continue
        kept.append(stage)
    return kept, problems


def _gaps(chain: LineageChain) -> list[str]:
    """What the decision claims that the logged stages do not support, and hashes that disagree."""
    problems: list[str] = []
    validate, extract, terminal = chain.first("validate"), chain.first("extract"), chain.terminal
    decision = chain.decision
    if terminal is None:
        problems.append("missing stage: decide (no terminal record for this submission)")
    needs_evidence = decision in SCORED_DECISIONS or decision is None
    if validate is None and (needs_evidence or decision == "INVALID"):
        problems.append("missing stage: validate")
    accepted = bool(validate and validate.outputs.get("accepted"))
    if accepted and extract is None and decision != "ERROR":
        problems.append("missing stage: extract (the upload was accepted)")
    if validate and not accepted and (extract or chain.scores):
        problems.append("refused upload was processed further: validate refused it, later stages ran")
    if decision in SCORED_DECISIONS and not validate_ok(validate):
        problems.append(f"decision {decision} without an accepted validation")
    if validate and extract and extract.inputs.get("sha256") != validate.outputs.get("sha256"):
        problems.append(
            f"hash mismatch extract->validate: extract read {extract.inputs.get('sha256')}, "
            f"validate hashed {validate.outputs.get('sha256')}"
        )
    problems += _score_gaps(chain, extract, terminal)
    reuse = chain.first("reuse")  # CheckReuse read the manifest extract wrote (docs/provenance.md)
    if reuse and extract and reuse.inputs.get("manifest_sha256") != extract.outputs.get("manifest_sha256"):
        problems.append(
            f"hash mismatch reuse->extract: reuse read manifest {reuse.inputs.get('manifest_sha256')}, "
            f"extract wrote {extract.outputs.get('manifest_sha256')}"
        )
    if terminal and terminal.stage == "decide" and extract:
        logged = terminal.inputs.get("manifest_sha256")
        if logged and logged != extract.outputs.get("manifest_sha256"):
            problems.append(
                f"hash mismatch decide->extract: decide read manifest {logged}, "
                f"extract wrote {extract.outputs.get('manifest_sha256')}"
            )
    arns = {s.entry["execution_arn"] for s in chain.stages if s.entry.get("execution_arn")}
    if len(arns) > 1:
        problems.append(f"stages name {len(arns)} different executions: {sorted(arns)}")
    return problems


def validate_ok(validate: StageRecord | None) -> bool:
    return bool(validate and validate.outputs.get("accepted") and validate.outputs.get("sha256"))


def _score_gaps(chain: LineageChain, extract: StageRecord | None, terminal: StageRecord | None) -> list[str]:
    problems: list[str] = []
    produced = set((extract.outputs.get("frames") if extract else None) or [])
    for score in chain.scores:
        if extract is None:
            problems.append(f"{score.label} ran without an extract record")
            break
        strangers = [h for h in score.inputs.get("frames") or [] if h not in produced]
        if strangers:
            problems.append(
                f"{score.label} scored {len(strangers)} frame(s) extract did not produce: {strangers[0]}"
            )
    if terminal is None or terminal.stage != "decide":
        return problems
    logged = {s.batch_index: s for s in chain.scores}
    for position, batch in enumerate(terminal.inputs.get("batches") or []):
        index, key, digest = _batch_ref(batch, position)
        if key is None:
            continue  # the Map caught a crashed batch: decide saw FAILED, and so does the record
        score = logged.get(index)
        if score is None:
            problems.append(f"missing stage: score[{index}] (decide read {key})")
        elif digest and digest != score.outputs.get("result_sha256"):
            problems.append(
                f"hash mismatch decide->score[{index}]: decide read {digest}, "
                f"score wrote {score.outputs.get('result_sha256')}"
            )
    models = {_model_label(s.entry.get("model")) for s in chain.scores if s.outputs.get("status") == "SCORED"}
    decided = terminal.entry.get("model")
    if len(models) == 1 and decided and _model_label(decided) not in models:
        problems.append(f"model mismatch: decide names {_model_label(decided)}, score used {models.pop()}")
    return problems


def _batch_ref(batch: Any, position: int) -> tuple[int, str | None, str | None]:
    """Decide logs batch result keys (``scores/<sid>/batch-000.json``); a mapping form with
    ``batch_index``/``result_key``/``result_sha256`` is read too."""
    if isinstance(batch, Mapping):
        index = batch.get("batch_index", position)
        return int(index), batch.get("result_key"), batch.get("result_sha256")
    if isinstance(batch, str):
        stem = batch.rsplit("-", 1)[-1].removesuffix(_BATCH_KEY_SUFFIX)
        return (int(stem) if stem.isdigit() else position), batch, None
    return position, None, None


def _model_label(model: Any) -> str:
    if not isinstance(model, Mapping):
        return str(model)
    return f"{model.get('name')}@{model.get('version')}"


# --------------------------------------------------------------------------- verifying the chain

Fetch = Callable[[str, str], bytes | None]
FetchVersion = Callable[[str, str, str | None], bytes | None]


def lineage_key(submission_id: str) -> str:
    """Where decide stores a submission's lineage.json in the audit bucket."""
    return f"decisions/{submission_id}/lineage.json"


@dataclass(frozen=True)
class EvidenceRetention:
    """How long each bucket keeps what a lineage names: the template's lifecycle rules.

    Strict verification excuses a missing object only when its bucket's retention has run out
    since the upload, or when an erasure of the submission removed it (``erasable`` buckets). Any
    other absence is a failure: evidence deleted early is indistinguishable from evidence hidden.
    """

    days: Mapping[str, float]  # bucket name -> lifecycle expiration in days
    erasable: frozenset[str] = field(default_factory=frozenset)


EXCUSED_PREFIXES = ("expired: ", "erased: ")


def is_failure(problem: str) -> bool:
    """Everything but a documented expiry or an erasure fails verification."""
    return not problem.startswith(EXCUSED_PREFIXES)


def verify_chain(
    chain: LineageChain,
    fetch: Fetch,
    *,
    audit_bucket: str | None = None,
    decision_item: Mapping[str, Any] | None = None,
    fetch_source: FetchVersion | None = None,
    retention: EvidenceRetention | None = None,
    now: datetime | None = None,
    witness: ExecutionWitness | None = None,
) -> list[str]:
    """Every problem with a decision's lineage: the log gaps, then each hash the logs name checked
    against the stored objects, lineage.json and the decision record (empty when intact).

    Trust runs from the logs: decide logged lineage.json's hash, lineage.json names each object
    and its hash, and every hash is also compared with the stage that logged it. ``fetch(bucket,
    key)`` returns the bytes or None when gone. With ``retention``, an object gone after its
    bucket's retention (or after an erasure) is reported as "expired:" or "erased:", which
    ``is_failure`` excuses; every other "missing:" is a failure. Frames past their expiry are
    still covered: lineage.json (5 years, in the audit bucket) keeps their hashes, and those are
    checked against extract's log. ``fetch_source`` re-hashes the upload's pinned version.

    Nothing the decision item says excuses anything (its writer can edit it): the upload time comes
    from the Step Functions execution (``witness``, written by the service) or the stage records'
    own log timestamps, an erasure only from erase's own record. With ``witness`` the execution
    that must have produced the decision is checked too (``_witness_problems``).
    """
    recorder = _MissingEvidence(fetch, fetch_source, retention, chain, witness, now)
    fetch, fetch_source = recorder.fetch, (recorder.fetch_source if fetch_source else None)
    problems = list(chain.problems)
    terminal = chain.terminal
    lineage: Mapping[str, Any] | None = None
    if terminal is not None and terminal.stage == "decide":
        lineage, found = _load_lineage(chain, terminal, fetch, audit_bucket)
        problems += found
    if lineage is not None:
        problems += verify_lineage(lineage, fetch)
        problems += _lineage_against_logs(chain, lineage)
        problems += _manifest_against_logs(chain, lineage, fetch)
    if decision_item is not None:
        problems += _record_against_logs(chain, decision_item, lineage)
        if fetch_source is not None:
            problems += _source_against_logs(chain, decision_item, fetch_source)
    if witness is not None:
        problems += recorder.classify_witness(_witness_problems(chain, decision_item, witness))
    return recorder.classify(problems)


# --------------------------------------------------------------------------- the service's witness
STEP_FUNCTIONS_HISTORY_DAYS = 90  # Step Functions keeps a closed execution's history this long
DECIDE_STATE = "DecideOutcome"


@dataclass(frozen=True)
class ExecutionWitness:
    """What Step Functions itself recorded of the execution named by the submission id (never the
    ARN the item claims): written by the service, under the stack key, out of every role's reach.

    ``found`` False: no such execution. ``decided`` lists the ``decision`` of every exit from the
    DecideOutcome state in its history (the decide function's answer as the service saw it)."""

    arn: str
    found: bool
    started_at: datetime | None = None
    status: str | None = None
    submission: Mapping[str, Any] = field(default_factory=dict)
    decided: tuple[str, ...] = ()


def witness_from_history(
    arn: str, execution: Mapping[str, Any] | None, history: Iterable[Mapping[str, Any]]
) -> ExecutionWitness:
    """Read the witness from DescribeExecution and GetExecutionHistory responses (None: not found)."""
    if execution is None:
        return ExecutionWitness(arn=arn, found=False)
    try:
        submission = (json.loads(execution.get("input") or "{}") or {}).get("submission") or {}
    except ValueError:
        submission = {}
    decided = []
    for event in history:
        exited = event.get("stateExitedEventDetails") or {}
        if exited.get("name") != DECIDE_STATE:
            continue
        try:
            output = json.loads(exited.get("output") or "{}")
        except ValueError:
            continue
        value = (output.get("decision") or {}).get("decision") if isinstance(output, dict) else None
        if value:
            decided.append(str(value))
    started = execution.get("startDate")
    if isinstance(started, str):
        started = parse_utc(started)
    return ExecutionWitness(
        arn=arn,
        found=True,
        started_at=started if isinstance(started, datetime) else None,
        status=execution.get("status"),
        submission=submission,
        decided=tuple(decided),
    )


def _witness_problems(
    chain: LineageChain, item: Mapping[str, Any] | None, witness: ExecutionWitness
) -> list[str]:
    """The decision against the execution the service ran for this submission id."""
    if not witness.found:
        return [f"missing: {WITNESS_LABEL} (Step Functions has no execution {witness.arn})"]
    problems = []
    named = witness.submission.get("submission_id")
    if named != chain.submission_id:
        problems.append(f"witness: execution {witness.arn} screened {named!r}, not {chain.submission_id}")
    source = (item or {}).get("source") or {}
    for name in ("bucket", "version_id"):
        if item is not None and source.get(name) != witness.submission.get(name):
            problems.append(
                f"witness: decision record source.{name} {source.get(name)!r}, "
                f"the execution screened {witness.submission.get(name)!r}"
            )
    terminal = chain.terminal
    if item is not None and terminal is not None and terminal.stage == "decide":
        if not witness.decided:
            problems.append(f"witness: execution {witness.arn} never left {DECIDE_STATE} with a decision")
        elif item.get("decision") not in witness.decided:
            problems.append(
                f"witness: the decision record says {item.get('decision')}, {DECIDE_STATE} returned "
                f"{', '.join(witness.decided)} in execution {witness.arn}"
            )
    return problems


WITNESS_LABEL = "execution history"


class _MissingEvidence:
    """Wraps the fetchers: remembers which absent objects are excused by retention or erasure."""

    def __init__(
        self,
        fetch: Fetch,
        fetch_source: FetchVersion | None,
        retention: EvidenceRetention | None,
        chain: LineageChain,
        witness: ExecutionWitness | None,
        now: datetime | None,
    ) -> None:
        self._fetch, self._fetch_source, self._retention = fetch, fetch_source, retention
        self._now = now or datetime.now(UTC)
        self._since = _upload_time(chain, witness)
        self._erased = chain.first("erase") is not None  # erase's own record, never the item's erased_at
        self._excused: dict[str, str] = {}

    def classify_witness(self, problems: list[str]) -> list[str]:
        """A missing execution is excused only after Step Functions' own retention of its history."""
        since = self._since
        expired = since is not None and self._now >= since + timedelta(days=STEP_FUNCTIONS_HISTORY_DAYS)
        return [
            f"expired: {WITNESS_LABEL} (Step Functions keeps {STEP_FUNCTIONS_HISTORY_DAYS} days; "
            f"screened {since:%Y-%m-%d})"
            if expired and since is not None and p.startswith(f"missing: {WITNESS_LABEL}")
            else p
            for p in problems
        ]

    def fetch(self, bucket: str, key: str) -> bytes | None:
        data = self._fetch(bucket, key)
        if data is None:
            self._note(bucket, key)
        return data

    def fetch_source(self, bucket: str, key: str, version: str | None) -> bytes | None:
        assert self._fetch_source is not None
        data = self._fetch_source(bucket, key, version)
        if data is None:
            self._note(bucket, SOURCE_LABEL)
        return data

    def _note(self, bucket: str, label: str) -> None:
        retention = self._retention
        if retention is None:
            return
        if self._erased and bucket in retention.erasable:
            self._excused[label] = f"erased: {label} (the submission was erased)"
            return
        days = retention.days.get(bucket)
        if days is not None and self._since is not None and self._now >= self._since + timedelta(days=days):
            self._excused[label] = (
                f"expired: {label} ({bucket} keeps objects {days:g} day(s); uploaded {self._since:%Y-%m-%d})"
            )

    def classify(self, problems: list[str]) -> list[str]:
        return [self._excused.get(_missing_label(p), p) if p.startswith("missing: ") else p for p in problems]


SOURCE_LABEL = "source upload"


def _missing_label(problem: str) -> str:
    """The object a ``missing:`` problem names, without a frame's ``@offset`` in its batch object."""
    label = problem.removeprefix("missing: ").split(" (", 1)[0]
    head, _, offset = label.rpartition(" @")
    return head if head and offset.isdigit() else label


def _upload_time(chain: LineageChain, witness: ExecutionWitness | None) -> datetime | None:
    """When the screening started, from witnesses the item's writer does not control: the
    execution's start (Step Functions), else the earliest stage record's own log time. S3 counts
    expiry from object creation, which is before both, so an excuse is never given early by more
    than the pipeline's own latency (seconds to minutes)."""
    if witness is not None and witness.started_at is not None:
        return witness.started_at
    times = [t for s in chain.stages if (t := _log_time(s.timestamp)) is not None]
    return min(times) if times else None


def _log_time(value: str | None) -> datetime | None:
    """A Powertools log timestamp (``2026-12-06 15:46:05,643+0000``) or ISO 8601."""
    if not value:
        return None
    text = value.replace(",", ".")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        return parse_utc(text)
    except ValueError:
        return None


def _load_lineage(
    chain: LineageChain, terminal: StageRecord, fetch: Fetch, audit_bucket: str | None
) -> tuple[Mapping[str, Any] | None, list[str]]:
    logged = terminal.outputs.get("lineage_sha256")
    key = terminal.outputs.get("lineage_key") or lineage_key(chain.submission_id)
    bucket = terminal.outputs.get("audit_bucket") or audit_bucket
    if not bucket:
        return None, [f"cannot check {key}: the audit bucket is not known"]
    data = fetch(bucket, key)
    if data is None:
        return None, [f"missing: {key}"]
    problems = []
    if sha256_hex(data) != logged:
        problems.append(f"hash mismatch: {key}: stored {sha256_hex(data)}, decide logged {logged}")
    try:
        return json.loads(data), problems
    except ValueError:
        return None, [*problems, f"unreadable: {key} is not JSON"]


def _lineage_against_logs(chain: LineageChain, lineage: Mapping[str, Any]) -> list[str]:
    """Each field lineage.json repeats must equal what the stage itself logged."""
    checks: list[tuple[str, Any, Any]] = [
        ("submission_id", lineage.get("submission_id"), chain.submission_id)
    ]
    validate, extract, terminal = chain.first("validate"), chain.first("extract"), chain.terminal
    if validate:
        checks.append(
            ("source.sha256", (lineage.get("source") or {}).get("sha256"), validate.outputs.get("sha256"))
        )
    frames = lineage.get("frames") or {}
    if extract and not extract.outputs.get("refused"):
        checks.append(
            ("frames.manifest_sha256", frames.get("manifest_sha256"), extract.outputs.get("manifest_sha256"))
        )
        checks.append(
            (
                "frames[].sha256",
                [f.get("sha256") for f in frames.get("items", [])],
                list(extract.outputs.get("frames") or []),
            )
        )
    scored = {s.batch_index: s for s in chain.scores}
    for batch in lineage.get("scoring") or []:
        score = scored.get(batch.get("batch_index"))
        if score is None or not batch.get("result_key"):
            continue
        label = f"scoring[{batch.get('batch_index')}]"
        checks.append(
            (f"{label}.result_sha256", batch.get("result_sha256"), score.outputs.get("result_sha256"))
        )
        if score.outputs.get("status") == "SCORED":
            checks.append(
                (f"{label}.request_sha256", batch.get("request_sha256"), score.inputs.get("request_sha256"))
            )
            checks.append(
                (
                    f"{label}.response_sha256",
                    batch.get("response_sha256"),
                    score.outputs.get("response_sha256"),
                )
            )
    if terminal:
        decided = lineage.get("decision") or {}
        checks.append(("decision.decision", decided.get("decision"), terminal.outputs.get("decision")))
        checks.append(("decision.reasons", decided.get("reasons"), terminal.outputs.get("reasons")))
        checks.append(("decision.model", decided.get("model"), terminal.entry.get("model")))
        checks.append(("decision.policy", decided.get("policy"), terminal.entry.get("policy")))
        if terminal.entry.get("execution_arn"):
            checks.append(
                ("execution_arn", lineage.get("execution_arn"), terminal.entry.get("execution_arn"))
            )
    return [
        f"lineage.json {name}: stored {stored!r}, logs say {logged!r}"
        for name, stored, logged in checks
        if stored != logged
    ]


def _manifest_against_logs(chain: LineageChain, lineage: Mapping[str, Any], fetch: Fetch) -> list[str]:
    """The manifest as extract logged it: its own hash, its frame list and the source it names."""
    extract, validate = chain.first("extract"), chain.first("validate")
    bucket = (lineage.get("frames") or {}).get("bucket")
    if extract is None or not extract.outputs.get("manifest_key") or not bucket:
        return []
    key = extract.outputs["manifest_key"]
    data = fetch(bucket, key)
    if data is None:
        return []  # verify_lineage already reported it missing
    problems = []
    if sha256_hex(data) != extract.outputs.get("manifest_sha256"):
        problems.append(
            f"hash mismatch: {key}: stored {sha256_hex(data)}, "
            f"extract logged {extract.outputs.get('manifest_sha256')}"
        )
    try:
        manifest = json.loads(data)
    except ValueError:
        return [*problems, f"unreadable: {key} is not JSON"]
    if [f.get("sha256") for f in manifest.get("frames", [])] != list(extract.outputs.get("frames") or []):
        problems.append(f"manifest {key}: frame hashes differ from the extract log")
    source = manifest.get("source_sha256")
    if validate and source and source != validate.outputs.get("sha256"):
        problems.append(
            f"manifest {key}: source_sha256 {source} differs from validate's {validate.outputs.get('sha256')}"
        )
    return problems


def _record_against_logs(
    chain: LineageChain, item: Mapping[str, Any], lineage: Mapping[str, Any] | None
) -> list[str]:
    """The DynamoDB decision record must say what the terminal stage logged."""
    terminal, validate = chain.terminal, chain.first("validate")
    if terminal is None:
        return []
    checks: list[tuple[str, Any, Any]] = [
        ("submission_id", item.get("submission_id"), chain.submission_id),
        ("decision", item.get("decision"), terminal.outputs.get("decision")),
    ]
    if "reasons" in terminal.outputs:
        checks.append(
            ("reasons", list(item.get("reasons") or []), list(terminal.outputs.get("reasons") or []))
        )
    if terminal.stage == "decide":
        artefacts = item.get("artefacts") or {}
        checks.append(
            (
                "artefacts.lineage_sha256",
                artefacts.get("lineage_sha256"),
                terminal.outputs.get("lineage_sha256"),
            )
        )
        checks.append(("model", item.get("model"), terminal.entry.get("model")))
        checks.append(("policy", item.get("policy"), terminal.entry.get("policy")))
        scores = (lineage or {}).get("decision") or {}
        if lineage is not None:  # the score is logged nowhere else: lineage.json is its witness
            checks.append(("score", item.get("score"), scores.get("score")))
        if scores.get("scores_sha256"):
            checks.append(
                ("artefacts.scores_sha256", artefacts.get("scores_sha256"), scores.get("scores_sha256"))
            )
    if validate and validate.outputs.get("sha256"):
        checks.append(
            ("source.sha256", (item.get("source") or {}).get("sha256"), validate.outputs.get("sha256"))
        )
    if terminal.entry.get("execution_arn"):
        checks.append(("execution_arn", item.get("execution_arn"), terminal.entry.get("execution_arn")))
    return [
        f"decision record {name}: stored {stored!r}, {terminal.stage} logged {logged!r}"
        for name, stored, logged in checks
        if stored != logged
    ]


def _source_against_logs(
    chain: LineageChain, item: Mapping[str, Any], fetch_source: FetchVersion
) -> list[str]:
    validate = chain.first("validate")
    source = item.get("source") or {}
    if validate is None or not validate.outputs.get("sha256") or not source.get("key"):
        return []
    data = fetch_source(source.get("bucket"), source["key"], source.get("version_id"))
    if data is None:
        return [f"missing: {SOURCE_LABEL} (the intake bucket keeps uploads for its retention only)"]
    if sha256_hex(data) != validate.outputs["sha256"]:
        return [
            f"hash mismatch: source upload: stored {sha256_hex(data)}, "
            f"validate logged {validate.outputs['sha256']}"
        ]
    return []


# --------------------------------------------------------------------------- one decision, strictly
INTACT, BROKEN, UNKNOWN = "intact", "broken", "unknown"


@dataclass(frozen=True)
class LineageCheck:
    """Strict lineage of one submission: ``kycscreen lineage --strict`` and the scheduled verifier
    read it the same way. ``chain`` is None when no stage function's own log names the submission."""

    submission_id: str
    chain: LineageChain | None
    problems: tuple[str, ...]
    decision_recorded: bool

    @property
    def failures(self) -> tuple[str, ...]:
        """What fails verification: everything but a documented expiry or erasure."""
        return tuple(p for p in self.problems if is_failure(p))

    @property
    def status(self) -> str:
        """intact; broken (also: a decision no function logged); unknown (no decision, no lineage)."""
        if self.chain is None:
            return BROKEN if self.decision_recorded else UNKNOWN
        return BROKEN if self.failures else INTACT


def check_lineage(
    records: Iterable[Mapping[str, Any]],
    submission_id: str,
    *,
    stage_groups: Mapping[str, str],
    decision_item: Mapping[str, Any] | None,
    fetch: Fetch,
    fetch_source: FetchVersion,
    audit_bucket: str,
    retention: EvidenceRetention | None,
    witness: ExecutionWitness | None,
    now: datetime | None = None,
) -> LineageCheck:
    """Rebuild the chain from stage records, each trusted only from its own function's log group,
    and verify it against the stores, the item and the service's execution history. A decision item
    that no stage function logged is broken (the forged-decision case), never "nothing to verify"."""
    try:
        chain = chain_from_logs(records, submission_id, stage_groups=stage_groups)
    except LineageError:
        chain = None
    if chain is None or not chain.stages:
        problems = (
            (f"missing: no stage function logged the lineage of decision {submission_id}",)
            if decision_item is not None
            else ()
        )
        return LineageCheck(submission_id, None, problems, decision_item is not None)
    problems = verify_chain(
        chain,
        fetch,
        audit_bucket=audit_bucket,
        decision_item=decision_item,
        fetch_source=fetch_source,
        retention=retention,
        now=now,
        witness=witness,
    )
    if decision_item is None:
        problems.append(f"missing: decision record for {submission_id}")
    return LineageCheck(submission_id, chain, tuple(problems), decision_item is not None)
