"""Local state on disk, so separate `kycscreen` commands share one local "account".

moto keeps everything in memory and forgets it when the stack stops. ``save_state`` writes what
an audit needs afterwards (every S3 object version with its metadata and encryption settings,
the decision items, the /aws/lambda/* log events) and what a later screening compares against
(the reuse index), and ``restore_state`` puts it back into a fresh stack before anything runs.
The directory holds personal data (the uploaded videos and frames):
files are 0600 in a 0700 directory, and `kycscreen reset` deletes it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kyc.domain.lineage import sha256_hex

if TYPE_CHECKING:
    from kyclocal.stack import LocalStack

STATE_DIR_ENV = "KYCSCREEN_STATE_DIR"
DEFAULT_STATE_DIR = ".local-stack"
MARKER = "state.json"
STATE_VERSION = "3"  # 2: buckets and table by logical id; 3: + the learning loop (loop/, model data)
READABLE_VERSIONS = ("1", "2", STATE_VERSION)  # older states load: what they lack starts empty
# State version 1 named the hand-made local resources; they map onto the template's logical ids.
_V1_BUCKETS = {
    "kyc-local-intake": "IntakeBucket",
    "kyc-local-work": "WorkBucket",
    "kyc-local-audit": "AuditBucket",
}
_V1_TABLE = "kyc-local-decisions.json"
# CloudWatch Logs refuses events older than 14 days; older ones are restored at this age, in order.
MAX_LOG_AGE_MS = 13 * 24 * 3600 * 1000


class StateError(Exception):
    """The state directory cannot be read or is not one this tool wrote."""


def state_directory(explicit: Path | None = None) -> Path:
    """Argument > KYCSCREEN_STATE_DIR > ./.local-stack (gitignored)."""
    if explicit is not None:
        return explicit
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


# --------------------------------------------------------------------------- save
def save_state(stack: LocalStack, directory: Path) -> dict[str, int]:
    """Write the stack's objects, decisions and logs to ``directory``, replacing what was there.

    Written to a sibling temporary directory first and swapped in, so an interrupted save never
    leaves half a state behind. Returns counts (objects, decisions, log events).
    """
    directory = directory.resolve()
    if directory.exists() and not (directory / MARKER).is_file() and any(directory.iterdir()):
        raise StateError(f"{directory} is not a kycscreen state directory (no {MARKER}); not replacing it")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        counts = {
            "objects": _save_s3(stack, staging),
            "decisions": _save_table(stack, staging),
            "reuse_index_items": _save_reuse_index(stack, staging),
            "log_events": _save_logs(stack, staging),
        }
        counts |= _save_loop(stack, staging)
        _save_signing_keys(stack, staging)
        _save_executions(stack, staging)
        _write_json(staging / MARKER, {"state_version": STATE_VERSION, "saved_at": time.time(), **counts})
        _swap(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts


def _save_s3(stack: LocalStack, root: Path) -> int:
    s3 = stack.client("s3")
    blobs = root / "s3" / "blobs"
    _private_dir(blobs)
    index: list[dict[str, Any]] = []
    for logical_id, bucket in _buckets(stack).items():
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for version in page.get("Versions", []):
                obj = s3.get_object(
                    Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"], ChecksumMode="ENABLED"
                )
                body = obj["Body"].read()
                digest = sha256_hex(body)
                _write_bytes(blobs / digest, body)
                index.append(
                    {
                        "bucket": bucket,
                        "bucket_logical_id": logical_id,
                        "key": version["Key"],
                        "version_id": version["VersionId"],
                        "is_latest": version.get("IsLatest", False),
                        "last_modified": version["LastModified"].isoformat(),
                        "sha256": digest,
                        "content_type": obj.get("ContentType"),
                        "metadata": obj.get("Metadata") or {},
                        "sse": obj.get("ServerSideEncryption"),
                        "sse_kms_key_id": obj.get("SSEKMSKeyId"),
                        "bucket_key_enabled": obj.get("BucketKeyEnabled"),
                        "checksum_sha256": obj.get("ChecksumSHA256"),  # the deployment witness reads it
                    }
                )
            for marker in page.get("DeleteMarkers", []):
                index.append(
                    {
                        "bucket": bucket,
                        "bucket_logical_id": logical_id,
                        "key": marker["Key"],
                        "version_id": marker["VersionId"],
                        "is_latest": marker.get("IsLatest", False),
                        "last_modified": marker["LastModified"].isoformat(),
                        "delete_marker": True,
                    }
                )
    # Oldest first, the latest last. S3 lists a key's versions newest first; LastModified has
    # one-second resolution, so the listing position breaks ties.
    for position, entry in enumerate(index):
        entry["position"] = position
    index.sort(key=lambda e: (e["bucket"], e["key"], e["is_latest"], e["last_modified"], -e.pop("position")))
    _write_json(root / "s3" / "index.json", index)
    return sum(1 for e in index if not e.get("delete_marker"))


def _save_table(stack: LocalStack, root: Path) -> int:
    ddb = stack.client("dynamodb")
    table = stack.resources.decisions_table
    items = [i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    _write_json(root / "dynamodb" / "DecisionsTable.json", items)  # DynamoDB JSON keeps the types exact
    return len(items)


def _reuse_table(stack: LocalStack) -> str | None:
    """The reuse index's physical name (None for a stack built from a template without one)."""
    return getattr(stack, "physical_ids", {}).get("ReuseIndexTable")


def _save_reuse_index(stack: LocalStack, root: Path) -> int:
    """The reuse index, so a copy screened in a later command is compared with earlier uploads.

    Saved as it is (entries past their TTL included: reads filter them by ``expires_at``, as in AWS,
    where TTL deletes lazily); erased submissions are already gone from it."""
    table = _reuse_table(stack)
    if table is None:
        return 0
    ddb = stack.client("dynamodb")
    items = [i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]
    _write_json(root / "dynamodb" / "ReuseIndexTable.json", items)
    return len(items)


def _restore_reuse_index(stack: LocalStack, root: Path) -> int:
    table, path = _reuse_table(stack), root / "dynamodb" / "ReuseIndexTable.json"
    if table is None or not path.is_file():  # a state saved before the index was kept
        return 0
    items = json.loads(path.read_text(encoding="utf-8"))
    ddb = stack.client("dynamodb")
    for start in range(0, len(items), 25):
        pending = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return len(items)


def _save_logs(stack: LocalStack, root: Path) -> int:
    logs = stack.client("logs")
    streams: list[dict[str, Any]] = []
    for group in _log_groups(logs):
        for stream in _log_streams(logs, group):
            events = [
                {"timestamp": e["timestamp"], "message": e["message"]}
                for e in _log_events(logs, group, stream)
            ]
            streams.append({"group": group, "stream": stream, "events": events})
    _write_json(root / "logs" / "lambda.json", streams)
    return sum(len(s["events"]) for s in streams)


EXECUTIONS_FILE = Path("stepfunctions") / "executions.json"


def _save_executions(stack: LocalStack, root: Path) -> None:
    """Each execution as Step Functions describes it, with its history: the service's witness of
    every decision (issue 23). moto cannot recreate an execution, so `kycscreen lineage` reads a
    restored stack's executions from here (``saved_execution``)."""
    sfn = stack.client("stepfunctions")
    saved = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=stack.state_machine_arn):
        for listed in page["executions"]:
            arn = listed["executionArn"]
            execution = sfn.describe_execution(executionArn=arn)
            execution.pop("ResponseMetadata", None)
            events = []
            for history in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
                events.extend(history["events"])
            saved.append({"execution": execution, "history": events})
    previous = _saved_executions(stack.settings.state_dir) if stack.settings.state_dir else []
    names = {e["execution"]["name"] for e in saved}
    saved += [e for e in previous if e["execution"]["name"] not in names]  # restored stacks forget them
    _write_json(root / EXECUTIONS_FILE, json.loads(json.dumps(saved, default=str)))  # times as ISO text


def _saved_executions(directory: Path | None) -> list[dict[str, Any]]:
    path = (directory or Path("/nonexistent")) / EXECUTIONS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def saved_execution(directory: Path | None, name: str) -> dict[str, Any] | None:
    """A saved execution (``execution`` and ``history``) by name, or None."""
    return next((e for e in _saved_executions(directory) if e["execution"]["name"] == name), None)


def _save_signing_keys(stack: LocalStack, root: Path) -> None:
    """moto's digest signing key (a LOCAL key, never a real one): the next command signs and
    verifies with the same key pair, as one KMS key would in AWS. moto's HMAC keys too (issue 23):
    submission ids are MACs under the pseudonym key, so a restored stack must compute the same ones."""
    for logical_id, pem in stack.signing_key_pems().items():
        _write_bytes(root / "kms" / f"LOCAL-{logical_id}.pem", pem)
    for logical_id, key in _hmac_keys(stack).items():
        _write_bytes(root / "kms" / f"LOCAL-HMAC-{logical_id}.bin", bytes(key.key_material))


def _restore_signing_keys(stack: LocalStack, root: Path) -> None:
    for path in sorted((root / "kms").glob("LOCAL-*.pem")):
        stack.load_signing_key_pem(path.stem.removeprefix("LOCAL-"), path.read_bytes())
    keys = _hmac_keys(stack)
    for path in sorted((root / "kms").glob("LOCAL-HMAC-*.bin")):
        key = keys.get(path.stem.removeprefix("LOCAL-HMAC-"))
        if key is not None:
            key.key_material = path.read_bytes()


def _hmac_keys(stack: LocalStack) -> dict[str, Any]:
    """moto's HMAC keys (GENERATE_VERIFY_MAC) of the template, by logical id: LOCAL keys only."""
    from moto.kms.models import kms_backends

    from kyclocal.stack import ACCOUNT, REGION

    backend = kms_backends[ACCOUNT][REGION]
    out = {}
    for logical_id, resource in stack._template.body["Resources"].items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::KMS::Key" and props.get("KeyUsage") == "GENERATE_VERIFY_MAC":
            physical = stack.physical_ids.get(logical_id)
            if physical:
                out[logical_id] = backend.describe_key(physical)
    return out


# --------------------------------------------------------------------------- restore
def restore_state(stack: LocalStack, directory: Path) -> dict[str, int]:
    """Put a saved state into a freshly started stack; a missing directory restores nothing.

    The stack calls this before it switches the intake bucket's EventBridge notification on, so a
    restored video is never screened a second time and nothing of the restore can block admission.
    """
    if not (directory / MARKER).is_file():
        if directory.exists() and any(directory.iterdir()):
            raise StateError(f"{directory} is not a kycscreen state directory (no {MARKER})")
        return {"objects": 0, "decisions": 0, "reuse_index_items": 0, "log_events": 0}
    marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    if str(marker.get("state_version")) not in READABLE_VERSIONS:
        raise StateError(
            f"{directory} was written by another version of kycscreen (state {marker.get('state_version')}, "
            f"this one reads {STATE_VERSION}); `kycscreen reset` deletes it"
        )
    try:
        _restore_signing_keys(stack, directory)
        return {
            "objects": _restore_s3(stack, directory),
            "decisions": _restore_table(stack, directory),
            "reuse_index_items": _restore_reuse_index(stack, directory),
            "log_events": _restore_logs(stack, directory),
        } | _restore_loop(stack, directory)
    except (OSError, ValueError, KeyError) as exc:
        raise StateError(f"cannot restore the local state from {directory}: {exc}") from exc


def reconcile_unfinished(stack: LocalStack) -> list[str]:
    """Uploads in a restored intake bucket that never got a decision (their process was killed while
    they were screened) get one now: ERROR, recorded by the reconcile function exactly as the
    template's status rule has it record an aborted execution. Returns their submission ids.

    An upload counts as decided when a decision names its key and version (a state saved by an
    older version may name the bucket differently, so the submission id is not compared)."""
    from kyc.aws.dynamodb_decision_store import deserialise_item
    from kyc.domain.identity import submission_id

    mac = stack.submission_mac()
    ddb = stack.client("dynamodb")
    decided = set()
    for page in ddb.get_paginator("scan").paginate(TableName=stack.resources.decisions_table):
        for raw in page["Items"]:
            source = deserialise_item(raw).get("source") or {}
            decided.add((source.get("key"), source.get("version_id")))
    s3 = stack.client("s3")
    bucket, prefix = stack.resources.intake_bucket, stack.settings.upload_prefix
    reconciled: list[str] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            if (version["Key"], version["VersionId"]) in decided:
                continue
            etag = version.get("ETag", "").strip('"')
            sid = submission_id(bucket, version["Key"], version["VersionId"], etag, mac=mac)
            head = s3.head_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
            submission = {
                "submission_id": sid,
                "bucket": bucket,
                "key": version["Key"],
                "version_id": version["VersionId"],
                "etag": etag,
                "size": version.get("Size", 0),
                "client_reference": (head.get("Metadata") or {}).get("client-reference"),
                "received_at": version["LastModified"].isoformat(),
            }
            stack.reconcile_abandoned(submission)
            reconciled.append(sid)
    return reconciled


def _restore_s3(stack: LocalStack, root: Path) -> int:
    s3 = stack.client("s3")
    buckets = _buckets(stack)
    started_with = _model_data_keys(stack)
    count = 0
    for entry in json.loads((root / "s3" / "index.json").read_text(encoding="utf-8")):
        logical_id = entry.get("bucket_logical_id") or _V1_BUCKETS[entry["bucket"]]
        bucket = buckets.get(logical_id)
        if bucket is None or (logical_id == MODEL_DATA and entry["key"] in started_with):
            continue  # a bucket this stack does not have; the model this session deployed at start
        if entry.get("delete_marker"):
            marker = s3.delete_object(Bucket=bucket, Key=entry["key"]).get("VersionId")
            _pin_version(bucket, entry["key"], marker, entry["version_id"], entry.get("last_modified"))
            continue
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Key": entry["key"],
            "Body": (root / "s3" / "blobs" / entry["sha256"]).read_bytes(),
            "Metadata": entry.get("metadata") or {},
        }
        if entry.get("content_type"):
            kwargs["ContentType"] = entry["content_type"]
        if entry.get("checksum_sha256"):
            kwargs["ChecksumAlgorithm"] = "SHA256"
        if entry.get("sse") == "aws:kms":  # the saved key died with its stack: use this stack's key
            kwargs |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": stack.kms_key_id}
        elif entry.get("sse"):
            kwargs["ServerSideEncryption"] = entry["sse"]
        response = s3.put_object(**kwargs)
        _pin_version(
            bucket, entry["key"], response.get("VersionId"), entry["version_id"], entry.get("last_modified")
        )
        count += 1
    return count


def _pin_version(bucket: str, key: str, new: str | None, old: str, last_modified: str | None = None) -> None:
    """Give the restored version its saved id and time: decision records and submission ids name
    the id, and evidence digests list each version by S3's LastModified (issue 23).

    The S3 API cannot choose either, so this reaches into moto's in-process backend (the local
    stack runs moto in this process). Without it the object keeps a new id and time.
    """
    from kyclocal.stack import ACCOUNT

    try:
        from moto.s3.models import s3_backends

        versions = s3_backends[ACCOUNT]["aws"].buckets[bucket].keys.getlist(key, [])
    except (ImportError, KeyError, AttributeError):
        return
    for version in versions:  # versions and delete markers alike
        if getattr(version, "_version_id", None) == new:
            version._version_id = old
            if last_modified:
                from datetime import UTC, datetime

                moment = datetime.fromisoformat(last_modified)
                version.last_modified = moment.astimezone(UTC).replace(tzinfo=None)  # moto: naive UTC
            return


def _restore_table(stack: LocalStack, root: Path) -> int:
    ddb = stack.client("dynamodb")
    table = stack.resources.decisions_table
    path = root / "dynamodb" / "DecisionsTable.json"
    if not path.is_file():
        path = root / "dynamodb" / _V1_TABLE
    items = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    for item in items:
        ddb.put_item(TableName=table, Item=item)
    return len(items)


def _restore_logs(stack: LocalStack, root: Path) -> int:
    logs = stack.client("logs")
    oldest = int(time.time() * 1000) - MAX_LOG_AGE_MS
    count = 0
    for stream in json.loads((root / "logs" / "lambda.json").read_text(encoding="utf-8")):
        if not stream["events"]:
            continue
        with suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=stream["group"])
        logs.create_log_stream(logGroupName=stream["group"], logStreamName=stream["stream"])
        events = [
            {"timestamp": max(e["timestamp"], oldest), "message": e["message"]} for e in stream["events"]
        ]
        logs.put_log_events(logGroupName=stream["group"], logStreamName=stream["stream"], logEvents=events)
        count += len(events)
    return count


# --------------------------------------------------------------------------- wipe
def wipe_state(directory: Path) -> bool:
    """Delete a state directory this tool wrote; refuse any other non-empty directory."""
    if not directory.exists():
        return False
    if not (directory / MARKER).is_file() and any(directory.iterdir()):
        raise StateError(f"{directory} is not a kycscreen state directory (no {MARKER}); not deleting it")
    shutil.rmtree(directory)
    return True


# --------------------------------------------------------------------------- helpers
def _buckets(stack: LocalStack) -> dict[str, str]:
    """The buckets that hold screening data, by logical id (names differ between template versions)."""
    r = stack.resources
    buckets = {
        "IntakeBucket": r.intake_bucket,
        "WorkBucket": r.work_bucket,
        "AuditBucket": r.audit_bucket,
        "ReviewBucket": r.review_bucket,
    }
    # issue 21: the learning loop's data, and the model data the registry's endpoints serve
    learning = getattr(stack, "physical_ids", {}).get("LearningBucket")
    if learning:
        buckets["LearningBucket"] = learning
    model_data = (getattr(stack, "parameters", None) or {}).get("ModelDataBucket")
    if model_data:
        buckets[MODEL_DATA] = model_data
    return buckets


MODEL_DATA = "ModelDataBucket"  # a template parameter, not a resource: the local stack creates it


def _model_data_keys(stack: LocalStack) -> set[str]:
    """Keys in the model data bucket when the restore begins: this session's own deployment."""
    bucket = _buckets(stack).get(MODEL_DATA)
    if not bucket:
        return set()
    s3 = stack.client("s3")
    return {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }


LOOP_FILE = Path("loop") / "sagemaker-ssm.json"


def _save_loop(stack: LocalStack, root: Path) -> dict[str, int]:
    """The Model Registry, endpoints and pointer histories (kyclocal.loop_state)."""
    from kyclocal.loop_state import save_loop

    document = save_loop(stack)
    _write_json(root / LOOP_FILE, document)
    return {
        "model_packages": len(document["packages"]),
        "pointer_versions": sum(len(p["versions"]) for p in document["parameters"]),
    }


def _restore_loop(stack: LocalStack, root: Path) -> dict[str, int]:
    path = root / LOOP_FILE
    if not path.is_file():  # a state saved before version 3: the registry starts empty
        return {"model_packages": 0, "endpoints": 0, "pointer_versions": 0}
    from kyclocal.loop_state import LoopStateError, restore_loop

    try:
        return restore_loop(stack, json.loads(path.read_text(encoding="utf-8")))
    except LoopStateError as exc:
        raise StateError(str(exc)) from exc


def _log_groups(logs: Any) -> list[str]:
    pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="/aws/lambda/")
    return [g["logGroupName"] for page in pages for g in page["logGroups"]]


def _log_streams(logs: Any, group: str) -> list[str]:
    pages = logs.get_paginator("describe_log_streams").paginate(logGroupName=group)
    return [s["logStreamName"] for page in pages for s in page["logStreams"]]


def _log_events(logs: Any, group: str, stream: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        page = logs.get_log_events(**kwargs | ({"nextToken": token} if token else {}))
        events.extend(page["events"])
        if not page["events"] or page.get("nextForwardToken") == token:
            return events
        token = page.get("nextForwardToken")


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)


def _write_bytes(path: Path, data: bytes) -> None:
    _private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)


def _write_json(path: Path, document: Any) -> None:
    _write_bytes(path, json.dumps(document, sort_keys=True, default=str).encode("utf-8"))


def _swap(staging: Path, directory: Path) -> None:
    staging.chmod(0o700)
    if directory.exists():
        retired = directory.with_name(f".{directory.name}-old-{os.getpid()}")
        directory.rename(retired)
        staging.rename(directory)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(directory)
