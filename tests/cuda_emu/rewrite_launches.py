#!/usr/bin/env python3
"""Rewrites one .cu file for the CUDA emulation (tests/cuda_emu/README.md).

    rewrite_launches.py IN.cu OUT.cpp

Each launch `kernel<<<grid, block, shared, stream>>>(args)` becomes
`::crema_emu::launch("kernel", grid, block, shared, stream, kernel, args)`, and each
`__shared__ T a[N], b;` becomes `static T a[N], b;` followed, on the same line, by
`::crema_emu::fresh_shared(&a, sizeof(a));` for each name, which fills the array with
0xff bytes when a block first reaches it (a block's shared memory starts undefined; the
statics would otherwise hold the previous block's values). Nothing else changes, and a
#line directive keeps compiler messages pointing at IN.cu. A launch this script cannot
read (fewer than four configuration values, no argument list) is an error naming its
line, so that no launch is left for the C++ compiler to misread.
"""
import re
import sys

SHARED = re.compile(r"__shared__\s+([A-Za-z_][\w:]*)\s+([^;]+);")
LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*\(", re.S)


def split_top_level(text):
    """Splits at commas outside parentheses, brackets and braces."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def fresh_shared(match):
    """static declaration, then one fresh_shared call per declared name."""
    names = [re.match(r"\s*([A-Za-z_]\w*)", d).group(1) for d in split_top_level(match.group(2))]
    calls = " ".join(f"::crema_emu::fresh_shared(&{n}, sizeof({n}));" for n in names)
    return f"static {match.group(1)} {match.group(2)}; {calls}"


def rewrite(source, path):
    source = SHARED.sub(fresh_shared, source)
    out, pos = [], 0
    for m in LAUNCH.finditer(source):
        line = source.count("\n", 0, m.start()) + 1
        config = split_top_level(m.group(2))
        if len(config) != 4:
            sys.exit(f"{path}:{line}: a launch needs <<<grid, block, shared bytes, stream>>> for the emulation")
        kernel = m.group(1)
        rest = source[m.end():]
        empty = rest.lstrip().startswith(")")
        out.append(source[pos:m.start()])
        out.append(f'::crema_emu::launch("{kernel}", {", ".join(config)}, {kernel}{"" if empty else ", "}')
        out.append("\n" * m.group(0).count("\n"))  # keeps the lines below where they were
        pos = m.end()
    out.append(source[pos:])
    text = "".join(out)
    if "<<<" in text:
        line = text.count("\n", 0, text.index("<<<")) + 1
        sys.exit(f"{path}:{line}: a launch the emulation cannot read")
    return text


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: rewrite_launches.py IN.cu OUT.cpp")
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        text = rewrite(f.read(), src)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(f'#line 1 "{src}"\n')
        f.write(text)


if __name__ == "__main__":
    main()
