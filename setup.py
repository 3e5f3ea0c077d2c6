"""Builds the C filter kernel (firmware_bridge/firmware/dsp/ng_sos.c, portable C99; not linked into
the arm firmware) as edge/_ng_sos, loaded with ctypes, together with edge/_ng_chain.c, the
runtime's one-call path for a chunk through the chain.

optional=True: without a C compiler the install still succeeds and edge.chain.dsp falls back to
its bit-identical numpy kernel (slower), saying so in a log warning and `neurogrip doctor`.
"""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "edge._ng_sos",
            sources=["firmware_bridge/firmware/dsp/ng_sos.c", "edge/_ng_chain.c", "edge/_ng_sos_module.c"],
            include_dirs=["firmware_bridge/firmware/dsp"],
            # -fno-trapping-math: nothing here reads floating-point exception flags; it lets GCC
            # vectorise the window loop of _ng_chain.c (values are IEEE-identical either way).
            extra_compile_args=["-std=c99", "-O3", "-fno-trapping-math"],
            libraries=[] if sys.platform == "win32" else ["m"],  # MSVC has no separate libm
            optional=True,
        )
    ]
)
