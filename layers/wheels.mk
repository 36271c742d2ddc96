# Shared by the layer Makefiles: pip options that fetch Lambda-compatible wheels (CPython 3.13,
# manylinux for the Lambda architecture in KYC_ARCH) whatever Python and machine run the build.
KYC_ARCH ?= arm64
PYTHON ?= python3

ifeq ($(KYC_ARCH),arm64)
PIP_PLATFORMS := --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64
else ifeq ($(KYC_ARCH),x86_64)
PIP_PLATFORMS := --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64
else
$(error KYC_ARCH must be arm64 or x86_64, got '$(KYC_ARCH)')
endif

PIP_INSTALL := $(PYTHON) -m pip install --disable-pip-version-check --no-input --no-compile \
	--no-deps --only-binary=:all: --implementation cp --python-version 3.13 $(PIP_PLATFORMS)
