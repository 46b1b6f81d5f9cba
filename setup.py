"""Build of the compiled parts (the HTML scanner, the tracking routes' token check); everything
else about the package is in pyproject.toml.

Both extensions are optional at build time: without a C compiler (or, for the token check,
OpenSSL's headers: Debian's libssl-dev) the package still installs and runs with the Python
reference of each (htmlscan.py and hitline.py log that they do).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pixeltrail.tracking._htmlscan",
            ["src/pixeltrail/tracking/_htmlscan.c"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra"],
            optional=True,
        ),
        Extension(
            "pixeltrail.tracking._hitline",
            ["src/pixeltrail/tracking/_hitline.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra", "-D_GNU_SOURCE"],
            optional=True,
        ),
    ]
)
