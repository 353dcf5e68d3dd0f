"""The attnserve Python package: pip install ./client/python

There is deliberately no pyproject.toml. With one, pip builds in an isolated
environment and first downloads setuptools into it, which fails offline.
With setup.py alone, Debian 12's pip (23.0) builds with the setuptools and
wheel already installed (python3-setuptools, python3-wheel, and the
setuptools that python3 -m venv puts in every venv), so the install needs no
network. It works online with any pip as well; and on a newer pip that
insists on isolation, add --no-build-isolation.

The dependencies are Debian's python3-grpcio, python3-protobuf and
python3-numpy when installed into a venv made with --system-site-packages.
"""

from setuptools import setup

setup(
    name="attnserve",
    version="0.1.0",
    description="Client for the attnserve gRPC server: BERT encodings and "
                "a look inside multi-head attention, as numpy arrays",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=["attnserve", "attnserve.proto"],
    package_data={"attnserve": ["py.typed"]},
    # Tested with Debian 12's grpcio 1.51.1, protobuf 4.21.12 (the Python
    # release of protobuf 3.21, which generated attnserve/proto) and numpy
    # 1.24.2. The stubs need protobuf's builder API (3.20 and later).
    install_requires=["grpcio>=1.51", "protobuf>=3.20", "numpy>=1.21"],
)
