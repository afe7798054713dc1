#!/usr/bin/env python3
"""Prints which top-level module of the library (src/<module>.rs or src/<module>/)
imports which (`crate::<module>` outside test modules and comments), and exits 1 when
two of them reach each other: the layering of the README's "Design" section, checked.
Usage: scripts/module_deps.py [SRC_DIR]"""
import glob
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
deps = {}
for path in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True):
    rel = os.path.relpath(path, src)
    if rel.startswith("bin" + os.sep):
        continue  # the binary is another crate
    top = rel.split(os.sep)[0].removesuffix(".rs")
    if top == "lib":
        continue
    text = open(path, encoding="utf-8").read()
    cut = text.find("#[cfg(test)]")
    if cut >= 0:
        text = text[:cut]
    text = re.sub(r"//[^\n]*", "", text)
    found = {"protocol" if m == "http" else m for m in re.findall(r"crate::(\w+)", text)}
    deps.setdefault(top, set()).update(found - {top})
for module in deps:
    deps[module] &= set(deps)


def reach(start):
    seen, todo = set(), [start]
    while todo:
        for next_ in deps.get(todo.pop(), ()):
            if next_ not in seen:
                seen.add(next_)
                todo.append(next_)
    return seen


for module in sorted(deps):
    print(f"{module:12} -> {' '.join(sorted(deps[module]))}")
circles = sorted({tuple(sorted((a, b))) for a in deps for b in deps[a] if a in reach(b)})
for a, b in circles:
    print(f"circle: {a} <-> {b}")
sys.exit(1 if circles else 0)
