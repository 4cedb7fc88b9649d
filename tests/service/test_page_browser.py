"""The search page in headless Chromium (Debian `chromium` + `chromium-driver`, driven by Selenium)."""

import shutil

import pytest

from semspace import Encoder
from semspace.search import Collection
from semspace.service import create_app

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian packages chromium and chromium-driver")


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,700",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def test_type_query_see_highlighted_results(tmp_path, tiny_bert_dir, live_server):
    pytest.importorskip("selenium")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    encoder = Encoder(str(tiny_bert_dir))
    with Collection.create(tmp_path / "c", encoder=encoder) as c:
        c.add(
            ["a man is playing a guitar", "a dog is running in the park", "a <b>cat</b> eats food"], ids=["g", "d", "c"]
        )
    with live_server(create_app(tmp_path / "c", encoder=encoder)) as srv:
        browser = chromium()
        try:
            browser.get(srv.url + "/")
            WebDriverWait(browser, 20).until(ec.text_to_be_present_in_element((By.ID, "status"), "3 documents"))
            box = browser.find_element(By.ID, "q")
            box.send_keys("playing guitar")
            box.submit()
            hits = WebDriverWait(browser, 20).until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, "li.hit")))
            assert len(hits) == 3
            marked = {m.text.lower() for m in browser.find_elements(By.CSS_SELECTOR, "li.hit mark")}
            assert {"playing", "guitar"} <= marked
            scores = [float(s.text) for s in browser.find_elements(By.CSS_SELECTOR, "li.hit .score")]
            assert scores == sorted(scores, reverse=True)
            assert "<b>cat</b>" in browser.find_element(By.ID, "results").text  # text is escaped, not HTML
            shot = tmp_path / "page.png"
            browser.save_screenshot(str(shot))
            assert shot.stat().st_size > 5000
        finally:
            browser.quit()


def test_pick_a_collection_mode_and_filter_behind_an_api_key(tmp_path, tiny_bert_dir, live_server):
    """A folder of collections behind --api-key: the page asks for the key (kept in the tab), lists the collections,
    and searches the chosen one with a mode and a metadata filter, showing each hit's metadata."""
    pytest.importorskip("selenium")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from semspace.search import Catalog

    encoder = Encoder(str(tiny_bert_dir))
    with Catalog(tmp_path / "root", model=encoder) as catalog:
        catalog.create_collection("animals").add(
            ["a dog is running in the park", "a cat eats food", "a dog eats food"],
            ids=["d", "c", "f"],
            metadata=[{"kind": "dog"}, {"kind": "cat"}, {"kind": "dog"}],
        )
        catalog.create_collection("music").add(["a man is playing a guitar"], ids=["g"])
    with live_server(create_app(tmp_path / "root", encoder=encoder, api_key="s3cret")) as srv:
        browser = chromium()
        try:
            browser.get(srv.url + "/")
            wait = WebDriverWait(browser, 20)
            wait.until(ec.visibility_of_element_located((By.ID, "key"))).send_keys("s3cret")
            browser.find_element(By.CSS_SELECTOR, "#keyform button").click()
            wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "2 collections · 4 documents"))
            Select(browser.find_element(By.ID, "collection")).select_by_value("animals")
            Select(browser.find_element(By.ID, "mode")).select_by_value("bm25")
            browser.find_element(By.ID, "filter").send_keys('{"kind": "dog"}')
            box = browser.find_element(By.ID, "q")
            box.send_keys("dog food")
            box.submit()
            hits = wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, "li.hit")))
            assert [h.find_element(By.CSS_SELECTOR, ".id").text for h in hits] == ["f", "d"]
            assert all('"kind":"dog"' in h.find_element(By.CSS_SELECTOR, ".meta").text for h in hits)
            assert browser.execute_script("return document.cookie") == ""  # the key stays in sessionStorage
        finally:
            browser.quit()
