#!/usr/bin/env python3
"""lint_db.py IN OUT: a compile database with one command per source file, so clang-tidy analyses
each file once: the plain build's command where there is one, else (fuzz targets) the first."""
import json
import os
import sys

source, target = sys.argv[1], sys.argv[2]
chosen = {}
for entry in json.load(open(source)):
    path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
    instrumented = "-fsanitize=fuzzer" in entry.get("command", " ".join(entry.get("arguments", [])))
    if path not in chosen or (chosen[path][0] and not instrumented):
        chosen[path] = (instrumented, entry)
kept = [entry for _, entry in chosen.values()]
os.makedirs(os.path.dirname(target), exist_ok=True)
json.dump(kept, open(target, "w"), indent=1)
print(f"{target}: {len(kept)} files")
