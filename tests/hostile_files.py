"""Files made to hurt a server, written out byte by byte (no library draws them): shared by the
hostile-input tests (tests/test_untrusted_files.py, tests/test_search_trust.py) and bench/hostile.py,
plus the small valid PDF writer they are built on."""
from __future__ import annotations

import io
import struct
import zlib


def pdf_from_objects(objs: list[bytes]) -> bytes:
    """A PDF whose numbered objects are `objs` (object 1 the catalogue), with a correct cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(f"{i} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def text_pdf(text: str) -> bytes:
    """A small valid one-page PDF showing `text` (Helvetica)."""
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    content = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode("latin-1")
    return pdf_from_objects([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def huge_png(width: int = 20_000, height: int = 5_940) -> bytes:
    """A valid greyscale PNG of width × height pixels (118.8 million by default), all black, that
    compresses to ~120 KB: what a decompression-bomb upload looks like."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + one byte per pixel
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def endless_pdf(word: str = "zebrafish", pages: int = 200) -> bytes:
    """A small PDF (~33 KB) whose few words take pypdf minutes of CPU: `pages` pages all showing the
    same compressed content stream, which shows `word` once and then moves the pen 150,000 times
    (within pypdf's own parsing budget per stream, and with next to no text, so neither pypdf's
    limits nor a cap on characters stop it: only a bound on time does). A different `word` makes a
    different file (text already read is cached by the file's hash)."""
    content = f"BT /F1 12 Tf 72 720 Td ({word}) Tj\n".encode() + b"0 0 Td\n" * 150_000 + b"ET"
    comp = zlib.compress(content, 9)
    first_page = 5
    kids = " ".join(f"{first_page + i} 0 R" for i in range(pages)).encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(pages).encode() + b" >>",
            b"<< /Length " + str(len(comp)).encode() + b" /Filter /FlateDecode >>\nstream\n" + comp + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
             b"/Resources << /Font << /F1 4 0 R >> >> >>"] * pages
    return pdf_from_objects(objs)
