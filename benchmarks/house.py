"""The shape of the house: springback's modules and import arrows (module-level and inside
functions), import cycles, helper functions in the rules, logic in rule bodies, and the longest
chain from the Snakefile to a library module (Snakefile -> rule file -> script -> imports).

    .venv/bin/python benchmarks/house.py [ROOT]
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root / "src").with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def imports(tree: ast.AST, package: str) -> list[tuple[str, bool]]:
    """(imported springback module, inside a function?) for every import of a parsed file."""
    out = []

    def visit(node, inside):
        for child in ast.iter_child_nodes(node):
            nested = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module.startswith("springback"):
                    for alias in child.names:
                        full = f"{child.module}.{alias.name}"
                        out.append((full if full in package else child.module, nested))
            elif isinstance(child, ast.Import):
                out.extend((a.name, nested) for a in child.names if a.name.startswith("springback"))
            visit(child, nested)
    visit(tree, False)
    return out


def graph(root: Path) -> tuple[dict[str, set[str]], int, int]:
    """Import arrows between springback modules, and the module-level / in-function counts."""
    files = {module_name(root, p): p for p in (root / "src" / "springback").rglob("*.py")}
    edges, top, inner = {m: set() for m in files}, 0, 0
    for mod, path in files.items():
        seen = set()
        for target, nested in imports(ast.parse(path.read_text()), set(files)):
            if target in files and target != mod and (target, nested) not in seen:
                seen.add((target, nested))
                edges[mod].add(target)
                inner, top = inner + nested, top + (not nested)
    return edges, top, inner


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by a depth-first search (one per starting back edge)."""
    found, state, stack = [], {}, []

    def dfs(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2
    for node in sorted(edges):
        if node not in state:
            dfs(node)
    return found


def longest_from(node: str, edges: dict[str, set[str]], memo: dict) -> list[str]:
    if node not in memo:
        memo[node] = [node]  # guards a cycle
        best = max((longest_from(n, edges, memo) for n in edges.get(node, ())), key=len,
                   default=[])
        memo[node] = [node] + best
    return memo[node]


def script_imports(root: Path, script: Path, modules: set[str]) -> set[str]:
    return {t for t, _ in imports(ast.parse(script.read_text()), modules) if t in modules}


def rule_scripts(root: Path) -> dict[str, list[Path]]:
    """Rule file -> the scripts its rules run."""
    out = {}
    for smk in sorted((root / "rules").glob("*.smk")):
        names = re.findall(r'script:\s*\n\s*"\.\./workflow/scripts/([\w_]+)\.py"', smk.read_text())
        out[smk.name] = [root / "workflow" / "scripts" / f"{n}.py" for n in names]
    return out


def main(argv: list[str]) -> None:
    root = Path(argv[0] if argv else Path(__file__).resolve().parents[1])
    edges, top, inner = graph(root)
    arrows = sum(len(v) for v in edges.values())
    print(f"modules: {len(edges)}; import arrows: {arrows} "
          f"(imports at module level {top}, inside functions {inner})")
    found = cycles(edges)
    print(f"import cycles: {len(found)}" + "".join(f"\n  {' -> '.join(c)}" for c in found))
    helpers = {smk.name: len(re.findall(r"^def ", smk.read_text(), re.M))
               for smk in sorted((root / "rules").glob("*.smk"))}
    lambdas = sum(smk.read_text().count("lambda") for smk in (root / "rules").glob("*.smk"))
    print(f"helper functions in rules/: {sum(helpers.values())} "
          f"({', '.join(f'{k} {v}' for k, v in helpers.items() if v)}); lambdas: {lambdas}")
    memo, best = {}, []
    for smk, scripts in rule_scripts(root).items():
        for script in scripts:
            for mod in script_imports(root, script, set(edges)):
                chain = ["Snakefile", f"rules/{smk}", f"workflow/scripts/{script.name}",
                         *longest_from(mod, edges, memo)]
                best = max(best, chain, key=len)
    print(f"longest chain ({len(best)} steps): {' -> '.join(best)}")


if __name__ == "__main__":
    main(sys.argv[1:])
