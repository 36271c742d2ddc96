"""Bootstrap of the retraining pipeline's jobs: unpack this release's source, run one step.

SageMaker copies s3://<LearningBucket>/code/ (``make retrain-code`` builds it: this file and
kyc-retrain-src.tar.gz) into the job, then runs ``python3 run_step.py <Process|Train|Evaluate> ...``.
The steps are kyclocal.pipeline_container's: the same functions ``kycscreen retrain`` runs locally.
"""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARCHIVE = "kyc-retrain-src.tar.gz"


def main() -> int:
    source = Path(os.environ.get("KYC_SOURCE_DIR", "/tmp/kyc-source"))  # noqa: S108 - the job's own disk
    if not (source / "template.yaml").is_file():
        with tarfile.open(HERE / ARCHIVE) as tar:
            tar.extractall(source, filter="data")  # refuses links and paths that leave ``source``
    paths = [str(source / folder) for folder in ("layers/core", "serving", "local")]
    sys.path[:0] = paths
    # the local stack's model server and handlers run in child processes: they import the same source
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    from kyclocal.pipeline_container import main as run_step

    return run_step(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
