"""``report.html``: a job's ``report.md`` as one self-contained web page.

The jobs write their report once, as Markdown; ``page`` renders that
Markdown as HTML with every image inlined (base64 ``data:`` URIs), so the
page is one file that opens in any browser, can be mailed or attached to a
paper's supplement, and needs nothing beside it. It understands the Markdown
the jobs write, not Markdown at large: ``#`` headings, paragraphs, ``- ``
lists, pipe tables, images alone on a line, ``*emphasis*``, ``**strong**``
and ``code`` spans. Anything else is shown as text (escaped), never as
markup.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

__all__ = ["page"]

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg",
         ".jpeg": "image/jpeg"}
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: 0.6rem 0; }
code { background: #f3f3f3; padding: 0 0.2rem; }
""".strip()


def _inline(text: str) -> str:
  """Escapes text, then renders ``code``, **strong** and *emphasis*."""
  parts = re.split(r"(`[^`]*`)", text)
  out = []
  for part in parts:
    if part.startswith("`") and part.endswith("`") and len(part) >= 2:
      out.append(f"<code>{html.escape(part[1:-1])}</code>")
      continue
    part = html.escape(part)
    part = re.sub(r"\*\*(\S(?:.*?\S)?)\*\*", r"<strong>\1</strong>", part)
    part = re.sub(r"(?<![\w*])\*(\S(?:.*?\S)?)\*(?![\w*])", r"<em>\1</em>",
                  part)
    out.append(part)
  return "".join(out)


def _image(alt: str, src: str, base: Path) -> str:
  path = (base / src) if not Path(src).is_absolute() else Path(src)
  mime = _MIME.get(path.suffix.lower())
  try:
    data = path.read_bytes()
  except OSError:
    data = None
  if mime is None or data is None:
    return f"<p>[missing figure: {html.escape(src)}]</p>"
  encoded = base64.b64encode(data).decode("ascii")
  return (f'<figure><img alt="{html.escape(alt, quote=True)}" '
          f'src="data:{mime};base64,{encoded}"></figure>')


def _cells(line: str) -> list[str]:
  return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
  head = _cells(lines[0])
  body = [_cells(l) for l in lines[1:]
          if not re.fullmatch(r"\|?[\s:|-]+\|?", l.strip())]
  rows = ["<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
  rows += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
           for r in body]
  return "<table>\n" + "\n".join(rows) + "\n</table>"


def page(markdown: str, base: str | Path, *, title: str | None = None) -> str:
  """The HTML page of ``markdown``, images read from ``base`` and inlined.

  Args:
    markdown: a job's report (the subset of Markdown the module docstring
      lists).
    base: the directory image paths are relative to (the workdir).
    title: the page title (default: the first heading).

  Returns:
    A complete HTML5 document as one string; a missing image becomes a
    "[missing figure: path]" line.
  """
  base = Path(base)
  lines = markdown.splitlines()
  body, i = [], 0
  while i < len(lines):
    line = lines[i]
    stripped = line.strip()
    if not stripped:
      i += 1
      continue
    heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
    image = _IMAGE.match(stripped)
    if heading:
      level = len(heading.group(1))
      title = title or heading.group(2)
      body.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
      i += 1
    elif image:
      body.append(_image(image.group("alt"), image.group("src"), base))
      i += 1
    elif stripped.startswith("|"):
      block = []
      while i < len(lines) and lines[i].strip().startswith("|"):
        block.append(lines[i])
        i += 1
      body.append(_table(block))
    elif stripped.startswith("- "):
      items = []
      while i < len(lines) and lines[i].strip():
        if lines[i].strip().startswith("- "):
          items.append(lines[i].strip()[2:])
        elif items:
          items[-1] += " " + lines[i].strip()
        i += 1
      body.append("<ul>\n" + "\n".join(f"<li>{_inline(t)}</li>"
                                         for t in items) + "\n</ul>")
    else:
      para = []
      while i < len(lines) and lines[i].strip() and not (
          lines[i].strip().startswith(("#", "|", "- "))
          or _IMAGE.match(lines[i].strip())):
        para.append(lines[i].strip())
        i += 1
      body.append(f"<p>{_inline(' '.join(para))}</p>")
  title = html.escape(title or "report")
  return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
          f"\n<title>{title}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n"
          "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")
