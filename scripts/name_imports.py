#!/usr/bin/env python3
"""Names each imported function of a wasm module "module.field" in its name section, in place.

The profiling module (`make profile`) keeps its name section, where the linker names imports after
their C symbols ("proxy_log"). Tools that read import names from that section would take them for
imports Envoy lacks; with "env.proxy_log" the names say what the import section says. Only the
name section changes; a module without one is left as it is.
usage: name_imports.py MODULE
"""
import sys


def leb(data, pos):
    """Unsigned LEB128 at pos: (value, next position)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def encode_leb(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def name(data, pos):
    size, pos = leb(data, pos)
    return bytes(data[pos:pos + size]), pos + size


def encode_name(text):
    return encode_leb(len(text)) + text


def skip_limits(data, pos):
    flags = data[pos]
    pos += 1
    _, pos = leb(data, pos)
    if flags & 1:
        _, pos = leb(data, pos)
    return pos


def function_imports(payload):
    """The "module.field" names of the imported functions, in function index order."""
    count, pos = leb(payload, 0)
    names = []
    for _ in range(count):
        module, pos = name(payload, pos)
        field, pos = name(payload, pos)
        kind = payload[pos]
        pos += 1
        if kind == 0:  # function: type index
            _, pos = leb(payload, pos)
            names.append(module + b"." + field)
        elif kind == 1:  # table: element type, limits
            pos = skip_limits(payload, pos + 1)
        elif kind == 2:  # memory: limits
            pos = skip_limits(payload, pos)
        elif kind == 3:  # global: value type, mutability
            pos += 2
        else:
            raise SystemExit(f"name_imports: unknown import kind {kind}")
    return names


def renamed(payload, imports):
    """The name section's payload with the function-name subsection's imports renamed."""
    section_name, pos = name(payload, 0)
    out = bytearray(encode_name(section_name))
    while pos < len(payload):
        kind = payload[pos]
        size, start = leb(payload, pos + 1)
        body = payload[start:start + size]
        pos = start + size
        if kind == 1:  # function names: vec of (index, name)
            count, at = leb(body, 0)
            entries = bytearray(encode_leb(count))
            for _ in range(count):
                index, at = leb(body, at)
                text, at = name(body, at)
                entries += encode_leb(index) + encode_name(imports[index] if index < len(imports) else text)
            body = bytes(entries)
        out += bytes([kind]) + encode_leb(len(body)) + body
    return bytes(out)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: name_imports.py MODULE")
    path = sys.argv[1]
    try:
        with open(path, "rb") as module:
            data = module.read()
    except OSError as error:
        raise SystemExit(f"name_imports: cannot read {path}: {error.strerror}") from None
    if data[:4] != b"\0asm":
        raise SystemExit(f"name_imports: {path} is not a wasm module")
    try:
        out = rewrite(data)
    except IndexError:
        raise SystemExit(f"name_imports: {path}: a section runs past the end of the module") from None
    with open(path, "wb") as module:
        module.write(out)


def rewrite(data):
    out = bytearray(data[:8])
    imports = []
    pos = 8
    while pos < len(data):
        section = data[pos]
        size, start = leb(data, pos + 1)
        if start + size > len(data):
            raise IndexError
        payload = data[start:start + size]
        pos = start + size
        if section == 2:
            imports = function_imports(payload)
        elif section == 0 and name(payload, 0)[0] == b"name":
            payload = renamed(payload, imports)
        out += bytes([section]) + encode_leb(len(payload)) + payload
    return bytes(out)


if __name__ == "__main__":
    main()
