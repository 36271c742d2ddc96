"""Read an upload's C2PA Content Credentials offline into a small, bounded, JSON-safe summary.

The manifest is the applicant's bytes like everything else: it is read by c2pa-python (the
Content Authenticity Initiative's bindings to c2pa-rs, shipped in the provenance layer) inside
the sandbox child (``kyc.media.isolated.read_c2pa_isolated``), with every network path closed:
no remote manifest, no OCSP, no host allowed at all. What comes out is what the policy needs
(``kyc.domain.provenance``): whether there is a manifest, its validation state and failure
codes, the signer and its trust, every declared ``digitalSourceType`` and action. docs/provenance.md
says what each of these proves and does not prove.

States (``C2paSummary.state``):
- ``absent``: no manifest store in the file (the common case, and proof of nothing);
- ``present``: read and validated; see ``validation_state`` and ``failures``;
- ``unsupported``: a container c2pa does not read (WebM, Matroska): nothing was looked for;
- ``remote``: the file points at a manifest elsewhere, which is never fetched;
- ``oversized``: the manifest store is larger than ``max_manifest_bytes`` and was not parsed;
- ``unreadable``: the store is there but does not parse or validate at all (garbage JUMBF), or the
  reader crashed or hit the sandbox's limits on it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from kyc.domain.provenance import is_known_source_type, source_type_term
from kyc.media.forensics import clip_text
from kyc.media.probe import scan_iso_bmff
from kyc.media.signature import SNIFF_BYTES, Family, sniff

DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_ITEMS = 16  # per list in the summary: it travels in Step Functions state
MAX_TEXT = 160
# Declared source types are read in full, never cut before the rule (issue 24): the bound is on the
# total work instead, JSON nodes walked over the whole store; a store that exceeds it is recorded as
# not fully read (``source_types_complete`` false), which the rules treat as an unusable manifest.
MAX_STORE_NODES = 500_000
# Distinct declared types kept: every vocabulary term first (there are about 30), then others up to
# the limit; more unknown terms than that is recorded as not fully read, like the work bound.
MAX_SOURCE_TYPES = 64

# Every network path of the reader closed; trust anchors are added by ``reader_settings``.
OFFLINE_SETTINGS: dict[str, Any] = {
    "version": 1,
    "verify": {
        "verify_after_reading": True,
        "verify_trust": True,
        "verify_timestamp_trust": True,
        "remote_manifest_fetch": False,
        "ocsp_fetch": False,
    },
    "core": {"allowed_network_hosts": [], "decode_identity_assertions": False},
}


@dataclass(frozen=True)
class C2paConfig:
    """How manifests are read: the trust anchors (PEM; None = trust no signer) and a size bound."""

    trust_anchors_pem: str | None = None
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES


@dataclass(frozen=True)
class C2paSummary:
    state: str
    detail: str | None = None
    manifest_bytes: int | None = None
    manifests: int = 0
    validation_state: str | None = None
    claim_generator: str | None = None
    signer: dict[str, str | None] | None = None
    trust: str | None = None  # trusted | untrusted | unknown
    failures: list[str] = field(default_factory=list)  # active manifest's failure codes
    ingredient_failures: list[str] = field(default_factory=list)
    source_types: list[dict[str, str]] = field(default_factory=list)
    source_types_complete: bool = True
    actions: list[dict[str, str | None]] = field(default_factory=list)
    remote_url: str | None = None
    reader: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reader_settings(config: C2paConfig) -> dict[str, Any]:
    settings = json.loads(json.dumps(OFFLINE_SETTINGS))
    if config.trust_anchors_pem:
        settings["trust"] = {"trust_anchors": config.trust_anchors_pem}
    return settings


def read_c2pa(path: str | os.PathLike[str], config: C2paConfig) -> C2paSummary:
    """Summarise the file's manifest store; never raises for what the file contains.

    Runs in the sandbox child: a reader that crashes or loops is stopped there and becomes
    ``unreadable`` in the parent.
    """
    size = os.stat(path).st_size
    with open(path, "rb") as handle:
        family = sniff(handle.read(SNIFF_BYTES))
        if family is not Family.ISOBMFF:
            return C2paSummary("unsupported", detail=f"no C2PA reading for {family.value} files")
        layout = scan_iso_bmff(handle, size)
    if layout.c2pa_bytes > config.max_manifest_bytes:
        detail = f"{layout.c2pa_bytes} bytes of manifest store; the limit is {config.max_manifest_bytes}"
        return C2paSummary("oversized", detail=detail, manifest_bytes=layout.c2pa_bytes)
    import c2pa  # loaded where it is used; preload() in the handler loads it before the fork

    reader_name = f"c2pa-python {c2pa.__version__}"
    context = c2pa.Context.from_dict(reader_settings(config))
    try:
        with open(path, "rb") as stream:
            reader = c2pa.Reader("video/mp4", stream, context=context)
            try:
                store = json.loads(reader.json())
            finally:
                reader.close()
    except c2pa.C2paError.ManifestNotFound:
        return C2paSummary("absent", manifest_bytes=layout.c2pa_bytes or None, reader=reader_name)
    except c2pa.C2paError.NotSupported as exc:
        return C2paSummary("unsupported", detail=_text(exc), reader=reader_name)
    except (c2pa.C2paError, ValueError) as exc:  # garbage JUMBF, malformed CBOR, bad JSON
        detail = _text(exc)
        if isinstance(exc, c2pa.C2paError.RemoteManifest) or detail.startswith("Remote:"):
            return C2paSummary("remote", remote_url=detail, reader=reader_name)
        if not layout.c2pa_boxes:
            # c2pa-rs's box parser is stricter than FFmpeg's; a file with no C2PA box that it cannot
            # parse has no manifest, and must not be held against the applicant as a broken one
            detail = f"no C2PA box; the reader failed: {detail}"
            return C2paSummary("absent", detail=_clip(detail), reader=reader_name)
        return C2paSummary("unreadable", detail=detail, manifest_bytes=layout.c2pa_bytes, reader=reader_name)
    finally:
        context.close()
    summary = summarise_store(store)
    return C2paSummary(**{**asdict(summary), "manifest_bytes": layout.c2pa_bytes, "reader": reader_name})


def summarise_store(store: Mapping[str, Any]) -> C2paSummary:
    """The policy's view of a manifest store as c2pa-rs reports it (``Reader.json()``)."""
    manifests = _mapping(store.get("manifests"))
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) if isinstance(manifests.get(active_label), Mapping) else None
    results = _mapping(store.get("validation_results"))
    active_results = _mapping(results.get("activeManifest"))
    failures = _codes(active_results.get("failure"))
    if not active_results:  # older reports: validation_status only
        failures = _codes(store.get("validation_status"))
    successes = _codes(active_results.get("success"))
    ingredient_failures: list[str] = []
    for delta in results.get("ingredientDeltas") or []:
        if isinstance(delta, Mapping):
            ingredient_failures += _codes(_mapping(delta.get("validationDeltas")).get("failure"))
    declared: dict[tuple[str, str], dict[str, str]] = {}
    actions: list[dict[str, str | None]] = []
    budget = _Budget(MAX_STORE_NODES)
    for label, manifest in manifests.items():
        if not isinstance(manifest, Mapping):
            continue
        role = "active" if label == active_label else "ingredient"
        for assertion in manifest.get("assertions") or []:
            if isinstance(assertion, Mapping) and str(assertion.get("label", "")).startswith("c2pa.actions"):
                actions += _actions(assertion.get("data"), role)
        # every assertion and ingredient of every manifest, whatever the order or number of actions
        for value in _source_types(manifest, budget):
            term = source_type_term(value)
            declared.setdefault(
                (term, role), {"type": _clip(term) or "?", "uri": _clip(value) or "?", "manifest": role}
            )
    known = [e for (term, _), e in declared.items() if is_known_source_type(term)]
    other = [e for (term, _), e in declared.items() if not is_known_source_type(term)]
    source_types = (known + other)[: max(MAX_SOURCE_TYPES, len(known))]
    trust = "unknown"
    if "signingCredential.trusted" in successes or store.get("validation_state") == "Trusted":
        trust = "trusted"
    elif "signingCredential.untrusted" in failures:
        trust = "untrusted"
    return C2paSummary(
        state="present",
        manifests=len(manifests),
        validation_state=_clip(store.get("validation_state")),
        claim_generator=_generator(active) if active else None,
        signer=_signer(active) if active else None,
        trust=trust,
        failures=_unique(failures),
        ingredient_failures=_unique(ingredient_failures),
        source_types=source_types,
        source_types_complete=not budget.exhausted and len(known) + len(other) <= len(source_types),
        actions=actions[:MAX_ITEMS],
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _codes(statuses: Any) -> list[str]:
    if not isinstance(statuses, list):
        return []
    return [_clip(s.get("code")) or "?" for s in statuses if isinstance(s, Mapping)]


def _unique(codes: list[str]) -> list[str]:
    return list(dict.fromkeys(codes))[:MAX_ITEMS]


def _actions(data: Any, role: str) -> list[dict[str, str | None]]:
    entries = data.get("actions") if isinstance(data, Mapping) else None
    out: list[dict[str, str | None]] = []
    for action in entries if isinstance(entries, list) else []:
        if not isinstance(action, Mapping):
            continue
        agent = action.get("softwareAgent")
        agent_name = agent.get("name") if isinstance(agent, Mapping) else agent
        out.append(
            {
                "action": _clip(action.get("action")),
                "software_agent": _clip(agent_name),
                "digital_source_type": _term(action.get("digitalSourceType"))
                if action.get("digitalSourceType")
                else None,
                "manifest": role,
            }
        )
    return out


class _Budget:
    """JSON nodes left to walk over the whole store; ``exhausted`` once a walk was cut short."""

    def __init__(self, nodes: int) -> None:
        self.left = nodes
        self.exhausted = False


def _source_types(data: Any, budget: _Budget) -> Iterator[str]:
    """Every value of a key named ``digitalSourceType`` (any case, any prefix such as IPTC's
    ``Iptc4xmpExt:DigitalSourceType``) anywhere in ``data`` (a whole manifest: its assertions, their
    actions and ingredients), within the store's node budget."""
    stack = [data]
    while stack:
        if budget.left <= 0:
            budget.exhausted = True
            return
        node = stack.pop()
        budget.left -= 1
        if isinstance(node, Mapping):
            for key, value in node.items():
                if str(key).lower().endswith("digitalsourcetype") and isinstance(value, str) and value:
                    yield value
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def _term(value: Any) -> str:
    """The vocabulary term of a source type URI, normalised (kyc.domain.provenance.source_type_term)."""
    return _clip(source_type_term(value)) or "?"


def _generator(manifest: Mapping[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], Mapping):
        name, version = info[0].get("name"), info[0].get("version")
        return _clip(" ".join(str(p) for p in (name, version) if p))
    return _clip(manifest.get("claim_generator"))


def _signer(manifest: Mapping[str, Any]) -> dict[str, str | None] | None:
    info = manifest.get("signature_info")
    if not isinstance(info, Mapping):
        return None
    return {
        "issuer": _clip(info.get("issuer")),
        "common_name": _clip(info.get("common_name")),
        "alg": _clip(info.get("alg")),
        "time": _clip(info.get("time")),
        "serial": _clip(info.get("cert_serial_number")),
    }


def _clip(value: Any) -> str | None:
    return clip_text(value, MAX_TEXT)


def _text(exc: BaseException) -> str:
    return _clip(str(exc)) or type(exc).__name__


def summary_from_dict(data: Mapping[str, Any]) -> C2paSummary:
    return C2paSummary(**{k: data[k] for k in C2paSummary.__dataclass_fields__ if k in data})


def unreadable(detail: str) -> C2paSummary:
    """The reader child was stopped or crashed on this file (kyc.media.isolated)."""
    return C2paSummary("unreadable", detail=_clip(detail))


def preload() -> None:
    """Load the native reader in the parent, so each sandbox child inherits it (about 70 ms saved
    per upload). An ImportError here is a deployment fault (the provenance layer is missing): it
    fails the function's cold start loudly rather than screening without the check."""
    import c2pa  # noqa: F401
