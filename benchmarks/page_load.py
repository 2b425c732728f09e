"""Issue 17's speed as felt: first and repeat load of each page in headless Chromium
(Debian's, driven by Playwright) against `critmin serve`, the Plotly bundle's size, and the
brief's time for three blocs (in process: briefing + render; CPU and wall time).

First load = a new browser context (empty cache) until every chart is drawn or shows its
empty state; repeat = the same page again in that context (bundle from the browser cache).
The server's answers are warmed first: the figures are the browser's side. Targets: first
≤ 1.5 s, repeat ≤ 0.3 s, brief ≤ 10 s on this machine. Prints the load average beside the
figures: the 2 shared cores are often busy with other work.

Three clocks per load (best of the attempts):
- `first`/`repeat`: from `page.goto` until Playwright sees DRAWN (the harness's view: it
  includes Playwright's round trips and waits while the page's main thread is busy);
- `painted`: in the page, from the navigation's start to the first animation frame in which
  DRAWN holds (what the eye sees: on a repeat visit the charts' kept pictures count, see
  critmin.js);
- `live`: in the page, until Plotly.js has drawn every chart itself (hover works).

    .venv/bin/python benchmarks/page_load.py [--attempts 3] [--no-brief] [--pages /docs ...]
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
# Charts drawn by Plotly.js itself, not the picture kept from the last visit (critmin.js).
LIVE = """() => location.pathname === '/docs' ? !!document.querySelector('.opblock')
  : [...document.querySelectorAll('.chart')].every(
      c => !c.hasAttribute('data-picture') && (c.querySelector('.main-svg')
           || c.querySelector('.empty-state') || c.closest('main').querySelector('#scenario')))"""
# In the page from its first line: the time of the first frame in which DRAWN (and LIVE) hold.
FRAMES = f"""(() => {{
  const drawn = {DRAWN}, live = {LIVE};
  function tick() {{
    if (document.readyState !== 'loading') {{
      if (window.__drawnAt === undefined && drawn()) window.__drawnAt = performance.now();
      if (live()) {{ window.__liveAt = performance.now(); return; }}
    }}
    requestAnimationFrame(tick);
  }}
  requestAnimationFrame(tick);
}})()"""
BRIEFS = [("ministerial_2026", None), ("eu27", None), ("JPN", ["gallium", "germanium"])]


def page_loads(base: str, attempts: int, pages: list[str] = PAGES) -> dict[str, dict[str, float]]:
    """Per page the best of `attempts` of each clock (seconds): first, repeat (harness),
    first_painted, repeat_painted, first_live, repeat_live (in the page)."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no Chromium: scripts/ensure_chromium.sh installs it")
    for path in pages:
        httpx.get(base + path, timeout=120)
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        for path in pages:
            times: dict[str, list[float]] = {}
            for _ in range(attempts):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(FRAMES)
                page = context.new_page()
                for load in ("first", "repeat"):
                    start = time.perf_counter()
                    page.goto(base + path)
                    page.wait_for_function(DRAWN, timeout=60_000)
                    times.setdefault(load, []).append(time.perf_counter() - start)
                    page.wait_for_function("() => window.__liveAt !== undefined", timeout=60_000)
                    painted, live = page.evaluate("() => [window.__drawnAt, window.__liveAt]")
                    times.setdefault(f"{load}_painted", []).append(painted / 1000)
                    times.setdefault(f"{load}_live", []).append(live / 1000)
                context.close()
            out[path] = {clock: min(values) for clock, values in times.items()}
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
    parser.add_argument("--pages", nargs="+", default=PAGES, metavar="PATH")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with served() as (base, _):
        bundle = len(httpx.get(f"{base}/static/plotly.min.js").content)
        loads = page_loads(base, args.attempts, args.pages)
    print(f"Plotly bundle served to the pages: {bundle / 1e6:.2f} MB (full bundle 4.8 MB)")
    clocks = {
        "first": "first",
        "repeat": "repeat",
        "first_painted": "1st paint",
        "repeat_painted": "rep paint",
        "first_live": "1st live",
        "repeat_live": "rep live",
    }
    print(f"seconds, best of {args.attempts}; first, repeat: harness; paint, live: in the page")
    print(f"{'page':54s}" + "".join(f"{label:>10s}" for label in clocks.values()))
    for path, times in loads.items():
        print(f"{path:54s}" + "".join(f"{times[c]:10.2f}" for c in clocks))
    if not args.no_brief:
        print(f"{'brief':54s} {'wall s':>9s} {'CPU s':>9s}")
        for bloc, wall, cpu in brief_times():
            print(f"{bloc:54s} {wall:9.2f} {cpu:9.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
