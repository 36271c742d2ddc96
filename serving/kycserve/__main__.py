"""``python -m kycserve --model reference|onnx [--onnx-config PATH] [--port 8080] [--host 127.0.0.1]``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

# Bound OpenCV's decoder before cv2 is imported anywhere: frames are at most 1024 px.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(4096 * 4096))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kycserve", description=__doc__)
    parser.add_argument("--model", choices=("reference", "onnx"), default="reference")
    parser.add_argument("--onnx-config", default=os.environ.get("KYCSERVE_ONNX_CONFIG"))
    parser.add_argument(
        "--no-face",
        choices=("null", "centre"),
        default="null",
        help="reference model: p_fake for frames without a face (default null)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 inside a SageMaker container")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from kycserve.models import ModelLoadError, load_model
    from kycserve.server import start_server, stop

    server, thread, url = start_server(None, args.host, args.port)  # /ping says 503 while loading
    try:
        server.model = load_model(args.model, onnx_config=args.onnx_config, no_face=args.no_face)
    except ModelLoadError as exc:
        logging.getLogger("kycserve").error("model failed to load: %s", exc)
        stop(server, thread)
        return 2
    info = server.model.info
    logging.getLogger("kycserve").info("serving %s %s on %s", info.name, info.version, url)
    signal.signal(signal.SIGTERM, lambda *_: stop(server, thread))
    try:
        thread.join()
    except KeyboardInterrupt:
        stop(server, thread)
    return 0


if __name__ == "__main__":
    sys.exit(main())
