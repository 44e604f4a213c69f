#!/usr/bin/env python3
"""Fails when the daemon's modules import each other in a circle.

Builds a file-level graph from `use` trees and `crate::`/`super::`/`self::` paths (aliases
from `use` followed), where a file may use the modules that enclose it, and reports every
strongly connected group of more than one module. A reading of the source, not of rustc:
good enough to keep the layering of lib.rs honest. Usage: tests/import-circles.py [SRC_DIR]
"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'daemon/src'
files = {}; is_mod = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f); rel = os.path.relpath(p, root)
            mod = rel[:-3].replace('/mod', '').replace('/', '::')
            if mod in ('lib', 'main'): continue
            src = open(p).read()
            src = re.split(r'#\[cfg\(test\)\]\s*mod tests', src)[0]
            src = re.sub(r'//[^\n]*', '', src)
            files[mod] = src; is_mod[mod] = f == 'mod.rs'
mods = set(files)
def resolve(parts):
    for i in range(len(parts), 0, -1):
        m = '::'.join(parts[:i])
        if m in mods: return m
    return None
def base_of(m, word):
    # the module path a leading path word refers to, inside module m
    if word == 'crate': return []
    if word == 'self': return m.split('::')
    if word == 'super': return m.split('::')[:-1]
    return None
def expand_use(m, body, prefix):
    # yields full paths from a use tree body
    out = []
    depth = 0; cur = ''
    items = []
    for ch in body:
        if ch == '{': depth += 1
        if ch == '}': depth -= 1
        if ch == ',' and depth == 0: items.append(cur); cur = ''
        else: cur += ch
    items.append(cur)
    for it in items:
        it = it.strip()
        if not it: continue
        mm = re.match(r'([\w:]*?)::\{(.*)\}$', it, re.S)
        if mm:
            out += expand_use(m, mm.group(2), prefix + [x for x in mm.group(1).split('::') if x])
        else:
            name = it.split(' as ')[0].strip()
            alias = it.split(' as ')[-1].strip().split('::')[-1]
            parts = prefix + [x for x in name.split('::') if x]
            if parts and parts[-1] == 'self': parts = parts[:-1]; alias = parts[-1] if parts else alias
            out.append((alias, parts))
    return out
edges = {m: set() for m in mods}
for m, src in files.items():
    here = m.split('::')
    children = set(re.findall(r'^\s*(?:pub(?:\([\w:]+\))?\s+)?mod\s+(\w+)\s*;', src, re.M))
    aliases = {c: (here if is_mod[m] else here) + [c] for c in children}
    for u in re.finditer(r'\buse\s+([\w:]+(?:::\{.*?\})?)\s*;', src, re.S):
        tree = u.group(1)
        first = tree.split('::')[0]
        b = base_of(m, first)
        if b is None:
            if first in aliases: b = aliases[first][:-1]; tree = tree  # child module
            else: continue
            for alias, parts in expand_use(m, tree, b): aliases[alias] = parts
            continue
        rest = tree[len(first) + 2:] if '::' in tree else ''
        for alias, parts in expand_use(m, rest, b): aliases[alias] = parts
    refs = []
    for alias, parts in aliases.items(): refs.append(parts)
    for p in re.finditer(r'\b(crate|super|self|\w+)((?:::\w+)+)', src):
        first = p.group(1); rest = [x for x in p.group(2).split('::') if x]
        b = base_of(m, first)
        if b is None:
            if first in aliases: b = aliases[first]
            else: continue
        refs.append(b + rest)
    for r in refs:
        t = resolve(r)
        # A file may use items of the modules that enclose it (its own module's parts).
        if t and t != m and not m.startswith(t + '::'):
            edges[m].add(t)
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in sorted(mods):
    if v not in idx: sc(v)
big = [s for s in sccs if len(s) > 1]
for s in big:
    print(len(s), sorted(s))
    if '-v' in sys.argv:
        ss = set(s)
        for x in sorted(s): print('  ', x, '->', sorted(edges[x] & ss))
if big:
    sys.exit('import circles found: move the shared helper down into a leaf module (see lib.rs)')
print('no import circles between %d modules' % len(mods))
