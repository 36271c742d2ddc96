"""The upload contract: every declaration rule, the generated key, and the exact POST policy conditions."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

from kyc.domain.upload_request import (
    ALLOWED_CONTENT_TYPES,
    UploadErrorCode,
    UploadPolicy,
    UploadPolicyError,
    UploadRequest,
    UploadRequestError,
    plan_upload,
)
from tests.fixtures.macs import TEST_MAC, StdlibHmac

KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000001"
POLICY = UploadPolicy(upload_prefix="uploads/", max_bytes=1000, kms_key_arn=KEY_ARN, expires_in_s=300)
FIXED_ID = uuid.UUID("12345678-1234-4234-8234-123456789abc")


def _refusal(body: object) -> UploadErrorCode:
    with pytest.raises(UploadRequestError) as info:
        UploadRequest.parse(body, POLICY)
    assert info.value.message and "Traceback" not in info.value.message
    return info.value.code


@pytest.mark.parametrize(("content_type", "ext"), sorted(ALLOWED_CONTENT_TYPES.items()))
def test_upload_request_allowed_content_type_is_accepted_with_its_extension(content_type, ext):
    request = UploadRequest.parse({"content_type": content_type, "size": 10}, POLICY)
    assert request.content_type == content_type and request.extension == ext


def test_upload_request_content_type_is_normalised_to_lower_case():
    assert UploadRequest.parse({"content_type": " Video/MP4 ", "size": 1}, POLICY).content_type == "video/mp4"


@pytest.mark.parametrize(
    "content_type",
    ["video/avi", "application/x-mpegurl", "text/plain", "video/mp4; codecs=avc1", "video/*", "", None, 7],
)
def test_upload_request_other_content_type_is_refused_unsupported(content_type):
    assert _refusal({"content_type": content_type, "size": 10}) is UploadErrorCode.UNSUPPORTED_CONTENT_TYPE


@pytest.mark.parametrize("size", [1, 999, 1000])
def test_upload_request_size_within_range_is_accepted(size):
    assert UploadRequest.parse({"content_type": "video/mp4", "size": size}, POLICY).size == size


def test_upload_request_size_above_max_is_refused_too_large():
    assert _refusal({"content_type": "video/mp4", "size": 1001}) is UploadErrorCode.TOO_LARGE


@pytest.mark.parametrize("size", [0, -1, 1.5, "10", True, None])
def test_upload_request_size_not_a_positive_integer_is_refused_invalid_size(size):
    assert _refusal({"content_type": "video/mp4", "size": size}) is UploadErrorCode.INVALID_SIZE


@pytest.mark.parametrize("ref", ["a", "ACME-2026_applicant-42", "x" * 64, "9abc"])
def test_upload_request_client_reference_matching_pattern_is_accepted(ref):
    body = {"content_type": "video/mp4", "size": 1, "client_reference": ref}
    assert UploadRequest.parse(body, POLICY).client_reference == ref


@pytest.mark.parametrize(
    "ref",
    ["", "x" * 65, "../etc", "a/b", "a.b", "a b", "a%2F", "-lead", "_lead", "é", "anonymous", "Anonymous", 5],
)
def test_upload_request_client_reference_off_pattern_is_refused_invalid_reference(ref):
    body = {"content_type": "video/mp4", "size": 1, "client_reference": ref}
    assert _refusal(body) is UploadErrorCode.INVALID_CLIENT_REFERENCE


@pytest.mark.parametrize(
    "body",
    [[], "video/mp4", None, {"content_type": "video/mp4", "size": 1, "filename": "me.mp4"}],
)
def test_upload_request_non_object_or_unknown_field_is_refused_invalid_body(body):
    assert _refusal(body) is UploadErrorCode.INVALID_BODY


def _oracle_segment(reference: str) -> str:
    """The key folder, computed by hand: HMAC-SHA256 of the reference under the test key, labelled."""
    digest = hmac.new(TEST_MAC.key, reference.encode(), hashlib.sha256).hexdigest()
    return f"hmac-{TEST_MAC.label}-{digest}"


def test_plan_upload_key_is_prefix_keyed_pseudonym_of_reference_uuid_and_extension():
    request = UploadRequest("video/quicktime", 500, "ACME-42")
    ticket = plan_upload(request, POLICY, new_id=lambda: FIXED_ID, mac=TEST_MAC)
    assert ticket.key == f"uploads/{_oracle_segment('ACME-42')}/{FIXED_ID.hex}.mov"
    assert ticket.object_id == FIXED_ID.hex


@pytest.mark.parametrize("reference", ["ACME-42", "a", "applicant_0001", "Z" * 64])
def test_plan_upload_key_never_carries_the_client_reference(reference):
    """S3 access logs keep keys for LogRetentionDays: the reference must not be in one, in any case."""
    ticket = plan_upload(UploadRequest("video/mp4", 1, reference), POLICY, mac=TEST_MAC)
    segments = ticket.key.split("/")
    assert reference not in segments and reference.lower() not in ticket.key.lower().split("/")
    if len(reference) >= 4:
        assert reference.lower() not in ticket.key.lower()
    assert ticket.fields["x-amz-meta-client-reference"] == reference  # kept for the decision item


def test_plan_upload_key_folder_differs_under_another_key():
    other = StdlibHmac(key=b"another key entirely", label="testkey2")
    request = UploadRequest("video/mp4", 1, "ACME-42")
    one = plan_upload(request, POLICY, new_id=lambda: FIXED_ID, mac=TEST_MAC).key
    two = plan_upload(request, POLICY, new_id=lambda: FIXED_ID, mac=other).key
    assert one.split("/")[1] != two.split("/")[1]


def test_plan_upload_without_reference_uses_anonymous_folder_and_no_metadata():
    def no_mac(message: bytes) -> bytes:
        raise AssertionError("no reference, no MAC call (and no KMS request)")

    ticket = plan_upload(UploadRequest("video/webm", 5), POLICY, new_id=lambda: FIXED_ID, mac=no_mac)  # type: ignore[arg-type]
    assert ticket.key == f"uploads/anonymous/{FIXED_ID.hex}.webm"
    assert "x-amz-meta-client-reference" not in ticket.fields
    assert all("x-amz-meta-client-reference" not in c for c in ticket.conditions if isinstance(c, dict))


def test_plan_upload_key_never_contains_the_users_filename():
    # The declaration has no filename field at all (an extra field is refused); keys are always fresh.
    with pytest.raises(UploadRequestError):
        UploadRequest.parse(
            {"content_type": "video/mp4", "size": 1, "filename": "../../passport scan.mp4"}, POLICY
        )
    keys = {plan_upload(UploadRequest("video/mp4", 1, "ref"), POLICY, mac=TEST_MAC).key for _ in range(50)}
    assert len(keys) == 50
    folder = f"uploads/{_oracle_segment('ref')}/"
    for key in keys:
        assert key.startswith(folder) and key.endswith(".mp4")
        assert len(key.removeprefix(folder).removesuffix(".mp4")) == 32  # uuid4 hex, nothing else


def test_plan_upload_conditions_are_exact():
    ticket = plan_upload(
        UploadRequest("video/mp4", 777, "ref-1"), POLICY, new_id=lambda: FIXED_ID, mac=TEST_MAC
    )
    assert ticket.conditions == (
        ["content-length-range", 1, 777],
        {"Content-Type": "video/mp4"},
        {"x-amz-server-side-encryption": "aws:kms"},
        {"x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN},
        {"x-amz-meta-client-reference": "ref-1"},
    )
    assert dict(ticket.fields) == {
        "Content-Type": "video/mp4",
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN,
        "x-amz-meta-client-reference": "ref-1",
    }
    assert ticket.expires_in_s == 300


def test_plan_upload_every_field_is_pinned_by_an_equality_condition():
    ticket = plan_upload(UploadRequest("video/x-matroska", 1, "r"), POLICY, mac=TEST_MAC)
    pinned = {k: v for c in ticket.conditions if isinstance(c, dict) for k, v in c.items()}
    assert pinned == dict(ticket.fields)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"upload_prefix": "uploads"},
        {"upload_prefix": "/uploads/"},
        {"max_bytes": 0},
        {"kms_key_arn": ""},
        {"expires_in_s": 59},
        {"expires_in_s": 3601},
    ],
)
def test_upload_policy_unusable_setting_raises_policy_error(kwargs):
    base = {"upload_prefix": "uploads/", "max_bytes": 10, "kms_key_arn": KEY_ARN, "expires_in_s": 300}
    with pytest.raises(UploadPolicyError):
        UploadPolicy(**(base | kwargs))
