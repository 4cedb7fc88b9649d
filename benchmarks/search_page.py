"""Screenshot of the search page in headless Chromium: serve a collection of the vendored STS-B sample sentences
(bundled MiniLM), type a query, wait for results, save docs/results/search_page.png.

    python benchmarks/search_page.py [--query "a man is playing a guitar"]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", default="a man is playing a guitar")
    parser.add_argument("--out", type=Path, default=Path("docs/results/search_page.png"))
    args = parser.parse_args()

    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from semspace.data import load_sample
    from semspace.search import Collection
    from semspace.service import create_app

    sentences = list(dict.fromkeys(s for split in load_sample().values() for s in split.sentences()))
    folder = Path(tempfile.mkdtemp(prefix="semspace-page-")) / "c"
    with Collection.create(folder) as c:
        c.add(sentences, ids=[f"stsb-{i}" for i in range(len(sentences))])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(folder), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,820",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(browser, 30).until(ec.text_to_be_present_in_element((By.ID, "status"), "documents"))
        box = browser.find_element(By.ID, "q")
        box.send_keys(args.query)
        box.submit()
        WebDriverWait(browser, 30).until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, "li.hit")))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(args.out))
    finally:
        browser.quit()
        server.should_exit = True
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
