#!/usr/bin/python3
# subset.py EXPECTED.json ACTUAL.json - checks that every key the hand-made
# EXPECTED file names has the same value in ACTUAL (objects: a subset of the
# keys; arrays: same length, element by element; numbers compared as
# numbers). Prints each difference with its JSON path; exit 1 if any.
import json
import sys


def walk(exp, act, path, errs):
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            errs.append(f"{path}: expected an object, got {act!r}")
            return
        for k, v in exp.items():
            if k not in act:
                errs.append(f"{path}.{k}: missing")
            else:
                walk(v, act[k], f"{path}.{k}", errs)
    elif isinstance(exp, list):
        if not isinstance(act, list) or len(act) != len(exp):
            errs.append(f"{path}: expected {len(exp)} elements, got {act!r}")
            return
        for i, (e, a) in enumerate(zip(exp, act)):
            walk(e, a, f"{path}[{i}]", errs)
    elif isinstance(exp, bool) or exp is None or isinstance(exp, str):
        if exp != act or type(exp) != type(act):
            errs.append(f"{path}: expected {exp!r}, got {act!r}")
    else:
        if isinstance(act, bool) or not isinstance(act, (int, float)) or abs(exp - act) > 1e-9:
            errs.append(f"{path}: expected {exp!r}, got {act!r}")


exp = json.load(open(sys.argv[1]))
act = json.load(open(sys.argv[2]))
errs = []
walk(exp, act, "$", errs)
for e in errs:
    print(e)
sys.exit(1 if errs else 0)
