"""SageMaker endpoints on this machine: the local model server serves what moto's SageMaker says.

In AWS an endpoint serves the model its endpoint configuration names, from the model's
``ModelDataUrl``. Locally the model server does what SageMaker does (DescribeEndpoint ->
DescribeEndpointConfig -> DescribeModel, the model data object as ``kyc.domain.model_witness`` reads
it), downloads the model data from S3 once per (object, model) and serves it. Whether that is the
calibrated model is not decided here: the deployment witness (``kyc.aws.sagemaker_model_witness``)
answers that, locally as in AWS. So a promotion changes
what SageMaker says is served, and the scores follow it; nothing is switched behind SageMaker's back.
The template's own ``EndpointName`` (the customer's champion endpoint, outside the stack) is served by
the server's start-up model until an endpoint of that name exists.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kyc.domain.model_witness import WitnessUnreadable, model_data_object

CONFIG_NAME = "model.json"
MODEL_FILE = "model.onnx"  # a candidate's model data: one uncompressed object the witness can hash


def _local_image_digest() -> str:
    """The local stand-in for the model server image's manifest digest (there is no image here): the
    SHA-256 over the kycserve package's sources, what a built image of serving/Dockerfile would hold,
    so it changes when the server does."""
    import kycserve

    root = Path(kycserve.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        name = str(path.relative_to(root)).encode()
        digest.update(name + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


# issue 24: the local stack deploys the model server by digest, as docs/model-contract.md asks of a
# customer (a tag is a name, not a binding), so the witness's image path runs locally too
LOCAL_IMAGE_DIGEST = _local_image_digest()
LOCAL_IMAGE = f"kycserve@{LOCAL_IMAGE_DIGEST}"


def unpack_model(archive: bytes, into: Path) -> Path:
    """Extract a model archive (refusing links and paths outside ``into``); returns its config."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(into, filter="data")
    config = into / CONFIG_NAME
    if not config.is_file():
        raise LookupError(f"the model archive has no {CONFIG_NAME}")
    return config


class LocalEndpoints:
    """The model server's ``endpoints`` resolver.

    SageMaker's answer is kept for ``ttl_s`` (1 s): asking moto on every invocation cost 12.6 ms
    (an endpoint that does not exist) to 30 ms (the three Describe calls) per scored batch; an
    endpoint change is served within a second, as an UpdateEndpoint in AWS takes minutes."""

    def __init__(self, sagemaker: Any, s3: Any, default_endpoint: str, ttl_s: float = 1.0) -> None:
        self._sm, self._s3 = sagemaker, s3
        self.default_endpoint = default_endpoint
        self.ttl_s = ttl_s
        self._models: dict[tuple[str, str], Any] = {}
        self._answers: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._root = Path(tempfile.mkdtemp(prefix="kyc-endpoints-"))

    def __call__(self, endpoint: str) -> Any:
        now = time.monotonic()
        cached = self._answers.get(endpoint)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        model = self._resolve(endpoint)  # a LookupError is never cached: the next call asks again
        self._answers[endpoint] = (now, model)
        return model

    def _resolve(self, endpoint: str) -> Any:
        if endpoint == self.default_endpoint:
            # the server's own model: the champion the stack deployed (LocalStack.serve_model keeps
            # the server and SageMaker's record of the default endpoint in step)
            return None
        try:
            config = self._sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
            variants = self._sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
            model = self._sm.describe_model(ModelName=variants[0]["ModelName"])
            bucket, key = model_data_object(model)
        except (ClientError, BotoCoreError, WitnessUnreadable, LookupError) as exc:
            raise LookupError(f"{endpoint}: {exc}") from exc
        url = f"s3://{bucket}/{key}"
        with self._lock:
            if (url, model["ModelName"]) not in self._models:
                self._models[(url, model["ModelName"])] = self._load(url, len(self._models))
            return self._models[(url, model["ModelName"])]

    def _load(self, url: str, n: int) -> Any:
        from kycserve.models.onnx_model import OnnxModel, load_onnx_config

        if not url.startswith("s3://"):
            raise LookupError(f"model data {url!r} is not in S3")
        bucket, _, key = url.removeprefix("s3://").partition("/")
        if key.endswith("/" + MODEL_FILE):  # an uncompressed model file, its serving config beside it
            folder = self._root / f"model-{n}"
            folder.mkdir(parents=True)
            config_key = key.rsplit("/", 1)[0] + "/" + CONFIG_NAME
            for name, k in ((MODEL_FILE, key), (CONFIG_NAME, config_key)):
                (folder / name).write_bytes(self._s3.get_object(Bucket=bucket, Key=k)["Body"].read())
            return OnnxModel(load_onnx_config(folder / CONFIG_NAME))
        archive = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return OnnxModel(load_onnx_config(unpack_model(archive, self._root / f"model-{n}")))
