"""`kycscreen evaluate LABELS.csv`: screen a labelled set locally, report error rates, propose thresholds.

Each file goes through the full local pipeline (``kycscreen run``'s ``screen_files``). The headline is
what the pipeline decided: per label class, the share of every decision (gates, caps and failures
included), APCER = attacks PASSed, BPCER = genuine videos REJECTed, each with a Wilson interval.
Below it, the score-level view: rates if only the score's band decided (INVALID, ERROR and unscored
REVIEWs are non-responses there), ROC, AUC and EER with bootstrap intervals, and a threshold proposal.
The rates come from ``kyc.domain.evaluation`` (docs/decision-policy.md has the conventions).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kyc.domain.binding import deciding_fields
from kyc.domain.calibration import NOT_A_DETECTOR_MARK, calibration_from_decisions
from kyc.domain.contract import CONTRACT_VERSION
from kyc.domain.evaluation import EvaluationError, decision_rates, evaluate, propose_thresholds
from kyc.domain.policy import DecisionPolicy, PolicyError
from kyc.domain.provenance import evidence_counts
from kyclocal.commands.run import screen_files
from kyclocal.stack import LocalStack, LocalStackSettings

_LABEL_ALIASES = {
    "genuine": "genuine",
    "real": "genuine",
    "bona_fide": "genuine",
    "bonafide": "genuine",
    "bona fide": "genuine",
    "attack": "attack",
    "fake": "attack",
    "spoof": "attack",
}


BOOTSTRAP_RESAMPLES = 1000


class LabelsFileError(ValueError):
    """The labels CSV is malformed: a missing column, an unknown label, no rows."""


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    label: str  # "genuine" | "attack"
    attack_type: str | None
    fake_share: float | None = None  # a partial fake: the share of the clip that is attack (0, 1]


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="error rates on a labelled set, and thresholds that meet targets")
    ev.add_argument(
        "labels", type=Path, help="CSV with columns file,label[,attack_type], or the review API's export"
    )
    ev.add_argument(
        "--media", type=Path, metavar="DIR", help="folder holding the clips a review export names by SHA-256"
    )
    ev.add_argument("--json", action="store_true", help="one JSON document instead of the text report")
    ev.add_argument("--model", default="reference", choices=("reference", "onnx"))
    ev.add_argument("--onnx-config", type=Path)
    ev.add_argument("--frames", type=int, default=32)
    ev.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each decision")
    defaults = DecisionPolicy()
    ev.add_argument("--pass-threshold", type=float, help=f"default: the template's {defaults.pass_threshold}")
    ev.add_argument(
        "--reject-threshold", type=float, help=f"default: the template's ({defaults.reject_threshold})"
    )
    ev.add_argument("--max-apcer", type=float, default=0.05, help="target: attacks PASSed, worst type")
    ev.add_argument("--max-bpcer", type=float, default=0.05, help="target: genuine videos REJECTed")
    ev.add_argument("--max-review-rate", type=float, help="target: share of scored videos sent to REVIEW")
    ev.add_argument(
        "--write-policy",
        type=Path,
        metavar="FILE",
        help="write the policy of these thresholds, bound to the model that scored, with the measured rates",
    )
    ev.add_argument("--policy-version", help="version label of the written policy (default cal-DATE-SETHASH)")
    ev.add_argument(
        "--image-digest",
        metavar="sha256:HEX",
        help="the serving image's manifest digest to bind in the written policy (issue 24: the endpoint "
        "must then run exactly this image; docs/bring-your-model.md)",
    )
    ev.set_defaults(command=cmd_evaluate)


def read_labels(path: Path, media: Path | None = None) -> list[LabelledFile]:
    """Rows of ``file,label[,attack_type]``; relative file paths are relative to the CSV.

    The review API's export (``GET /v1/verdicts/export``, docs/review.md) names clips by content,
    ``sha256,label,attack_type,...``: with ``media`` (a folder searched recursively) each row becomes the
    file whose bytes have that SHA-256.
    """
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        by_content = "file" not in columns and {"sha256", "label"} <= columns
        if not ({"file", "label"} <= columns or by_content):
            raise LabelsFileError(
                f"{path}: needs columns file,label[,attack_type] or a review export (sha256,label,...)"
            )
        if by_content and media is None:
            raise LabelsFileError(f"{path}: names clips by SHA-256 (a review export): give --media DIR")
        files = files_by_sha256(media) if by_content and media is not None else {}
        rows: list[LabelledFile] = []
        for number, raw in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            label = _LABEL_ALIASES.get(row["label"].lower())
            if label is None:
                raise LabelsFileError(f"{path}:{number}: unknown label {row['label']!r}")
            if by_content:
                found = files.get(row["sha256"].lower())
                if found is None:
                    raise LabelsFileError(
                        f"{path}:{number}: no file under {media} has SHA-256 {row['sha256']}"
                    )
                file = found
            else:
                file = Path(row["file"])
            attack_type = (row.get("attack_type") or None) if label == "attack" else None
            share = _share(path, number, row.get("fake_share")) if label == "attack" else None
            rows.append(
                LabelledFile(file if file.is_absolute() else path.parent / file, label, attack_type, share)
            )
    if not rows:
        raise LabelsFileError(f"{path}: no rows")
    return rows


def _share(path: Path, number: int, raw: str | None) -> float | None:
    """The optional ``fake_share`` column: empty for a whole-clip attack, else a number in (0, 1]."""
    if not raw:
        return None
    try:
        share = float(raw.rstrip("%")) / (100 if raw.endswith("%") else 1)
    except ValueError:
        share = -1.0
    if not 0.0 < share <= 1.0:
        raise LabelsFileError(f"{path}:{number}: fake_share must be in (0, 1] or a percentage, got {raw!r}")
    return share


def files_by_sha256(folder: Path) -> dict[str, Path]:
    """Every file under ``folder`` by the SHA-256 of its bytes (the first of identical files)."""
    if not folder.is_dir():
        raise LabelsFileError(f"--media {folder}: not a folder")
    found: dict[str, Path] = {}
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        found.setdefault(file_sha256(file), file.resolve())
    return found


def cmd_evaluate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        labelled = read_labels(args.labels, getattr(args, "media", None))
    except (OSError, LabelsFileError) as exc:
        print(f"kycscreen evaluate: {exc}", file=sys.stderr)
        return 2
    defaults = DecisionPolicy()
    given = args.pass_threshold is not None or args.reject_threshold is not None
    pass_threshold = defaults.pass_threshold if args.pass_threshold is None else args.pass_threshold
    reject_threshold = defaults.reject_threshold if args.reject_threshold is None else args.reject_threshold
    settings = LocalStackSettings(
        model=args.model,
        onnx_config=args.onnx_config,
        frame_count=args.frames,
        pass_threshold=pass_threshold,
        reject_threshold=reject_threshold,
    )
    with LocalStack(settings) as stack:
        recorded = screen_files(stack, [f.path for f in labelled], timeout=args.timeout)
        rows = [decided_once_bound(stack, row) for row in recorded]
        models = scoring_models(stack, rows)
        observed = binding_observed(stack, rows)
        provenance = [_provenance(stack, row) for row in rows]
    try:
        result = evaluation_result(
            labelled,
            rows,
            pass_threshold=pass_threshold,
            reject_threshold=reject_threshold,
            max_apcer=args.max_apcer,
            max_bpcer=args.max_bpcer,
            max_review_rate=args.max_review_rate,
            provenance=provenance,
        )
    except EvaluationError as exc:
        print(f"kycscreen evaluate: {exc}", file=sys.stderr)
        return 2
    result["model"] = args.model
    result["scored_by"] = models
    result["not_calibrated_as_run"] = sum(1 for r in rows if r.get("recorded"))
    if args.json:
        print(json.dumps(result, indent=2), file=out)
    else:
        print_report(result, out)
    if args.write_policy is None:
        return 0
    origin = (
        f"given: --pass-threshold {pass_threshold:g} --reject-threshold {reject_threshold:g}"
        if given
        else "template defaults"
    )
    try:
        document = calibrated_policy(
            labelled,
            rows,
            models,
            pass_threshold=pass_threshold,
            reject_threshold=reject_threshold,
            origin=origin,
            version=args.policy_version,
            observed=observed,
            image_digest=args.image_digest,
        )
    except (CalibrationRefused, EvaluationError, PolicyError) as exc:
        print(f"kycscreen evaluate: no policy written: {exc}", file=sys.stderr)
        return 2
    args.write_policy.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    measured = document["calibration"]["measured"]
    bound = document["calibration"]
    print(
        f"policy {document['version']} written to {args.write_policy}: thresholds bound to "
        f"{models[0]['name']} {models[0]['version']} (artefact {bound['model']['artefact_sha256'][:12]}, "
        f"deciding fields {bound['decides']['sha256'][:12]}); APCER {_rate(measured['apcer'])}, "
        f"BPCER {_rate(measured['bpcer'])}",
        file=sys.stderr,
    )
    return 0


class CalibrationRefused(ValueError):
    """The run cannot calibrate: a model that is no detector, several models, or none."""


def decided_once_bound(stack: LocalStack, row: dict[str, Any]) -> dict[str, Any]:
    """The row as the pipeline decides it once these thresholds are bound to the model that scored.

    An uncalibrated run records REVIEW MODEL_NOT_CALIBRATED for every scored video; the decide function
    keeps, beside it in the audit bucket's scores.json, the decision every other finding allows
    (``decision_if_calibrated``), computed by the same code. That is what a calibration measures.
    """
    if "MODEL_NOT_CALIBRATED" not in (row.get("reasons") or []) or not row.get("submission_id"):
        return row
    from kyc.aws.s3_object_store import S3ObjectStore

    store = S3ObjectStore(s3_client=stack.client("s3"))
    scores = store.get_json(stack.resources.audit_bucket, f"decisions/{row['submission_id']}/scores.json")
    bound = scores["decision_if_calibrated"]
    recorded = {"decision": row["decision"], "reasons": row["reasons"]}
    return row | {"decision": bound["decision"], "reasons": bound["reasons"], "recorded": recorded}


def scoring_models(stack: LocalStack, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every distinct model (name, version) the decision records name, in order of first use."""
    seen: list[dict[str, str]] = []
    for row in rows:
        item = stack.decision(row["submission_id"]) if row.get("submission_id") else None
        model = (item or {}).get("model")
        named = {"name": model["name"], "version": model["version"]} if model else None
        if named and named not in seen:  # the artefact hash is checked beside (binding_observed)
            seen.append(named)
    return seen


def binding_observed(stack: LocalStack, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each scored decision's scores.json says decided it (``calibration_binding.observed``):
    the model artefact's hash and the sampling settings, read from the run's own audit evidence."""
    from kyc.aws.errors import SourceMissingError
    from kyc.aws.s3_object_store import S3ObjectStore

    store = S3ObjectStore(s3_client=stack.client("s3"))
    observed = []
    for row in rows:
        if not row.get("submission_id") or scored(row) is None:
            continue
        try:
            scores = store.get_json(
                stack.resources.audit_bucket, f"decisions/{row['submission_id']}/scores.json"
            )
        except SourceMissingError:
            continue
        if scores.get("calibration_binding"):
            observed.append(scores["calibration_binding"]["observed"])
    return observed


def calibrated_policy(
    labelled: list[LabelledFile],
    rows: list[dict[str, Any]],
    models: list[dict[str, str]],
    *,
    pass_threshold: float,
    reject_threshold: float,
    origin: str,
    version: str | None = None,
    now: datetime | None = None,
    observed: list[dict[str, Any]] | None = None,
    image_digest: str | None = None,
) -> dict[str, Any]:
    """The policy document of this run: its thresholds, bound to the one model that scored (by its
    artefact's hash) and to every deciding field and the sampling settings of the run, with the rates
    the pipeline reached (every labelled video counted) and the labelled set's hash."""
    if len(models) != 1:
        raise CalibrationRefused(f"one model must score the whole labelled set, got {models or 'none'}")
    model = models[0]
    if NOT_A_DETECTOR_MARK.lower() in model["name"].lower():
        raise CalibrationRefused(
            f"{model['name']} is the training-free reference scorer, not a detector: its thresholds are "
            "never calibrated, so its decisions stay REVIEW (MODEL_NOT_CALIBRATED)"
        )
    artefacts = {tuple(o.get("artefact_sha256") or ()) for o in observed or []}
    samplings = {json.dumps(o["decides"]["sampling"], sort_keys=True) for o in observed or []}
    if len(artefacts) != 1 or len(next(iter(artefacts))) != 1:
        raise CalibrationRefused(
            "one model artefact must score the whole labelled set; the run's evidence names "
            f"{sorted(artefacts)}"
            " (a model server that reports no artefact_sha256 cannot be calibrated: docs/model-contract.md)"
        )
    if len(samplings) != 1:
        raise CalibrationRefused(
            f"the run sampled with {len(samplings)} different settings: {sorted(samplings)}"
        )
    artefact = next(iter(artefacts))[0]
    sampling = json.loads(next(iter(samplings)))
    now = now or datetime.now(UTC)
    defaults = DecisionPolicy()
    calibration = calibration_from_decisions(
        model=model,
        contract_version=CONTRACT_VERSION,
        labelled=[(file_sha256(f.path), f.label) for f in labelled],
        decisions=[row.get("decision") for row in rows],
        pass_threshold=pass_threshold,
        reject_threshold=reject_threshold,
        aggregator=defaults.aggregator,
        origin=origin,
        calibrated_at=now,
        artefact_sha256=artefact,
        image_digest=image_digest,
        decides=deciding_fields(
            replace(defaults, pass_threshold=pass_threshold, reject_threshold=reject_threshold), sampling
        ),
    )
    label = version or f"cal-{now:%Y%m%d}-{calibration.labelled_set_sha256[:12]}"
    policy = replace(
        defaults,
        version=label,
        pass_threshold=pass_threshold,
        reject_threshold=reject_threshold,
        calibration=calibration,
    )
    return policy.to_dict()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def evaluation_result(
    labelled: list[LabelledFile],
    rows: list[dict[str, Any]],
    *,
    pass_threshold: float,
    reject_threshold: float,
    max_apcer: float,
    max_bpcer: float,
    max_review_rate: float | None = None,
    provenance: list[dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Rates at the current thresholds, a threshold proposal for the targets, and its rates; with
    ``provenance`` (each decision record's evidence), its counts per label class."""
    scores = [scored(row) for row in rows]
    labels = [f.label for f in labelled]
    types = [f.attack_type for f in labelled]
    shares = [f.fake_share for f in labelled] if any(f.fake_share for f in labelled) else None
    pipeline = decision_rates([row.get("decision") for row in rows], labels, types, shares)
    current = evaluate(
        scores,
        labels,
        types,
        pass_threshold=pass_threshold,
        reject_threshold=reject_threshold,
        resamples=BOOTSTRAP_RESAMPLES,
    )
    proposal = propose_thresholds(
        scores, labels, types, max_apcer=max_apcer, max_bpcer=max_bpcer, max_review_rate=max_review_rate
    )
    at_proposal = evaluate(
        scores,
        labels,
        types,
        pass_threshold=proposal.pass_threshold,
        reject_threshold=proposal.reject_threshold,
    )
    return {
        "files": [
            {
                "file": str(f.path),
                "label": f.label,
                "attack_type": f.attack_type,
                "decision": row["decision"],
                "reasons": row["reasons"],
                "score": scored(row),
                "submission_id": row.get("submission_id"),
            }
            for f, row in zip(labelled, rows, strict=True)
        ],
        "decisions": {
            label: dict(
                Counter(r["decision"] for f, r in zip(labelled, rows, strict=True) if f.label == label)
            )
            for label in ("genuine", "attack")
        },
        "pipeline": pipeline.to_dict(),
        "current": current.to_dict(),
        "targets": {"max_apcer": max_apcer, "max_bpcer": max_bpcer, "max_review_rate": max_review_rate},
        "provenance": evidence_counts(labels, provenance) if provenance is not None else None,
        "proposal": {
            "pass_threshold": proposal.pass_threshold,
            "reject_threshold": proposal.reject_threshold,
            "feasible": proposal.feasible,
            "rates": at_proposal.to_dict(),
        },
    }


def _provenance(stack: LocalStack, row: dict[str, Any]) -> dict[str, Any] | None:
    """The provenance evidence the decision record keeps (docs/provenance.md), if there is a record."""
    item = stack.decision(row["submission_id"]) if row.get("submission_id") else None
    return (item or {}).get("provenance")


def scored(row: dict[str, Any]) -> float | None:
    """The video's score, or None for a non-response (INVALID, ERROR, or REVIEW without a score)."""
    if row.get("decision") not in ("PASS", "REVIEW", "REJECT") or row.get("score") is None:
        return None
    return float(row["score"])


def print_report(result: dict[str, Any], out: TextIO) -> None:
    files = result["files"]
    n_genuine = sum(1 for f in files if f["label"] == "genuine")
    print(f"labelled videos: {len(files)} ({n_genuine} genuine, {len(files) - n_genuine} attack)", file=out)
    for label, counts in result["decisions"].items():
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"
        print(f"  {label:8} decisions: {shown}", file=out)
    pipeline = result["pipeline"]
    print("\nwhat the pipeline decided (every labelled video; gates and failures included):", file=out)
    models = ", ".join(f"{m['name']} {m['version']}" for m in result.get("scored_by") or []) or "-"
    if result.get("not_calibrated_as_run"):
        print(
            f"  with these thresholds bound to {models}: no calibration was in force, so the run itself "
            f"recorded {result['not_calibrated_as_run']} of them REVIEW MODEL_NOT_CALIBRATED",
            file=out,
        )
    for label in ("genuine", "attack"):
        for outcome, rate in pipeline[label].items():
            if rate["total"]:
                print(f"  {label:8} {outcome:<10} {_rate(rate)}", file=out)
    for kind, rate in pipeline["apcer_by_type"].items():
        print(f"  APCER[{kind}]{'':<{max(0, 12 - len(kind))}} {_rate(rate)}  (attacks PASSed)", file=out)
    if pipeline["apcer_by_type"]:
        worst = pipeline["apcer_worst"]
        print(f"  {'APCER worst type':<19} {_rate(worst)}  (the headline, ISO/IEC 30107-3)", file=out)
    for share, rate in pipeline.get("apcer_by_share", {}).items():
        print(
            f"  APCER[{share} fake]{'':<{max(0, 7 - len(share))}} {_rate(rate)}  (partial fakes PASSed)",
            file=out,
        )
    print(f"  {'BPCER':<19} {_rate(pipeline['bpcer'])}  (genuine REJECTed)", file=out)
    print(f"  {'review rate':<19} {_rate(pipeline['review_rate'])}", file=out)
    current = result["current"]
    print(
        f"\nby score alone at current thresholds (pass < {current['pass_threshold']:g}, "
        f"reject >= {current['reject_threshold']:g}; gates ignored):",
        file=out,
    )
    _print_rates(current, out)
    print("\nranking (threshold-free, scored videos only; 95 % bootstrap intervals):", file=out)
    for name in ("auc", "eer", "bpcer20", "bpcer100"):
        value, interval = current[name], current.get(f"{name}_ci95")
        shown = "n/a" if value is None else f"{value:.4f}"
        if interval:
            shown += f"  (95% CI {interval[0]:.4f}-{interval[1]:.4f})"
        print(f"  {name.upper():9} {shown}", file=out)
    proposal, targets = result["proposal"], result["targets"]
    review_target = targets["max_review_rate"]
    verdict = "meets targets" if proposal["feasible"] else "TARGETS NOT MET"
    print(
        f"\nproposed for APCER <= {targets['max_apcer']:g}, BPCER <= {targets['max_bpcer']:g}"
        + (f", review rate <= {review_target:g}" if review_target is not None else "")
        + f": pass_threshold {proposal['pass_threshold']:.6g}, reject_threshold "
        f"{proposal['reject_threshold']:.6g} ({verdict})",
        file=out,
    )
    _print_rates(proposal["rates"], out)
    if result.get("provenance"):
        print("\nprovenance evidence per label class (C2PA, declared sources, forensic signals):", file=out)
        for label, counts in result["provenance"].items():
            shown = ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"
            print(f"  {label:8} {shown}", file=out)
    print(
        "\nIntervals are 95 % Wilson intervals; with few videos they are wide: read them before the point "
        "values.",
        file=out,
    )
    if result.get("model") == "reference":
        print("model: reference-spectrum - NOT A PRODUCTION DEEPFAKE DETECTOR.", file=out)


def _print_rates(rates: dict[str, Any], out: TextIO) -> None:
    for kind, rate in rates["apcer_by_type"].items():
        print(f"  APCER[{kind}]{'':<{max(0, 12 - len(kind))}} {_rate(rate)}", file=out)
    for name, key in (
        ("BPCER", "bpcer"),
        ("review rate", "review_rate"),
        ("genuine review", "genuine_review_rate"),
        ("attack no-score", "attack_nonresponse"),
        ("genuine no-score", "genuine_nonresponse"),
    ):
        print(f"  {name:<19} {_rate(rates[key])}", file=out)


def _rate(rate: dict[str, Any]) -> str:
    if rate["value"] is None:
        return "n/a (0 videos)"
    low, high = rate["ci95"]
    return f"{rate['value']:.4f}  ({rate['errors']}/{rate['total']}, 95% CI {low:.4f}-{high:.4f})"
