"""What SageMaker and S3 say the endpoint serves: a witness of the model bytes the container cannot write.

A container reports the SHA-256 of the artefact it loaded (``model.artefact_sha256``), but a container
that lies, or was built to report a fixed hash, is checked by nothing it says about itself. SageMaker
knows which model each production variant runs and where its model data came from; S3 knows the
SHA-256 of that object, which it verified when the object was uploaded with ``x-amz-checksum-sha256``.
Neither is written by the container. This module turns their descriptions (DescribeEndpoint,
DescribeEndpointConfig, DescribeModel, GetObjectAttributes, gathered by
``kyc.aws.sagemaker_model_witness``) into one account: the artefact hash every model that may answer
was created from, or why none can be named. ``kyc.domain.binding`` compares it with the calibration
and with the server's report. Pure Python (docs/model-contract.md, "The deployment witness").

The serving image is witnessed too (issue 24): a tag is a name anyone with ECR push rights can move, so
the account names an image only by digest (``sha256:<hex>`` of the image manifest), taken from the
model's image URI when it is in digest form (``repo@sha256:...``) or from the digest SageMaker resolved
the tag to when it deployed the variant (DescribeEndpoint ``DeployedImages[].ResolvedImage``); a tag
neither resolves is ``image_unresolved``. ``witness_differs`` is the one comparison of an account with
what a calibration or a promotion expects (the score binding and ``kycscreen promote`` both use it).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "WITNESS_SOURCE",
    "WitnessAccount",
    "WitnessUnreadable",
    "image_digest_of",
    "model_data_object",
    "s3_sha256_hex",
    "variants_that_may_answer",
    "why_differs",
    "witness_account",
    "witness_differs",
    "witnessed_hashes",
]

WITNESS_SOURCE = "sagemaker+s3"
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


class WitnessUnreadable(Exception):
    """The witness cannot name the bytes: an unreadable witness binds nothing (fail closed)."""


@dataclass(frozen=True)
class WitnessAccount:
    """``artefact_sha256``: the model data every model that may answer was created from, per S3's own
    checksum; None with ``unreadable`` saying why. ``detail``: which endpoint config, variants, models,
    objects, checksums and images the account rests on (for the audit record). ``image_digest``: the one image
    manifest digest every model that may answer runs, None with ``image_unresolved`` saying why."""

    artefact_sha256: str | None
    unreadable: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    image_digest: str | None = None
    image_unresolved: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": WITNESS_SOURCE,
            "artefact_sha256": self.artefact_sha256,
            "unreadable": self.unreadable,
            "image_digest": self.image_digest,
            "image_unresolved": self.image_unresolved,
        } | dict(self.detail)


def image_digest_of(image: str | None, resolved: Mapping[str, set[str]]) -> str:
    """The manifest digest (``sha256:<hex>``) a model's image URI binds: its own ``@sha256:`` suffix,
    or the one digest SageMaker resolved that URI to (``resolved``: SpecifiedImage -> ResolvedImage
    digests, from DescribeEndpoint's ``DeployedImages``). A tag is a name, not a binding."""
    if not image:
        raise WitnessUnreadable("the model names no image")
    own = _DIGEST.search(image)
    if own:
        return own.group(1)
    digests = resolved.get(image) or set()
    if len(digests) == 1:
        return next(iter(digests))
    if digests:
        raise WitnessUnreadable(f"image {image} resolved to {len(digests)} digests (the tag moved)")
    raise WitnessUnreadable(
        f"image {image} is a tag SageMaker reports no digest for: "
        "deploy the image by digest (repo@sha256:...)"
    )


def _resolved_images(endpoint: Mapping[str, Any]) -> dict[str, set[str]]:
    """SpecifiedImage -> the digests SageMaker resolved it to, over the live and the pending variants."""
    variants = list(endpoint.get("ProductionVariants") or []) + list(
        (endpoint.get("PendingDeploymentSummary") or {}).get("ProductionVariants") or []
    )
    out: dict[str, set[str]] = {}
    for variant in variants:
        for deployed in variant.get("DeployedImages") or []:
            match = _DIGEST.search(str(deployed.get("ResolvedImage") or ""))
            if match and deployed.get("SpecifiedImage"):
                out.setdefault(str(deployed["SpecifiedImage"]), set()).add(match.group(1))
    return out


def witness_differs(
    account: Mapping[str, Any] | None, *, artefact_sha256: str | None, image_digest: str | None = None
) -> list[str]:
    """The fields where a witness account (``WitnessAccount.to_dict``) does not name what is expected:
    ``model.witness.unreadable`` (no account, or it could not name the bytes), ``model.witness.
    artefact_sha256`` (other bytes, or nothing expected), ``model.witness.image_digest`` (an image is
    expected and the account names another, or none). Empty: the witness names exactly these bytes
    (and this image, when one is expected)."""
    differs = []
    if not account or account.get("unreadable") or not account.get("artefact_sha256"):
        differs.append("model.witness.unreadable")
    elif not artefact_sha256 or account.get("artefact_sha256") != artefact_sha256:
        differs.append("model.witness.artefact_sha256")
    if image_digest is not None and (account or {}).get("image_digest") != image_digest:
        differs.append("model.witness.image_digest")
    return differs


def why_differs(account: Mapping[str, Any] | None, differs: Sequence[str]) -> str:
    """One sentence per differing field, for a refusal a person reads."""
    account = account or {}
    said = {
        "model.witness.unreadable": (
            f"the witness cannot name the bytes ({account.get('unreadable') or 'no account'})"
        ),
        "model.witness.artefact_sha256": (
            f"SageMaker and S3 say the model data is {account.get('artefact_sha256')} "
            f"({', '.join(str(m.get('model_data')) for m in account.get('models') or []) or 'no model data'})"
        ),
        "model.witness.image_digest": (
            f"the serving image is {account.get('image_digest') or 'not bound'}"
            + (f" ({account['image_unresolved']})" if account.get("image_unresolved") else "")
        ),
    }
    return "; ".join(said[d] for d in differs)


def variants_that_may_answer(
    endpoint: Mapping[str, Any], invoked_variant: str | None
) -> list[tuple[str, str]]:
    """(endpoint config, variant) pairs whose model may have answered: the variant SageMaker says it
    invoked in the current config (all of them when it did not say), plus every variant of a config
    being deployed (an update in flight: either may answer until it completes)."""
    current = str(endpoint.get("EndpointConfigName") or "")
    if not current:
        raise WitnessUnreadable("DescribeEndpoint names no endpoint config")
    names = [str(v.get("VariantName")) for v in endpoint.get("ProductionVariants") or []]
    if invoked_variant is not None:
        if names and invoked_variant not in names:
            raise WitnessUnreadable(f"variant {invoked_variant!r} answered but the endpoint has {names}")
        pairs = [(current, invoked_variant)]
    else:
        pairs = [(current, "*")]
    pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    if pending and pending != current:
        pairs.append((str(pending), "*"))
    return pairs


def model_data_object(model: Mapping[str, Any]) -> tuple[str, str]:
    """(bucket, key) of the one object a SageMaker model's data is: ``ModelDataUrl``, or
    ``ModelDataSource.S3DataSource`` of type ``S3Object``. A prefix (many objects), several containers,
    or no model data at all cannot be named by one hash."""
    if model.get("Containers"):
        raise WitnessUnreadable(
            f"model {model.get('ModelName')} has several containers (an inference pipeline)"
        )
    container = model.get("PrimaryContainer") or {}
    source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
    if source:
        if source.get("S3DataType") != "S3Object":
            raise WitnessUnreadable(
                f"model {model.get('ModelName')} reads model data from a prefix ({source.get('S3Uri')}): "
                "use one object (S3DataType S3Object)"
            )
        uri = str(source.get("S3Uri") or "")
    else:
        uri = str(container.get("ModelDataUrl") or "")
    if not uri.startswith("s3://") or uri.endswith("/") or "/" not in uri[5:]:
        raise WitnessUnreadable(f"model {model.get('ModelName')} has no model data object ({uri or 'none'})")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def s3_sha256_hex(attributes: Mapping[str, Any]) -> str:
    """The object's SHA-256 (hex) as S3 verified it at upload (GetObjectAttributes ``Checksum``). A
    composite checksum (multipart upload: a hash of the parts' hashes) is not the file's hash."""
    checksum = attributes.get("Checksum") or {}
    value = checksum.get("ChecksumSHA256")
    if not value:
        raise WitnessUnreadable(
            "S3 holds no SHA-256 checksum for the model data (upload it with --checksum-algorithm SHA256)"
        )
    if checksum.get("ChecksumType") == "COMPOSITE" or "-" in str(value):
        raise WitnessUnreadable(
            "the model data's SHA-256 is a composite of multipart parts, not the file's: upload it in one PUT"
        )
    try:
        digest = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WitnessUnreadable(f"S3 checksum {value!r} is not base64") from exc
    if len(digest) != 32:
        raise WitnessUnreadable(f"S3 checksum {value!r} is not a SHA-256")
    return digest.hex()


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value else None)


def witness_account(
    endpoint: Mapping[str, Any],
    configs: Mapping[str, Mapping[str, Any]],
    models: Mapping[str, Mapping[str, Any]],
    objects: Mapping[tuple[str, str], Mapping[str, Any]],
    *,
    invoked_variant: str | None,
    data_bucket: str,
    data_prefix: str,
) -> WitnessAccount:
    """One account from the services' descriptions (keyed by name; ``objects`` by (bucket, key)).

    Unreadable when: a config, model or object is missing from the descriptions; a model's data is
    not one object under ``data_bucket``/``data_prefix`` (where the stack may read, and where the
    deployment says models live); S3 has no full-object SHA-256; the object changed after the endpoint
    was last deployed (SageMaker copied the bytes then: a swap and restore would leave S3 describing
    bytes nothing runs); or the models that may answer were created from different bytes."""
    detail: dict[str, Any] = {
        "endpoint": endpoint.get("EndpointName"),
        "endpoint_status": endpoint.get("EndpointStatus"),
        "endpoint_config": endpoint.get("EndpointConfigName"),
        "endpoint_modified": _iso(endpoint.get("LastModifiedTime")),
        "invoked_variant": invoked_variant,
        "images": sorted(
            {
                str(image.get("ResolvedImage") or image.get("SpecifiedImage"))
                for variant in endpoint.get("ProductionVariants") or []
                for image in variant.get("DeployedImages") or []
            }
        ),
        "models": [],
    }
    resolved = _resolved_images(endpoint)
    try:
        hashes = set()
        for config_name, variant_name in variants_that_may_answer(endpoint, invoked_variant):
            config = configs.get(config_name)
            if config is None:
                raise WitnessUnreadable(f"endpoint config {config_name} could not be described")
            variants = [
                v
                for v in config.get("ProductionVariants") or []
                if variant_name in ("*", v.get("VariantName"))
            ]
            if not variants:
                raise WitnessUnreadable(f"endpoint config {config_name} has no variant {variant_name}")
            for variant in variants:
                hashes.add(_model_hash(variant, models, objects, endpoint, data_bucket, data_prefix, detail))
    except WitnessUnreadable as exc:
        return WitnessAccount(None, str(exc), detail)
    if len(hashes) != 1:
        return WitnessAccount(
            None, f"the models that may answer were created from {len(hashes)} artefacts", detail
        )
    digest, unresolved = _one_image(detail["models"], resolved)
    return WitnessAccount(hashes.pop(), None, detail, digest, unresolved)


def _one_image(
    models: Sequence[Mapping[str, Any]], resolved: Mapping[str, set[str]]
) -> tuple[str | None, str | None]:
    """(the image digest every model that may answer runs, None) or (None, why there is not one)."""
    digests = set()
    for entry in models:
        try:
            digests.add(image_digest_of(entry.get("image"), resolved))
        except WitnessUnreadable as exc:
            return None, f"model {entry.get('model')}: {exc}"
    if len(digests) != 1:
        return None, f"the models that may answer run {len(digests)} images"
    return digests.pop(), None


def _model_hash(
    variant: Mapping[str, Any],
    models: Mapping[str, Mapping[str, Any]],
    objects: Mapping[tuple[str, str], Mapping[str, Any]],
    endpoint: Mapping[str, Any],
    data_bucket: str,
    data_prefix: str,
    detail: dict[str, Any],
) -> str:
    name = str(variant.get("ModelName") or "")
    model = models.get(name)
    if model is None:
        raise WitnessUnreadable(
            f"model {name or '(none)'} of variant {variant.get('VariantName')} could not be described"
        )
    bucket, key = model_data_object(model)
    entry: dict[str, Any] = {
        "variant": variant.get("VariantName"),
        "model": name,
        "image": (model.get("PrimaryContainer") or {}).get("Image"),
        "model_data": f"s3://{bucket}/{key}",
    }
    detail["models"].append(entry)
    if not data_bucket or bucket != data_bucket or not key.startswith(data_prefix):
        raise WitnessUnreadable(
            f"model {name}'s data s3://{bucket}/{key} is outside the stack's model data location "
            f"(ModelDataBucket {data_bucket or 'unset'}, ModelDataPrefix {data_prefix or '(any)'})"
        )
    attributes = objects.get((bucket, key))
    if attributes is None:
        raise WitnessUnreadable(f"S3 attributes of s3://{bucket}/{key} could not be read")
    entry["version_id"] = attributes.get("VersionId")
    entry["last_modified"] = _iso(attributes.get("LastModified"))
    entry["sha256"] = s3_sha256_hex(attributes)
    changed, deployed = attributes.get("LastModified"), endpoint.get("LastModifiedTime")
    if isinstance(changed, datetime) and isinstance(deployed, datetime) and changed > deployed:
        raise WitnessUnreadable(
            f"s3://{bucket}/{key} changed at {changed.isoformat()}, after the endpoint was deployed "
            f"({deployed.isoformat()}): S3 may describe bytes the endpoint never copied"
        )
    return str(entry["sha256"])


def witnessed_hashes(witnesses: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """The artefact hashes the witnesses of a decision's batches named (none for unreadable ones)."""
    return sorted({str(w["artefact_sha256"]) for w in witnesses if w and w.get("artefact_sha256")})
