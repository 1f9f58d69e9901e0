#!/usr/bin/env python3
"""Fails unless a PNG screenshot has at least MIN pixels that are clearly not white.

    png_ink.py FILE MIN

Decodes 8-bit RGB or RGBA PNGs (what Chromium writes) with the standard library only, so a
browser check can tell a drawn page from an empty one without an imaging package.
"""
import struct
import sys
import zlib


def pixels(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    at, idat, header = 8, b"", None
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        body = data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    width, height, depth, color = header[0], header[1], header[2], header[3]
    if depth != 8 or color not in (2, 6):
        sys.exit(f"{path}: unsupported PNG (depth {depth}, color type {color})")
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(line)
        previous = line
    return rows, channels


def main():
    path, minimum = sys.argv[1], int(sys.argv[2])
    rows, channels = pixels(path)
    ink = 0
    for line in rows:
        for i in range(0, len(line), channels):
            if min(line[i], line[i + 1], line[i + 2]) < 200:
                ink += 1
    if ink < minimum:
        sys.exit(f"{path}: only {ink} drawn pixels (at least {minimum} expected): an empty page")
    print(f"{path}: {ink} drawn pixels")


if __name__ == "__main__":
    main()
