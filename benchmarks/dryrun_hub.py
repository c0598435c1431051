"""`snakemake -n` time and job count of the full hub grid (config/hub.yaml).
Run: .venv/bin/python benchmarks/dryrun_hub.py
"""

import re
import subprocess
import sys
import time
from pathlib import Path

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

start = time.perf_counter()
proc = subprocess.run([SNAKEMAKE, "-n", "--quiet", "rules", "--cores", "all", "--configfile",
                       "config/hub.yaml"], capture_output=True, text=True, check=True)
elapsed = time.perf_counter() - start
total = re.search(r"^total\s+(\d+)", proc.stdout, re.M)
print(f"hub grid dry run: {elapsed:.1f} s, {total.group(1) if total else '?'} jobs")
