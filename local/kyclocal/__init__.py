"""The embedded local stack and the ``kycscreen`` command: the real pipeline without an AWS account."""
