"""Render a PDF's pages to PNG images, in a process of its own (run by decks.py as
`python -m rooms.meetings.render <pdf> <out dir> <max pages> <width>`), so a file
that makes PDFium hang or crash takes only this process with it.

Writes one line per step to stdout: `pages <n>`, then `page <i>` after each
image; on failure `error <code> <message>` and exit status 2. Codes: encrypted,
corrupt, too_many, failed.
"""
from __future__ import annotations

import sys
from pathlib import Path


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
            page.close()
            print(f"page {i + 1}", flush=True)
    except Exception as err:  # noqa: BLE001 - any failure is reported to the parent
        return fail("failed", f"Page {i + 1} could not be drawn ({type(err).__name__}).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
