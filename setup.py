"""Install unreidusl; compiles the Cython extensions in csrc/ at install time."""
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

HERE = Path(__file__).parent


def read_requirements():
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def cython_extension(name: str, source: str) -> Extension:
    return Extension(
        name,
        [source],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )


extensions = [
    cython_extension("unreidusl.evaluation.rank_cy", "csrc/rank_cy.pyx"),
    cython_extension("unreidusl.cluster.icdbscan_cy", "csrc/icdbscan_cy.pyx"),
    cython_extension("unreidusl.cluster.jaccard_cy", "csrc/jaccard_cy.pyx"),
]

setup(
    name="unreidusl",
    version="0.1.0",
    description="Unsupervised person and vehicle re-identification toolkit",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["unreidusl", "unreidusl.*"]),
    python_requires=">=3.9",
    install_requires=read_requirements(),
    extras_require={
        # the test suite also checks the ONNX export
        "test": ["pytest>=7", "onnx>=1.14", "onnxruntime>=1.16"],
        # tools/export.py --format onnx (and its check)
        "export": ["onnx>=1.14", "onnxruntime>=1.16"],
        # faiss on CUDA; uninstall faiss-cpu first (both provide the module ``faiss``)
        "gpu": ["faiss-gpu>=1.7.4"],
    },
    entry_points={
        "console_scripts": [
            "unreidusl-train = unreidusl.apps.train:main",
            "unreidusl-search = unreidusl.apps.search:main",
            "unreidusl-discover = unreidusl.apps.discover:main",
            "unreidusl-export = unreidusl.apps.export:main",
            "unreidusl-make-synthetic = unreidusl.apps.make_synthetic:main",
        ],
    },
    ext_modules=cythonize(extensions, language_level=3),
    zip_safe=False,
)
