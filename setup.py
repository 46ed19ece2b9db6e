"""The build's one addition to pyproject.toml: a built package carries the OpenAPI document.

openapi/openapi.yaml stays the one source, at the top of the repository; building the package
(a wheel, `pip install .`, the Docker image) copies it to gateway/openapi.yaml, where
gateway/api/docs.py serves it from. An editable install or a checkout reads the source's.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DOCUMENT = Path("openapi") / "openapi.yaml"


class BuildWithDocument(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads openapi/openapi.yaml in place
        if not DOCUMENT.is_file():
            raise FileNotFoundError(f"{DOCUMENT} is missing: the package serves it at /openapi.yaml")
        self.copy_file(str(DOCUMENT), str(Path(self.build_lib) / "gateway" / DOCUMENT.name))


setup(cmdclass={"build_py": BuildWithDocument})
