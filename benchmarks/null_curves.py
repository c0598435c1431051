"""Every claim statistic on curves whose answer is known (tests/known_answers.py): the springs
(a kink at the base, a per-context spring, a breakpoint that follows the prior) and the nulls
(no pull toward the pretrained state). Prints one line per case x claim: value [95 % CI] and
verdict, as ``python -m springback.claims`` computes them (docs/statistics.md quotes it).

    .venv/bin/python benchmarks/null_curves.py [--boot 500]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import known_answers as ka  # noqa: E402
from springback.claims import claims_table  # noqa: E402

CLAIMS = ["C2", "C8", "E1", "C3", "E2", "E3"]


def cases() -> dict[str, list[pd.DataFrame]]:
    """Each case's per-prompt tables (forward and reversed; three worlds for the prior cases)."""
    def both(curve, **kw):
        return [ka.table(curve, **kw), ka.table(curve, direction="reversed", **kw)]

    def worlds(make, noise=0.05):
        return [ka.table(ka.context_free(make(b)), world=w, seed=i, noise=noise)
                for i, (w, b) in enumerate([("main", 0.0), ("prior1", 1.0), ("prior2", 2.0)])]

    recovered = ka.context_free(ka.kink_at_base(),
                                gap_curve=lambda n, x: np.where(x > 150, 4.0, 0.5))
    return {
        "spring: kink at the base": both(ka.context_free(ka.kink_at_base())),
        "spring: context recovered at the return": [ka.table(recovered)],
        "spring: per-context spring": [ka.table(ka.per_context_spring())],
        "spring: breakpoint follows the prior": worlds(ka.kink_at_base),
        "null: straight line": both(ka.context_free(ka.straight())),
        "null: smooth log-shaped decline": both(ka.context_free(ka.log_decline())),
        "null: symmetric S through the base": both(ka.context_free(ka.symmetric_s())),
        "null: saturation at fixed log-odds": both(ka.context_free(ka.saturation())),
        "null: single timescale, noise sd 1": both(ka.context_free(ka.single_timescale()),
                                                   noise=1.0),
        "null: zero recovery": [ka.table(ka.context_free(ka.kink_at_base()))],
        "null: context-blind": [ka.table(ka.context_free(ka.kink_at_base(), gap=0, erased=0))],
        "null: saturation in shifted worlds": worlds(ka.saturation),
        "null: one timescale in shifted worlds": worlds(ka.single_timescale),
        "known limit: log decline in shifted worlds": worlds(ka.log_decline),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boot", type=int, default=500)
    args = parser.parse_args()
    print(f"{'case':44} {'claim':5} {'value [95 % CI]':28} verdict")
    for name, frames in cases().items():
        table = claims_table(pd.concat(frames, ignore_index=True), n_boot=args.boot)
        for claim in CLAIMS:
            for _, r in table[table["claim"] == claim].iterrows():
                ci = f"{r['value']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
                print(f"{name:44} {claim:5} {ci:28} {r['verdict']}")


if __name__ == "__main__":
    main()
