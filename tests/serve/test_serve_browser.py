"""The page in a real headless Chromium (Selenium, the system's chromium + chromedriver) against a live server:
the run list, generating, a new seed, the truncation slider, the interpolation animation, an attribute edit,
and uploading an image to translate. Screenshots go to a temporary folder (their paths are printed).

Without a browser these tests skip, saying why, except with CI=true, where they fail instead."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from servehelp import LiveServer, photo, png_bytes

CI = os.environ.get("CI", "").lower() == "true"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _need(condition: bool, why: str) -> None:
    if not condition:
        if CI:
            pytest.fail(f"{why} (CI=true: browser tests must run)")
        pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
    except ImportError:
        _need(False, "selenium is not installed (pip install selenium)")
    binary = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    driver_path = shutil.which("chromedriver")
    _need(binary is not None, "no Chromium/Chrome browser found (Debian: apt-get install chromium chromium-driver)")
    _need(driver_path is not None, "no chromedriver found (Debian: apt-get install chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as e:  # a broken browser install
        _need(False, f"Chromium did not start: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def live(app):
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {folder}")
    return folder


def wait(driver, condition, what: str, timeout: float = 60):
    """Poll condition(driver) until it is truthy; fail naming `what` (and any error shown) after timeout."""
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except Exception:
        error = driver.find_element("id", "error")
        shown = error.text if error.is_displayed() else ""
        pytest.fail(f"timed out waiting for {what}; page error: {shown!r}")


def version(driver, img_id: str) -> int:
    return int(driver.find_element("id", img_id).get_attribute("data-version") or 0)


def pixels(driver, img_id: str) -> str:
    """The displayed image's pixels, as the browser decoded them (a data URL of a canvas copy)."""
    return driver.execute_script("""
        const img = document.getElementById(arguments[0]);
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        c.getContext('2d').drawImage(img, 0, 0); return c.toDataURL('image/png');""", img_id)


def new_image(driver, img_id: str, before: int, what: str) -> str:
    wait(driver, lambda d: version(d, img_id) > before and
         d.find_element("id", img_id).get_attribute("data-state") == "done", what)
    return pixels(driver, img_id)


def shot(driver, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def open_run(driver, live, name: str) -> None:
    driver.get(live.url + "/")
    card = wait(driver, lambda d: d.find_elements("css selector", f'.run-card[data-run="{name}"]'), "the run list")
    card[0].click()
    wait(driver, lambda d: d.find_element("id", "run-title").text == name, f"run {name} to open")


def test_list_generate_new_seed_truncation_interpolation_and_edit(browser, live, shots):
    from selenium.webdriver.common.keys import Keys

    d = browser
    open_run(d, live, "sg2")
    cards = d.find_elements("css selector", ".run-card")
    assert {c.get_attribute("data-run") for c in cards} >= {"dcgan", "cgan", "sg2", "p2p", "cyc", "sr"}
    wait(d, lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
                          for i in d.find_elements("css selector", ".run-card img")), "the thumbnails")
    first = new_image(d, "grid-img", 0, "the first sample grid")
    shot(d, shots, "1-stylegan-generated")

    v = version(d, "grid-img")
    seed = d.find_element("id", "seed")
    seed.clear()
    seed.send_keys("123", Keys.TAB)  # a typed seed
    typed = new_image(d, "grid-img", v, "the grid of seed 123")
    assert typed != first

    v = version(d, "grid-img")
    d.find_element("id", "new-seed").click()
    fresh = new_image(d, "grid-img", v, "the grid of a new seed")
    assert fresh != typed and d.find_element("id", "seed").get_attribute("value") != "123"
    shot(d, shots, "2-stylegan-new-seed")

    v = version(d, "grid-img")
    slider = d.find_element("id", "trunc")
    slider.click()  # the middle of 0..2 is psi 1
    for _ in range(12):
        slider.send_keys(Keys.ARROW_LEFT)  # 12 steps of 0.05: psi 0.4
    wait(d, lambda d: d.find_element("id", "trunc-value").text == "0.40", "the slider to read 0.40")
    truncated = new_image(d, "grid-img", v, "the truncated grid")
    assert truncated != fresh
    shot(d, shots, "3-stylegan-truncation-0.4")

    d.find_element("id", "interp-btn").click()
    wait(d, lambda d: int(d.find_element("id", "interp-canvas").get_attribute("data-frames")) > 0, "the animation")
    seen = set()
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        seen.add(d.find_element("id", "interp-canvas").get_attribute("data-frame"))
        time.sleep(0.05)
    assert len(seen) >= 3, f"the animation did not advance (frames seen: {seen})"

    v = version(d, "edit-img")
    base = new_image(d, "edit-img", v - 1, "the unedited image") if v else new_image(d, "edit-img", 0, "edit")
    v = version(d, "edit-img")
    edit = d.find_element("css selector", '#edit-sliders input[data-direction="thick"]')
    edit.click()
    for _ in range(6):
        edit.send_keys(Keys.ARROW_RIGHT)
    moved = new_image(d, "edit-img", v, "the edited image")
    assert moved != base
    shot(d, shots, "4-stylegan-interpolation-and-edit")


def test_conditional_class_picker_and_threshold(browser, live, shots):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    d = browser
    open_run(d, live, "cgan")
    first = new_image(d, "grid-img", 0, "the cgan grid")
    v = version(d, "grid-img")
    Select(d.find_element("id", "class")).select_by_value("7")
    seven = new_image(d, "grid-img", v, "the class-7 grid")
    assert seven != first
    v = version(d, "grid-img")
    slider = d.find_element("id", "trunc")
    assert d.find_element("id", "trunc-value").text == "off"
    slider.send_keys(Keys.HOME)  # the smallest threshold, 0.1
    wait(d, lambda d: d.find_element("id", "trunc-value").text == "0.10", "the threshold to read 0.10")
    assert new_image(d, "grid-img", v, "the truncated class-7 grid") != seven
    shot(d, shots, "5-cgan-class-7-threshold-0.1")


def test_upload_translate_both_directions_and_download(browser, live, shots, tmp_path):
    from selenium.webdriver.support.ui import Select

    d = browser
    open_run(d, live, "cyc")
    picture = tmp_path / "photo.png"
    picture.write_bytes(png_bytes(photo(48, 40)))
    other = tmp_path / "other.png"
    other.write_bytes(png_bytes(np.ascontiguousarray(photo(48, 40, seed=1)[::-1])))
    d.find_element("id", "upload").send_keys(str(picture))
    wait(d, lambda d: d.execute_script("return document.getElementById('before-img').naturalWidth") == 48,
         "the before view")
    d.find_element("id", "process-btn").click()
    a2b = new_image(d, "after-img", 0, "the translation A to B")
    assert a2b != pixels(d, "before-img")
    link = d.find_element("id", "download-result")
    assert link.is_displayed() and link.get_attribute("download") == "photo-translated.png"
    assert link.get_attribute("href").startswith("blob:")
    shot(d, shots, "6-cyclegan-AtoB-before-after")
    v = version(d, "after-img")
    Select(d.find_element("id", "direction")).select_by_value("BtoA")
    b2a = new_image(d, "after-img", v, "the translation B to A")
    assert b2a != a2b
    v = version(d, "after-img")
    d.find_element("id", "upload").send_keys(str(other))
    d.find_element("id", "process-btn").click()
    assert new_image(d, "after-img", v, "the translation of another picture") != b2a
    shot(d, shots, "7-cyclegan-BtoA-other-picture")


def test_a_bad_upload_shows_the_servers_message(browser, live, shots, tmp_path):
    d = browser
    open_run(d, live, "sr")
    bad = tmp_path / "broken.png"
    data = png_bytes(photo(16, 16))
    bad.write_bytes(data[: len(data) // 2])
    d.find_element("id", "upload").send_keys(str(bad))
    d.find_element("id", "process-btn").click()
    error = wait(d, lambda d: d.find_element("id", "error").is_displayed() and d.find_element("id", "error"),
                 "the error message")
    assert "truncated" in error.text
    shot(d, shots, "8-upscale-bad-upload-error")
    good = tmp_path / "small.png"
    good.write_bytes(data)
    d.find_element("id", "upload").send_keys(str(good))
    d.find_element("id", "process-btn").click()
    new_image(d, "after-img", 0, "the upscaled image")
    assert d.execute_script("return document.getElementById('after-img').naturalWidth") == 64
    assert not d.find_element("id", "error").is_displayed()
    shot(d, shots, "9-upscale-before-after")
