#!/usr/bin/python3
# validate.py SCHEMA JSON - validates JSON against one of schema/ms-stats*.schema.json
# (their cross-references resolved locally); prints "valid" or fails.
import json, sys, jsonschema, pathlib
schema_dir = pathlib.Path(sys.argv[1]).resolve().parent
schema = json.load(open(sys.argv[1]))
store = {}
for p in schema_dir.glob("ms-stats*.schema.json"):
    s = json.load(open(p)); store[s["$id"]] = s; store[p.name] = s
resolver = jsonschema.RefResolver(base_uri=schema["$id"], referrer=schema, store=store)
jsonschema.validate(json.load(open(sys.argv[2])), schema, resolver=resolver)
print("valid")
