"""Builds a wheel that carries libevsendfile.so.2 next to the package.

The library is built from this repository with CMake (the sources two
directories up), or taken ready-made from $EVSENDFILE_BUILD_DIR (a CMake
build directory holding libevsendfile.so.2).  The wheel is tagged
py3-none-<platform>: it holds a native library, though no Python extension
(cffi runs in ABI mode).  Everything else is in pyproject.toml.
"""

import os
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # building without the wheel package: no bdist_wheel
    bdist_wheel = None

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.normpath(os.path.join(HERE, "..", ".."))
SONAME = "libevsendfile.so.2"


def _built_library(build_temp: str) -> str:
    given = os.environ.get("EVSENDFILE_BUILD_DIR")
    if given:
        path = os.path.join(given, SONAME)
        if not os.path.exists(path):
            raise SystemExit(f"EVSENDFILE_BUILD_DIR={given}: no {SONAME} there")
        return path
    if not os.path.exists(os.path.join(SOURCE, "CMakeLists.txt")):
        raise SystemExit(f"the C sources are not at {SOURCE}: set EVSENDFILE_BUILD_DIR to a build with {SONAME}")
    out = os.path.join(os.path.abspath(build_temp), "libevsendfile")
    subprocess.check_call(
        ["cmake", "-S", SOURCE, "-B", out, "-DCMAKE_BUILD_TYPE=Release",
         "-DEVSENDFILE_BUILD_STATIC=OFF", "-DEVSENDFILE_BUILD_TESTS=OFF",
         "-DEVSENDFILE_BUILD_EXAMPLES=OFF", "-DEVSENDFILE_BUILD_BENCH=OFF"]
    )
    subprocess.check_call(["cmake", "--build", out, "--target", "evsendfile", "-j", "2"])
    return os.path.join(out, SONAME)


class build_py_with_library(build_py):
    """The pure-Python files, plus the C library copied into the package."""

    def run(self) -> None:
        super().run()
        library = _built_library(self.get_finalized_command("build").build_temp)
        target = os.path.join(self.build_lib, "evsendfile", SONAME)
        shutil.copyfile(os.path.realpath(library), target)
        os.chmod(target, 0o755)


class NativeDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True  # a native library inside: platlib, a platform tag


cmdclass = {"build_py": build_py_with_library}

if bdist_wheel is not None:

    class bdist_wheel_platform(bdist_wheel):
        def get_tag(self) -> tuple:
            _, _, platform = super().get_tag()
            return "py3", "none", platform  # any Python 3: cffi's ABI mode compiles nothing

    cmdclass["bdist_wheel"] = bdist_wheel_platform

setup(cmdclass=cmdclass, distclass=NativeDistribution)
