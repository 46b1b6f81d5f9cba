"""Build of the compiled HTML scanner; everything else about the package is in pyproject.toml.

The extension is optional at build time: without a C compiler the package still installs
and runs with the Python scanner (htmlscan.py logs that it does).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pixeltrail.tracking._htmlscan",
            ["src/pixeltrail/tracking/_htmlscan.c"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)
