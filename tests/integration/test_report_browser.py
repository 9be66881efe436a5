"""The report in a real headless browser (Debian's `chromium`): it renders offline, the DOM holds
every section with its plots, the screenshot is not blank, and it prints to a multi-page PDF.

The test installs nothing: without chromium it is skipped with the command that installs it.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tunelab.report import RUN_SECTIONS, write_report

HERE = Path(__file__).resolve().parent
BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="needs a headless browser: apt-get install -y chromium (Debian's chromium)")


def build_run(root: Path) -> Path:
    """The complete synthetic run of the unit tests (every section has data)."""
    spec = importlib.util.spec_from_file_location("report_fixture", HERE.parent / "unit" / "test_report_render.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_run(root)


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio",
           # Every host name fails to resolve: the page must render with no network at all.
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp / 'profile'}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("browser")
    html = write_report([build_run(tmp)])
    return tmp, html


def test_the_browser_renders_every_section_with_its_plots(page):
    tmp, html = page
    dom = chromium(tmp, "--dump-dom", html.as_uri()).stdout
    found = re.findall(r'<section id="([^"]+)"', dom)
    assert found == list(RUN_SECTIONS)
    for sid in RUN_SECTIONS:
        body = dom.split(f'<section id="{sid}"', 1)[1].split("</section>", 1)[0]
        assert "<h2>" in body, sid
    for sid in ("training", "checkpoints", "next-token", "token-classes"):
        assert "<svg" in dom.split(f'<section id="{sid}"', 1)[1].split("</section>", 1)[0], sid
    assert dom.count('<a href="#') == len(RUN_SECTIONS)  # the table of contents


def test_screenshot_is_not_blank_and_the_page_prints(page):
    from PIL import Image, ImageStat

    tmp, html = page
    shot = tmp / "report.png"
    chromium(tmp, "--window-size=1280,3000", "--hide-scrollbars", f"--screenshot={shot}", html.as_uri())
    img = Image.open(shot).convert("L")
    assert img.size == (1280, 3000)
    assert ImageStat.Stat(img).stddev[0] > 20, "the screenshot looks blank"
    print(f"screenshot: {shot}")  # look at it: pytest -s tests/integration/test_report_browser.py
    pdf = tmp / "report.pdf"
    chromium(tmp, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", html.as_uri())
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", data)) > 2
