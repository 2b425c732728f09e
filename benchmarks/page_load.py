"""Issue 17's speed as felt: first and repeat load of each page in headless Chromium
(Debian's, driven by Playwright) against `critmin serve`, the Plotly bundle's size, and the
brief's time for three blocs (in process: briefing + render; CPU and wall time).

First load = a new browser context (empty cache) until every chart is drawn or shows its
empty state; repeat = the same page again in that context (bundle from the browser cache).
The server's answers are warmed first: the figures are the browser's side. Targets: first
≤ 1.5 s, repeat ≤ 0.3 s, brief ≤ 10 s on this machine. Prints the load average beside the
figures: the 2 shared cores are often busy with other work.

    .venv/bin/python benchmarks/page_load.py [--attempts 3] [--no-brief]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from served import served

PAGES = [
    "/?commodity=rare_earths&year=2024",
    "/mineral?commodity=rare_earths&year=2024",
    "/country?importer=JPN&commodity=rare_earths&year=2024",
    "/agreements?bloc=USA&year=2024",
    "/builder",
    "/docs",
]
DRAWN = """() => location.pathname === '/docs' ? !!document.querySelector('.opblock')
  : [...document.querySelectorAll('.chart')].every(
      c => c.querySelector('.main-svg') || c.querySelector('.empty-state')
           || c.closest('main').querySelector('#scenario'))"""
BRIEFS = [("ministerial_2026", None), ("eu27", None), ("JPN", ["gallium", "germanium"])]


def page_loads(base: str, attempts: int) -> dict[str, tuple[float, float]]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no Chromium: scripts/ensure_chromium.sh installs it")
    for path in PAGES:
        httpx.get(base + path, timeout=120)
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        for path in PAGES:
            first, repeat = [], []
            for _ in range(attempts):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                for sink in (first, repeat):
                    start = time.perf_counter()
                    page.goto(base + path)
                    page.wait_for_function(DRAWN, timeout=60_000)
                    sink.append(time.perf_counter() - start)
                context.close()
            out[path] = (min(first), min(repeat))
        browser.close()
    return out


def brief_times() -> list[tuple[str, float, float]]:
    from critmin.report.brief import render_brief
    from critmin.scenarios.briefing import DEFAULT_MINERALS, briefing

    out = []
    for bloc, minerals in BRIEFS:
        wall, cpu = time.perf_counter(), time.process_time()
        render_brief(briefing(bloc, minerals or DEFAULT_MINERALS))
        out.append((bloc, time.perf_counter() - wall, time.process_time() - cpu))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--no-brief", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with served() as (base, _):
        bundle = len(httpx.get(f"{base}/static/plotly.min.js").content)
        loads = page_loads(base, args.attempts)
    print(f"Plotly bundle served to the pages: {bundle / 1e6:.2f} MB (full bundle 4.8 MB)")
    print(f"{'page':58s} {'first s':>8s} {'repeat s':>9s}   (best of {args.attempts})")
    for path, (first, repeat) in loads.items():
        print(f"{path:58s} {first:8.2f} {repeat:9.2f}")
    if not args.no_brief:
        print(f"{'brief':58s} {'wall s':>8s} {'CPU s':>9s}")
        for bloc, wall, cpu in brief_times():
            print(f"{bloc:58s} {wall:8.2f} {cpu:9.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
