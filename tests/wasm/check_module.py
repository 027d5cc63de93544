#!/usr/bin/env python3
"""Checks a built proxy-wasm module the way Envoy's host would load it.

Usage: check_module.py MODULE.wasm FIXTURES_DIR [--max-bytes N]

- wasm-validate accepts it;
- every import is in Envoy's host list (FIXTURES_DIR/envoy-host-imports.txt) with the same signature,
  and none is a WASI function (we aim for zero);
- the ABI marker, memory, malloc and _initialize are exported, and every proxy_on_* export has the
  signature in FIXTURES_DIR/proxy-wasm-exports.txt;
- the stripped module is at most --max-bytes.
Exits non-zero with one line per problem.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def objdump(module):
    out = subprocess.run(["wasm-objdump", "-x", module], capture_output=True, text=True, check=True).stdout
    types, imports, exports = {}, [], []
    for line in out.splitlines():
        m = re.match(r"\s*- type\[(\d+)\] (\(.*\) -> .*)$", line)
        if m:
            types[int(m.group(1))] = m.group(2).strip()
            continue
        m = re.match(r"\s*- func\[\d+\] sig=(\d+) <[^>]*> <- (\S+)$", line)
        if m:
            imports.append((m.group(2), int(m.group(1))))
            continue
        m = re.match(r"\s*- (func|memory|global|table)\[(\d+)\] (?:<[^>]*> )?-> \"([^\"]+)\"$", line)
        if m:
            exports.append((m.group(3), m.group(1), int(m.group(2))))
    func_sigs = {}
    section = None
    for line in out.splitlines():
        if line.startswith("Function["):
            section = "function"
            continue
        if re.match(r"^[A-Z][A-Za-z]*\[", line):
            section = None
        if section == "function":
            m = re.match(r"\s*- func\[(\d+)\] sig=(\d+)", line)
            if m:
                func_sigs[int(m.group(1))] = int(m.group(2))
    for i, (_, sig) in enumerate(imports):
        func_sigs[i] = sig
    return types, imports, exports, func_sigs


def normalise(signature):
    signature = signature.replace("nil", "()")
    return re.sub(r"\s+", " ", signature).strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("fixtures")
    parser.add_argument("--max-bytes", type=int, default=32768)
    args = parser.parse_args()
    problems = []

    if not os.path.isfile(args.module):
        print(f"check_module: {args.module} does not exist; run 'make wasm' first", file=sys.stderr)
        return 2
    validate = subprocess.run(["wasm-validate", args.module], capture_output=True, text=True)
    if validate.returncode != 0:
        problems.append("wasm-validate rejects the module: " + validate.stderr.strip())

    allowed = {}
    with open(os.path.join(args.fixtures, "envoy-host-imports.txt")) as f:
        for line in f:
            name, _, sig = line.strip().partition(" ")
            allowed[name] = normalise(sig)
    required_exports = {}
    with open(os.path.join(args.fixtures, "proxy-wasm-exports.txt")) as f:
        for line in f:
            m = re.match(r"(\S+) (\(.*?\) -> (?:\(\)|i32|i64))", line)
            if m:
                required_exports[m.group(1)] = normalise(m.group(2))

    types, imports, exports, func_sigs = objdump(args.module)
    for name, sig in imports:
        have = normalise(types[sig])
        if name not in allowed:
            problems.append(f"import {name} {have} is not provided by Envoy: Istio would refuse the module")
        elif allowed[name] != have:
            problems.append(f"import {name} has signature {have}, Envoy provides {allowed[name]}")
        if name.startswith("wasi_"):
            problems.append(f"import {name}: the module should import no WASI function")

    exported = {name: (kind, index) for name, kind, index in exports}
    for name in ("proxy_abi_version_0_2_1", "malloc", "_initialize", "proxy_on_context_create",
                 "proxy_on_configure", "proxy_on_new_connection", "proxy_on_delete"):
        if name not in exported:
            problems.append(f"missing export {name}")
    if not any(kind == "memory" for kind, _ in exported.values()):
        problems.append("no memory export")
    for name, (kind, index) in exported.items():
        if kind != "func" or name not in required_exports:
            continue
        have = normalise(types[func_sigs[index]])
        if have != required_exports[name]:
            problems.append(f"export {name} has signature {have}, the host checks for {required_exports[name]}")

    with tempfile.TemporaryDirectory() as tmp:
        stripped = os.path.join(tmp, "stripped.wasm")
        shutil.copy(args.module, stripped)
        subprocess.run(["wasm-strip", stripped], check=True)
        size = os.path.getsize(stripped)
    if size > args.max_bytes:
        problems.append(f"stripped module is {size} bytes, over the {args.max_bytes}-byte budget")

    for problem in problems:
        print("check_module: " + problem, file=sys.stderr)
    print(f"check_module: {args.module}: {len(imports)} imports, {len(exports)} exports, {size} bytes stripped, "
          f"{'FAILED' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
