"""Render a PDF's pages to PNG images, in a process of its own (run by decks.py as
`python -m rooms.meetings.render <pdf> <out dir> <max pages> <width>`), so a file
that makes PDFium hang or crash takes only this process with it.

Writes one line per step to stdout: `pages <n>`, then for each page `title <i>
<JSON string>` (its title, see page_title) and `page <i>` after its image; on
failure `error <code> <message>` and exit status 2. Codes: encrypted, corrupt,
too_many, failed. The titles are read here too, so reading a hostile file's text
is bounded like drawing it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

TITLE_MAX = 120   # characters of a slide's title


def clean_title(text: object) -> str:
    """The first non-empty line of a page's text, its whitespace collapsed, without control characters,
    at most TITLE_MAX characters ("" when there is none). Used on both sides of the pipe."""
    if not isinstance(text, str):
        return ""
    for line in text.splitlines():
        words = "".join(ch if ch.isprintable() else " " for ch in line).split()
        if words:
            return " ".join(words)[:TITLE_MAX].rstrip()
    return ""


def page_title(page) -> str:
    """A page's title: the first line of its text (PDFium's text page), or "" when it has none or
    its text cannot be read."""
    try:
        textpage = page.get_textpage()
        try:
            return clean_title(textpage.get_text_range())
        finally:
            textpage.close()
    except Exception:  # noqa: BLE001 - a page whose text cannot be read has no title
        return ""


def main(argv: list[str]) -> int:
    import pypdfium2 as pdfium  # here: this script runs in its own short-lived, sandboxed process

    src, out, max_pages, width = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])

    def fail(code: str, message: str) -> int:
        print(f"error {code} {message}", flush=True)
        return 2

    try:
        pdf = pdfium.PdfDocument(str(src))
    except pdfium.PdfiumError as err:
        if getattr(err, "err_code", None) in (pdfium.raw.FPDF_ERR_PASSWORD, pdfium.raw.FPDF_ERR_SECURITY):
            return fail("encrypted", "The PDF is protected by a password, so it cannot be shown. "
                                     "Save a copy without a password and attach that.")
        return fail("corrupt", "The file is not a readable PDF (it may be damaged or incomplete).")
    n = len(pdf)
    if n == 0:
        return fail("corrupt", "The PDF has no pages.")
    if n > max_pages:
        return fail("too_many", f"The deck has {n} pages; at most {max_pages} can be shown. "
                                "Split it into smaller files.")
    print(f"pages {n}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    try:
        for i in range(n):
            page = pdf[i]
            w = page.get_width() or 1
            bitmap = page.render(scale=max(0.1, min(4.0, width / w)))
            bitmap.to_pil().convert("RGB").save(out / f"{i + 1}.png", optimize=False)
            print(f"title {i + 1} {json.dumps(page_title(page))}", flush=True)
            page.close()
            print(f"page {i + 1}", flush=True)
    except Exception as err:  # noqa: BLE001 - any failure is reported to the parent
        return fail("failed", f"Page {i + 1} could not be drawn ({type(err).__name__}).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
