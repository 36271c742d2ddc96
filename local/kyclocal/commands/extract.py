"""`kycscreen extract`: write the frames the model would see, and their manifest, for a person to look at."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO


def register(sub: argparse._SubParsersAction) -> None:
    extract = sub.add_parser("extract", help="write the frames the model would see, and their manifest")
    extract.add_argument("file", type=Path)
    extract.add_argument("--out", type=Path, required=True)
    extract.add_argument("--frames", type=int, default=32)
    extract.add_argument(
        "--seed", help="sampling seed (hex) recorded in a manifest: reproduces that sample; default random"
    )
    extract.set_defaults(command=cmd_extract)


def cmd_extract(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from kyc import settings
    from kyc.media.errors import MediaRefusedError
    from kyc.media.framestore import batch_objects, frame_manifest
    from kyc.media.sampling import SamplingParams, sample_frames
    from kyc.media.validation import validate_upload

    out = out or sys.stdout
    limits = settings.media_limits({})
    report = validate_upload(args.file, limits)
    if not report.accepted:
        print(f"refused: {report.reason} - {report.message}", file=out)
        return 1
    params = SamplingParams(**(settings.sampling_overrides({}) | {"frame_count": args.frames}))
    try:
        sample = sample_frames(args.file, params, limits, seed=args.seed)
    except MediaRefusedError as exc:
        print(f"refused: {exc.reason} - {exc.message}", file=out)
        return 1
    manifest = frame_manifest(sample, source_sha256=report.sha256, prefix="")
    args.out.mkdir(parents=True, exist_ok=True)
    for entry, frame in zip(manifest["frames"], sample.frames, strict=True):
        (args.out / entry["file"]).write_bytes(frame.data)  # to look at
    for name, body in batch_objects(sample, manifest):  # as the pipeline stores them (framestore)
        (args.out / name).write_bytes(body)
    from kyc.aws.s3_object_store import canonical_json

    (args.out / "manifest.json").write_bytes(canonical_json(manifest))
    batches = len(manifest["batches"])
    print(f"{len(sample.frames)} frames, {batches} batch objects, manifest.json: {args.out}", file=out)
    return 0
