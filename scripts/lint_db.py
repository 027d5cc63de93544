#!/usr/bin/env python3
"""lint_db.py IN OUT: a compile database with one command per source file (the first), so
clang-tidy analyses each file once; commands of the fuzzing build (instrumented copies) are dropped."""
import json
import os
import sys

source, target = sys.argv[1], sys.argv[2]
seen, kept = set(), []
for entry in json.load(open(source)):
    path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
    if path in seen or "-fsanitize=fuzzer" in entry.get("command", " ".join(entry.get("arguments", []))):
        continue
    seen.add(path)
    kept.append(entry)
os.makedirs(os.path.dirname(target), exist_ok=True)
json.dump(kept, open(target, "w"), indent=1)
print(f"{target}: {len(kept)} files")
