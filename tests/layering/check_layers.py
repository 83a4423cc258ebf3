#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The layers, checked on the object files the build made.

Usage: check_layers.py SOURCE_DIR LAYER=OBJ[:OBJ...] ...

proa's folders are layers, and calls point one way:

    completion <- ring <- proactor <- pool <- dns <- net <- proc
    (net_tls: net's TLS files)

This reads each layer's object files with nm and fails on
  1. a reference from a layer to a symbol defined in a layer above it
     (the few known ones are listed in KNOWN_UP, with why: remove an entry
     when its debt is paid, never add one);
  2. an external library used outside its layer: liburing only in ring,
     hwloc only in pool, c-ares only in dns, OpenSSL only in net_tls;
  3. a cycle between the files of one layer that is not one of the cycles
     already there (KNOWN_CYCLES: a file joining one, or a new one, fails);
  4. a source file that includes the private header of a layer above its
     own ("pool/pool_int.h" from proactor/, say);
  5. an operation's state written outside ring/: ring/ring.c owns an op's
     life, and the executor (pool/fallback.c) and every other layer only
     read it (a source check: an assignment to priv.state that is not a
     handle's or a future's, or of a PROA_OP_ state).
It prints what it checked, and every violation with the symbol and files.
"""
import collections
import os
import re
import subprocess
import sys

RANK = {"completion": 0, "ring": 1, "proactor": 2, "pool": 3, "dns": 4,
        "net": 5, "net_tls": 5, "proc": 6}
FOLDER = {"completion": "completion", "ring": "ring", "proactor": "proactor",
          "pool": "pool", "dns": "dns", "net": "net", "net_tls": "net",
          "proc": "proc"}

# Known upward calls (a debt, each with its reason).  None left: the
# ring's file ops reach the pool through the executor the loop hands the
# ring when it is made (ring/ring_int.h), and come home through
# proa__exec_complete().  Never add one.
KNOWN_UP = set()

# Cycles between the files of a layer that exist today (sets of object
# names without ".c.o").  ring: ring.c dispatches to the backends, which
# use its helpers.  proactor: the loop and its timers, signals,
# cross-thread queue and debug mode call each other.  net/ has none: the
# transport base (transport.c) knows no kind, the kinds (sock.c, tls.c)
# call down into it, and servers and clients open the kinds.
KNOWN_CYCLES = [
    {"ring/epoll", "ring/ring", "ring/uring"},
    {"proactor/debug", "proactor/loop", "proactor/signal",
     "proactor/threadsafe", "proactor/timer"},
]

# Rule 5: who may write an op's state.
STATE_OWNER = "ring"
STATE_WRITE = re.compile(r"priv\.state\s*=(?!=)([^;]*);")
STATE_CONST = re.compile(r"(?<![=!<>])=\s*PROA_OP_(IDLE|QUEUED|INFLIGHT)\b")
OTHER_STATES = re.compile(r"PROA__H_|PROA_FUTURE_")

EXTERNAL = {
    "ring": re.compile(r"^_*io_uring_"),
    "pool": re.compile(r"^hwloc_"),
    "dns": re.compile(r"^ares_"),
    "net_tls": re.compile(r"^(SSL_|TLS_|OPENSSL_|OSSL_|X509|EVP_|BIO_|ERR_|"
                          r"PEM_|CRYPTO_|d2i_|i2d_)"),
}


def nm(path):
    out = subprocess.run(["nm", path], capture_output=True, text=True,
                         check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRCVW":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] in ("U", "w"):
            undefined.add(parts[1])
    return defined, undefined


def unit(layer, path):
    name = os.path.basename(path)
    for ext in (".c.o", ".o"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return FOLDER[layer] + "/" + name


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    src = argv[1]
    objs = {}
    for arg in argv[2:]:
        layer, _, files = arg.partition("=")
        if layer not in RANK:
            print(f"check_layers: unknown layer '{layer}'")
            return 2
        objs[layer] = [f for f in files.split(":") if f]
    errors = []
    defined = {}  # symbol -> (layer, unit)
    refs = {}  # (layer, unit) -> undefined symbols
    for layer, files in objs.items():
        for f in files:
            d, u = nm(f)
            for s in d:
                defined[s] = (layer, unit(layer, f))
            refs[(layer, unit(layer, f))] = u
    graph = collections.defaultdict(set)
    nrefs = 0
    for (layer, u), syms in sorted(refs.items()):
        graph[u]
        for s in sorted(syms):
            for ext_layer, rx in EXTERNAL.items():
                if rx.match(s) and layer != ext_layer:
                    errors.append(f"{u}: uses {s}, which only {ext_layer} "
                                  f"may use")
            if s not in defined:
                continue
            nrefs += 1
            dl, du = defined[s]
            if RANK[dl] > RANK[layer] and (layer, s) not in KNOWN_UP:
                errors.append(f"{u} ({layer}) calls up into {du} ({dl}): "
                              f"{s}")
            if FOLDER[dl] == FOLDER[layer] and du != u:
                graph[u].add(du)
    for comp in sccs(graph):
        if not any(comp <= known for known in KNOWN_CYCLES):
            errors.append("a new cycle between files of one layer: " +
                          " -> ".join(sorted(comp)))
    inc = re.compile(r'^\s*#\s*include\s+"(\w+)/\w+\.h"')
    for layer in sorted(set(FOLDER.values())):
        rank = min(r for lay, r in RANK.items() if FOLDER[lay] == layer)
        folder = os.path.join(src, layer)
        for name in sorted(os.listdir(folder)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(folder, name)) as fh:
                for n, line in enumerate(fh, 1):
                    m = inc.match(line)
                    if m and m.group(1) in RANK and \
                            RANK[m.group(1)] > rank:
                        errors.append(f"{layer}/{name}:{n} includes "
                                      f"{m.group(1)}/, a layer above")
    for layer in sorted(set(FOLDER.values()) - {STATE_OWNER}):
        folder = os.path.join(src, layer)
        for name in sorted(os.listdir(folder)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(folder, name)) as fh:
                text = fh.read()
            for m in STATE_WRITE.finditer(text):
                if not OTHER_STATES.search(m.group(1)):
                    n = text.count("\n", 0, m.start()) + 1
                    errors.append(f"{layer}/{name}:{n} writes an op's "
                                  f"state; only {STATE_OWNER}/ may")
            for m in STATE_CONST.finditer(text):
                n = text.count("\n", 0, m.start()) + 1
                errors.append(f"{layer}/{name}:{n} sets an op state "
                              f"(PROA_OP_{m.group(1)}); only "
                              f"{STATE_OWNER}/ may")
    nobj = sum(len(f) for f in objs.values())
    print(f"check_layers: {nobj} object files in {len(objs)} layers, "
          f"{nrefs} references between them, {len(KNOWN_UP)} known upward "
          f"calls, {len(KNOWN_CYCLES)} known cycles")
    for e in errors:
        print("FAIL: " + e)
    print(f"{0 if errors else 1} passed, {1 if errors else 0} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
