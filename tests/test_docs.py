"""The documentation: every Python block runs, the site builds strictly and renders.

- **Snippets.** Every fenced ``python`` block in ``README.md`` and ``docs/**/*.md``
  runs, page by page: the blocks of one page in order, in one namespace, in a
  fresh working folder (what a reader pasting them one after the other gets). A
  block directly followed by an ``output`` block must print exactly that (a line
  ``...`` there stands for any lines). A block that cannot run here is preceded
  by ``<!-- not-runnable: <reason> -->``; the reason is required, and
  :func:`test_every_python_block_is_run_or_says_why` counts them. They run once,
  on TensorFlow: the code is backend-neutral, and the README's first four examples
  alone took 51 s on JAX, where every shape is traced anew (15 s on TensorFlow;
  with the fifth, the depth check, 26 s on a loaded machine).
- **The site.** ``mkdocs build --strict`` (mkdocs-material, mkdocstrings): a
  broken link, a missing page or a docstring griffe cannot read fails it.
  Every public name (``keras_initzoo.__all__`` and the ``__all__`` of
  ``kiz.mup``, ``kiz.callbacks``, ``kiz.layers``, ``kiz.optimizers``, and the
  public names of ``kiz.models``) must have an entry in the API reference.
- **In a browser.** Debian's chromium opens the built API reference and a
  tutorial over a local HTTP server and reports every image's natural size
  after load: each must have loaded (a broken image has width 0).
- **One TensorBoard paragraph.** The README, the docs and the command line give
  the same advice, word for word.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
SKIP_MARK = re.compile(r"^<!--\s*not-runnable:\s*(?P<reason>.*?)\s*-->$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
ADVICE = DOCS / "snippets" / "tensorboard-advice.md"


@dataclass
class Block:
    """One fenced code block of a Markdown page."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    skip_reason: str | None = None
    expected_output: str | None = None

    @property
    def where(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """The page's fenced blocks, with their not-runnable reasons and expected outputs."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    previous = ""  # the last non-blank line before the current block
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:])
            j += 1
        skip = SKIP_MARK.match(previous)
        blocks.append(
            Block(
                path,
                i + 1,
                opening["info"].lower(),
                "\n".join(body) + "\n",
                skip_reason=skip["reason"] if skip else None,
            )
        )
        previous = ""
        i = j + 1
    # An ``output`` block right after a python block is what that block prints.
    for before, after in zip(blocks, blocks[1:], strict=False):
        if before.language in ("python", "py") and after.language == "output":
            before.expected_output = after.code
    return blocks


def python_blocks(path: Path) -> list[Block]:
    return [b for b in fenced_blocks(path) if b.language in ("python", "py")]


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _matches(expected: str, actual: str) -> bool:
    """``actual`` equals ``expected`` line by line, a ``...`` line standing for any lines."""
    pattern = []
    for line in expected.rstrip("\n").splitlines():
        pattern.append(r"(?:.*\n)*?" if line.strip() == "..." else re.escape(line.rstrip()) + r"\n")
    cleaned = "".join(line.rstrip() + "\n" for line in actual.rstrip("\n").splitlines())
    return re.fullmatch("".join(pattern), cleaned) is not None


def run_page(path: Path, workdir: Path) -> list[str]:
    """Runs the page's runnable python blocks in order; returns what went wrong."""
    namespace: dict = {"__name__": "__docs__"}
    problems = []
    old_cwd = os.getcwd()
    os.chdir(workdir)
    try:
        for block in python_blocks(path):
            if block.skip_reason is not None:
                continue
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile(block.code, block.where, "exec"), namespace)
            except Exception as error:  # noqa: BLE001 - reported with the block's place
                problems.append(f"{block.where}: {type(error).__name__}: {error}")
                break  # later blocks of the page build on this one
            if block.expected_output is not None and not _matches(
                block.expected_output, out.getvalue()
            ):
                problems.append(
                    f"{block.where}: printed\n{out.getvalue()}\nbut the page shows\n"
                    f"{block.expected_output}"
                )
    finally:
        os.chdir(old_cwd)
    return problems


def _runnable(path: Path) -> bool:
    return any(b.skip_reason is None for b in python_blocks(path))


DOC_PAGES = [p for p in pages() if p != README and _runnable(p)]


@pytest.mark.slow
@pytest.mark.tensorflow_only(
    reason="backend-neutral code, run once: 15 s on TensorFlow, 51 s on JAX (tracing), 25 s "
    "on PyTorch"
)
def test_readme_snippets_run(tmp_path):
    """The README's five examples, in order, as a newcomer pastes them."""
    keras.utils.set_random_seed(0)
    problems = run_page(README, tmp_path)
    assert not problems, "\n\n".join(problems)
    # The pictures the examples say they make are there.
    for picture in ("signal.png", "coord.png"):
        assert (tmp_path / picture).stat().st_size > 1000, picture
    assert any((tmp_path / "runs" / "he").rglob("events.out.tfevents.*"))


@pytest.mark.slow
@pytest.mark.tensorflow_only(reason="the docs' examples are backend-neutral; run once")
@pytest.mark.parametrize("path", DOC_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_snippets_run(path, tmp_path):
    keras.utils.set_random_seed(0)
    problems = run_page(path, tmp_path)
    assert not problems, "\n\n".join(problems)


def test_every_python_block_is_run_or_says_why():
    """Every python block runs, or is marked not-runnable with a reason; outputs follow code."""
    reasons, runnable = [], 0
    for path in pages():
        blocks = fenced_blocks(path)
        for block in blocks:
            if block.language in ("python", "py"):
                if block.skip_reason is None:
                    runnable += 1
                else:
                    assert block.skip_reason, f"{block.where}: not-runnable needs a reason"
                    reasons.append(block.where)
            assert block.language != "pycon", f"{block.where}: write python + output blocks"
        for before, after in zip(blocks, blocks[1:], strict=False):
            if after.language == "output":
                assert before.language in ("python", "py"), (
                    f"{after.where}: an output block must follow a python block"
                )
    assert runnable >= 15, runnable
    # Most blocks run: a page that marks everything not-runnable would pass otherwise.
    assert len(reasons) <= runnable // 2, reasons


def test_the_runner_catches_a_broken_snippet_and_a_wrong_output(tmp_path):
    """Control: an undefined name and an output that differs are both reported."""
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nprint(1 + 1)\n```\n\n```output\n3\n```\n\n"
        "```python\nprint(x_batch, y_batch)\n```\n"
        "<!-- not-runnable: needs a GPU -->\n```python\nraise SystemExit\n```\n"
    )
    problems = run_page(page, tmp_path)
    assert len(problems) == 2, problems
    assert "printed\n2\n" in problems[0] and "NameError" in problems[1] and "x_batch" in problems[1]
    assert _matches("a\n...\nd\n", "a\nb\nc\nd\n") and not _matches("a\nd\n", "a\nb\nd\n")


def _public_names() -> dict[str, object]:
    """Every public name, dotted, with its object."""
    import keras_initzoo as kiz

    names = {f"keras_initzoo.{n}": getattr(kiz, n) for n in kiz.__all__}
    for sub in ("mup", "callbacks", "layers", "optimizers"):
        module = importlib.import_module(f"keras_initzoo.{sub}")
        names |= {f"keras_initzoo.{sub}.{n}": getattr(module, n) for n in module.__all__}
    models = importlib.import_module("keras_initzoo.models")
    names |= {
        f"keras_initzoo.models.{n}": value
        for n, value in vars(models).items()
        if not n.startswith("_") and not isinstance(value, type(models))
    }
    return names


def _inventory(site: Path) -> dict[str, str]:
    """The Python objects mkdocstrings rendered, from the site's ``objects.inv``: name -> role."""
    raw = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four header lines, then zlib
        header_end = raw.index(b"\n", header_end) + 1
    body = zlib.decompress(raw[header_end:]).decode("utf-8")
    rows = (line.split(" ", 2) for line in body.splitlines())
    return {row[0]: row[1] for row in rows if len(row) == 3 and row[1].startswith("py:")}


def _role(obj) -> str:
    """The inventory role an entry for ``obj`` must have."""
    if isinstance(obj, type(sys)):
        return "py:module"
    if isinstance(obj, type):
        return "py:class"
    if callable(obj):
        return "py:function"
    return "py:attribute"


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _role_fits(role: str, obj) -> bool:
    wanted = _role(obj)
    return role == wanted or (wanted == "py:attribute" and role != "py:module")


def missing_from_reference(inventory: dict[str, str]) -> list[str]:
    """Public names without an entry of the right kind.

    An entry counts when it is rendered as what the object is (a function as a
    function, not as a same-named submodule, which griffe prefers) and names the
    object: by its public name, or by the path it is defined at.
    """
    documented = {}
    for name, role in inventory.items():
        obj = _resolve(name)
        if obj is not None and _role_fits(role, obj):
            documented[id(obj)] = name
    return sorted(
        name
        for name, obj in _public_names().items()
        if not (name in inventory and _role_fits(inventory[name], obj))
        and id(obj) not in documented
    )


@functools.cache
def built_site() -> Path:
    """``mkdocs build --strict`` into a temporary folder, once per session."""
    site = Path(tempfile.mkdtemp(prefix="kiz-site-")) / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if done.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{done.stderr[-6000:]}")
    return site


@pytest.fixture(scope="module")
def site():
    pytest.importorskip("mkdocs", reason='the docs extra: pip install -e ".[docs]"')
    return built_site()


@pytest.mark.slow
@pytest.mark.tensorflow_only(reason="the site does not depend on the backend; built once")
def test_site_builds_strictly_with_every_public_name(site):
    inventory = _inventory(site)
    assert not missing_from_reference(inventory)
    # Control: the same check on an inventory without HeNormal and kiz.mup.parametrize.
    trimmed = {n: r for n, r in inventory.items() if not n.endswith((".HeNormal", ".parametrize"))}
    assert {"keras_initzoo.HeNormal", "keras_initzoo.mup.parametrize"} <= set(
        missing_from_reference(trimmed)
    )
    # Control: reinitialize rendered as its same-named submodule (griffe's pick for
    # ``::: keras_initzoo.reinitialize``) does not count as documenting the function.
    as_module = {n: r for n, r in inventory.items() if not n.endswith(".reinitialize")}
    as_module["keras_initzoo.reinitialize"] = "py:module"
    assert "keras_initzoo.reinitialize" in missing_from_reference(as_module)


def _chromium() -> str:
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"CI: the docs' browser test must run, but {CHROMIUM} is missing")
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


PROBE = """<!doctype html><meta charset="utf-8"><title>probe</title>
<iframe id="page" src="{target}" style="width:1200px;height:900px"></iframe>
<pre id="result">pending</pre>
<script>
const frame = document.getElementById("page");
frame.addEventListener("load", () => {{
  const doc = frame.contentDocument;
  const report = () => {{
    const images = [...doc.images].map(i => ({{
      src: i.getAttribute("src"), complete: i.complete,
      width: i.naturalWidth, height: i.naturalHeight}}));
    document.getElementById("result").textContent = JSON.stringify({{
      title: doc.title, images: images, text: doc.body.innerText,
      header: getComputedStyle(doc.querySelector(".md-header")).position,
      headings: [...doc.querySelectorAll("h1, h2")].map(h => h.id || h.textContent)}});
  }};
  // Polled rather than awaited: headless chromium's virtual time runs timers, and an
  // image that fails to load is "complete" with naturalWidth 0.
  let tries = 0;
  const wait = () => {{
    if ([...doc.images].every(i => i.complete) || ++tries > 100) report();
    else setTimeout(wait, 100);
  }};
  wait();
}});
</script>
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site without a log line per request."""

    def log_message(self, format, *args):  # noqa: A002 - the base class' name
        pass


def render_in_browser(site: Path, page: str) -> dict:
    """``page`` (relative to the site) loaded in headless chromium: title, images, headings.

    The page is opened in an iframe of a probe page served from the same local
    server, so the probe can read each image's natural size after load and write
    it into its own DOM, which ``--dump-dom`` prints.
    """
    chromium = _chromium()
    probe = site / "_probe.html"
    probe.write_text(PROBE.format(target="/" + page), encoding="utf-8")
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            done = subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--no-proxy-server",
                    f"--user-data-dir={profile}",
                    "--virtual-time-budget=15000",
                    "--dump-dom",
                    f"http://127.0.0.1:{server.server_address[1]}/_probe.html",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
    finally:
        server.shutdown()
        probe.unlink()
    found = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, re.S)
    assert found and found[1] != "pending", (done.stdout[-2000:], done.stderr[-2000:])
    import html

    return json.loads(html.unescape(found[1]))


@pytest.mark.slow
@pytest.mark.tensorflow_only(reason="the site does not depend on the backend; opened once")
def test_reference_and_a_tutorial_render_with_their_images(site, tmp_path):
    reference = render_in_browser(site, "reference/callbacks/")
    assert "GradientNormLogger" in reference["title"]
    assert any("GradientNormLogger" in h for h in reference["headings"])
    # The theme's stylesheet applied (an unstyled header is "static"), and the signature
    # shows the arguments with their defaults.
    assert reference["header"] == "sticky", reference["header"]
    assert (
        "log_dir" in reference["text"]
        and 'log_dir: str | PathLike = "logs/grad_norm"' in reference["text"]
    )
    tutorial = render_in_browser(site, "tutorials/lessons/")
    assert tutorial["header"] == "sticky"
    pictures = [i for i in tutorial["images"] if "images/" in (i["src"] or "")]
    assert len(pictures) >= 4, tutorial["images"]
    broken = [i["src"] for i in pictures if not (i["complete"] and i["width"] > 100)]
    assert not broken, broken
    # Control: the same tutorial with one picture gone shows it broken (width 0).
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    gone = pictures[0]["src"].split("images/")[-1]
    (copy / "images" / gone).unlink()
    again = render_in_browser(copy, "tutorials/lessons/")
    assert [i["width"] for i in again["images"] if i["src"].endswith(gone)] == [0]


def test_one_tensorboard_paragraph_everywhere():
    """The README and the docs give the TensorBoard advice in the same words."""
    advice = ADVICE.read_text(encoding="utf-8").strip()
    assert "\n\n" not in advice, "the advice is one paragraph"
    assert advice in README.read_text(encoding="utf-8")
    including = [p for p in DOCS.rglob("*.md") if "snippets/tensorboard-advice.md" in p.read_text()]
    assert len(including) >= 2, including
    # Nowhere else do the docs tell a different story about where to look.
    for path in pages():
        text = path.read_text(encoding="utf-8")
        assert "CUSTOM SCALARS" not in text, path


def test_readme_links_and_pictures_exist():
    """The README is not part of the site, so ``--strict`` does not check its links."""
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert len(local) >= 20, local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing
    # Control: a link to a page that is not there is caught by the same expression.
    assert re.findall(r"\]\(([^)#\s]+)", "[x](docs/nowhere.md#a)") == ["docs/nowhere.md"]
