"""The wheels a lent GPU machine needs to run the workflow (benchmarks/gpu_check.sh): the
workflow's packages that its image lacks, with every dependency the image lacks too, pinned to
this venv's versions and fetched for its Python (3.12, x86-64 manylinux).

Run here, where pip reaches the registry (the GPU machine reaches nothing):
    .venv/bin/python benchmarks/gpu_wheels.py            # print the pinned list
    .venv/bin/python benchmarks/gpu_wheels.py --download .whl
then carry .whl (ignored by git: `echo /.whl/ >> .git/info/exclude`) with the device call; the
check installs it into /tmp/site. The dependency walk reads this venv's installed metadata.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement

ROOTS = ("snakemake", "trl", "datasets", "plotnine", "jsonschema", "constriction", "powerlaw",
         "zstandard")  # pyproject dependencies missing from the GPU image
# On the GPU image ('cuda', /work/.library/device/KINDS.md, read 2026-11-17): the packages of the
# walk it already holds. pulp is left out: 37 MB for Snakemake's ILP scheduler (the check runs
# `--scheduler greedy`).
IMAGE = set("""accelerate annotated-doc anyio attrs certifi charset-normalizer click contourpy
cycler filelock fonttools formulaic fsspec h11 hf-xet huggingface-hub idna interface-meta jinja2
kiwisolver markdown-it-py markupsafe matplotlib mdurl mpmath narwhals networkx numpy packaging
pandas patsy peft pillow psutil pyarrow pygments pyparsing python-dateutil pyyaml regex requests
rich safetensors scipy setuptools shellingham statsmodels sympy tabulate tokenizers torch tqdm
transformers typer typing-extensions urllib3 wrapt xxhash pulp""".split())
TARGET = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
          "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
          "implementation_name": "cpython", "platform_python_implementation": "CPython",
          "extra": ""}
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (28, 27, 17)] + ["manylinux2014_x86_64",
                                                                  "manylinux1_x86_64"]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned() -> list[str]:
    """name==version of every package to carry (the ROOTS' closure outside IMAGE)."""
    seen, todo = {}, list(ROOTS)
    while todo:
        name = norm(todo.pop())
        if name in seen or name in IMAGE:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist.version
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate(TARGET):
                todo.append(req.name)
    return [f"{n}=={v}" for n, v in sorted(seen.items())]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--download", metavar="DIR", help="fetch the wheels into DIR")
    args = parser.parse_args()
    pins = pinned()
    print("\n".join(pins))
    if args.download:
        platforms = [a for p in PLATFORMS for a in ("--platform", p)]
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--only-binary=:all:", "--python-version", "3.12", "--implementation",
                        "cp", *platforms, "-d", args.download, *pins], check=True)


if __name__ == "__main__":
    main()
