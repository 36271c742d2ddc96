"""Unzipped size of every built function with its layers, against Lambda's 250 MB limit.

Usage: python scripts/lambda_sizes.py [.aws-sam/build] -> one line per function, exit 1 over the limit.
Reads the built template (sam build's copy) for each function's CodeUri and Layers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

LIMIT = 250 * 1024 * 1024  # function + layers, unzipped (AWS Lambda quotas)


class _Loader(yaml.SafeLoader):
    """CloudFormation's short tags (!Ref, !GetAtt, ...) read as plain values."""


_Loader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None,
)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(build: Path) -> int:
    template: dict[str, Any] = yaml.load((build / "template.yaml").read_text(), Loader=_Loader)  # noqa: S506  # nosec B506: a SafeLoader subclass
    resources = template["Resources"]
    worst = 0
    for name, resource in sorted(resources.items()):
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        code = build / str(props.get("CodeUri") or name)
        raw_layers = props.get("Layers") or []
        layers = [str(layer["Ref"] if isinstance(layer, dict) else layer) for layer in raw_layers]
        total = _size(code) + sum(_size(build / layer) for layer in layers if (build / layer).is_dir())
        worst = max(worst, total)
        flag = "OVER" if total > LIMIT else "ok"
        print(f"{name}: {total / 1e6:.1f} MB unzipped with {', '.join(layers) or 'no layers'} [{flag}]")
    print(f"largest: {worst / 1e6:.1f} MB of {LIMIT / 1e6:.1f} MB (250 MiB)")
    return 1 if worst > LIMIT else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build")))
