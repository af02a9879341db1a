"""Build of cffnn's compiled modules: Cython, OpenMP where the compiler has it.

Without OpenMP support (for example Apple clang without libomp) the package builds
serially and says so; CFFNN_FAIL_NO_OPENMP=1 turns that into a build error.
"""
import glob
import os
import sys
import tempfile
import textwrap

import numpy

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_TEST_PROGRAM = textwrap.dedent("""
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
""")


def openmp_flags(compiler):
    """(compile_args, link_args) that enable OpenMP for this compiler, or None."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    for compile_args, link_args in candidates:
        if compiles_and_links(compiler, OPENMP_TEST_PROGRAM, compile_args, link_args):
            return compile_args, link_args
    return None


def compiles_and_links(compiler, source, compile_args, link_args):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "test_openmp.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=compile_args)
            compiler.link_executable(objects, "test_openmp", output_dir=tmp,
                                     extra_postargs=link_args)
        except Exception:
            return False
    return True


class BuildExtWithOpenMP(build_ext):
    def build_extensions(self):
        flags = openmp_flags(self.compiler)
        if flags is None:
            message = ("cffnn: this compiler does not support OpenMP; building the compiled "
                       "kernels serially (one thread). Install an OpenMP runtime (libomp) "
                       "for multithreaded kernels.")
            if os.environ.get("CFFNN_FAIL_NO_OPENMP", "0") not in ("", "0"):
                raise RuntimeError(message + " CFFNN_FAIL_NO_OPENMP is set: stopping.")
            print("WARNING: " + message, file=sys.stderr)
            compile_args, link_args = [], []
        else:
            compile_args, link_args = flags
        if self.compiler.compiler_type != "msvc":
            # the kernels never read errno nor trap on floating-point exceptions; without
            # these, loops with sqrt or with comparisons (tanh's clamp) stay scalar
            compile_args = compile_args + ["-fno-math-errno", "-fno-trapping-math"]
        if sys.platform.startswith("linux"):
            # include/cffnn/helper.h starts a thread of its own (pthread_create)
            compile_args = compile_args + ["-pthread"]
            link_args = link_args + ["-pthread"]
        for ext in self.extensions:
            ext.extra_compile_args = list(ext.extra_compile_args) + compile_args
            ext.extra_link_args = list(ext.extra_link_args) + link_args
        super().build_extensions()


# Every module includes some of these headers; listing them makes an edited header
# rebuild the modules (setuptools does not scan #include lines).
HEADERS = sorted(glob.glob(os.path.join("include", "cffnn", "*.h")))


def extension(name):
    return Extension(f"cffnn.{name}", [f"cffnn/{name}.pyx"],
                     include_dirs=["include", numpy.get_include()], depends=HEADERS,
                     define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")])


setup(
    ext_modules=cythonize(
        [extension("_threads"), extension("_kernels"), extension("_optimizers")],
        compiler_directives={"language_level": 3, "boundscheck": False,
                             "wraparound": False, "cdivision": True},
    ),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)
