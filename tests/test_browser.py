"""The web page in a real browser: headless Chromium driven by Selenium against the real server.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (see .ci/apt-packages.txt); without
them the tests are skipped with the reason. ``AIORNOT_SCREENSHOT=1`` also saves
``docs/screenshot.png`` (with models/default when it exists, else the tiny untrained model).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from aiornot.contract.result import VERDICT_TEXTS
from conftest import encode, photo_like

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ENGLISH_VERDICTS = {"AI-generated", "Real photo", "Inconclusive"}
WAIT_S = 60


def _chromium() -> tuple[str, str]:
    """Paths of the Chromium binary and chromedriver, or skip with the reason."""
    binary = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        missing = ", ".join(name for name, path in (("chromium", binary), ("chromedriver", driver)) if not path)
        reason = f"browser tests need {missing} (Debian: apt-get install -y chromium chromium-driver)"
        print(reason)
        pytest.skip(reason)
    return binary, driver


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium using the system chromedriver (Selenium Manager never downloads one)."""
    binary, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-proxy-server",
                     "--window-size=1280,1000", "--lang=ko-KR", "--force-device-scale-factor=1", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(live_server, tiny_model_dir) -> str:
    return live_server(tiny_model_dir)


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("upload") / "photo.jpg"
    path.write_bytes(encode(photo_like(3, (320, 240)), "JPEG", quality=90))
    return path


def _open_fresh(browser, url: str) -> None:
    """Open the page with no remembered language (Korean is the default)."""
    browser.get(url)
    browser.execute_script("window.localStorage.clear()")
    browser.get(url)


def _upload(browser, path: Path, *, id_photo: bool = False) -> str:
    """Pick ``path`` in the file input and wait for the verdict; returns the verdict text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    wait.until(lambda b: b.execute_script("return document.body.getAttribute('aria-busy') !== 'true'"))
    checkbox = browser.find_element(By.ID, "id-photo")
    if checkbox.is_selected() != id_photo:
        checkbox.click()
        wait.until(lambda b: b.execute_script("return document.body.getAttribute('aria-busy') !== 'true'"))
    browser.execute_script("document.getElementById('verdict-text').textContent = ''")
    browser.find_element(By.ID, "file-input").send_keys(str(path))
    wait.until(ready.visibility_of_element_located((By.ID, "verdict")))
    wait.until(lambda b: b.find_element(By.ID, "verdict-text").text.strip() or b.find_element(By.ID, "error").is_displayed())
    assert not browser.find_element(By.ID, "error").is_displayed(), browser.find_element(By.ID, "error").text
    return browser.find_element(By.ID, "verdict-text").text.strip()


def _api_result(server: str, path: Path, *, id_photo: bool = False, face_score: bool = False) -> dict:
    """``POST /v1/detect`` with ``path``, straight to the server (never via a proxy)."""
    import httpx

    with httpx.Client(trust_env=False, timeout=WAIT_S) as client:
        response = client.post(f"{server}/v1/detect", files={"image": (path.name, path.read_bytes(), "image/jpeg")},
                               data={"id_photo": str(id_photo).lower(), "face_score": str(face_score).lower()})
    response.raise_for_status()
    return response.json()


def test_upload_shows_a_korean_verdict_score_and_evidence(browser, server, photo_file):
    from selenium.webdriver.common.by import By

    _open_fresh(browser, server)
    assert browser.find_element(By.TAG_NAME, "h1").text == "AI 생성 사진 판별"
    assert browser.execute_script("return document.documentElement.lang") == "ko"
    verdict = _upload(browser, photo_file)
    expected = _api_result(server, photo_file)  # what the API answers for the same file
    assert verdict == VERDICT_TEXTS[expected["verdict"]].label_ko
    assert browser.find_element(By.ID, "score-value").text == f"{expected['score']:.2f}"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#signals-body tr")) == len(expected["signals"]) >= 1
    assert browser.find_element(By.ID, "rule-text").text == expected["rule_ko"].strip()
    expert_rows = browser.find_elements(By.CSS_SELECTOR, "#experts-body tr")
    assert expert_rows and "포렌식" in expert_rows[-1].text  # each expert's score is on the page
    assert browser.find_element(By.ID, "fusion-text").text.startswith("결합 규칙: P(AI) = σ(")
    assert browser.find_element(By.ID, "heatmap").get_attribute("src").startswith("data:image/png;base64,")
    assert "저장" in browser.find_element(By.CLASS_NAME, "privacy-bar").text  # the privacy note is on the page


def test_english_switch_changes_the_strings_and_is_remembered(browser, server, photo_file):
    from selenium.webdriver.common.by import By

    _open_fresh(browser, server)
    korean = _upload(browser, photo_file)
    browser.find_element(By.CSS_SELECTOR, "button[data-lang='en']").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "AI-generated photo check"
    english = browser.find_element(By.ID, "verdict-text").text
    assert english in ENGLISH_VERDICTS
    assert next(v.label for v in VERDICT_TEXTS.values() if v.label_ko == korean) == english  # the same verdict, translated
    assert browser.execute_script("return document.documentElement.lang") == "en"
    browser.refresh()
    assert browser.find_element(By.TAG_NAME, "h1").text == "AI-generated photo check"
    browser.find_element(By.CSS_SELECTOR, "button[data-lang='ko']").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "AI 생성 사진 판별"


def test_id_photo_mode_draws_the_face_box_and_the_checks(browser, server, tmp_path):
    from matplotlib import cbook
    from selenium.webdriver.common.by import By

    portrait = tmp_path / "portrait.jpg"
    portrait.write_bytes(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())
    _open_fresh(browser, server)
    verdict = _upload(browser, portrait, id_photo=True)
    expected = _api_result(server, portrait, id_photo=True)
    assert verdict == VERDICT_TEXTS[expected["verdict"]].label_ko
    assert expected["face"]["w"] > 100 and browser.find_element(By.ID, "face-box").is_displayed()  # Grace Hopper's face, 512×600 photo
    rows = browser.find_elements(By.CSS_SELECTOR, "#checks-body tr")
    tags = [row.find_element(By.CSS_SELECTOR, ".tag").text for row in rows]
    assert tags and tags == ["통과" if check["passed"] else "미통과" for check in expected["checks"]]


def test_the_face_score_box_belongs_to_id_photo_mode_and_asks_for_the_face_score(browser, server, tmp_path):
    from matplotlib import cbook
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    portrait = tmp_path / "portrait.jpg"
    portrait.write_bytes(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())
    _open_fresh(browser, server)
    option, line = browser.find_element(By.ID, "face-score-option"), browser.find_element(By.ID, "face-score")
    assert not option.is_displayed()  # hidden until ID-photo mode is on
    _upload(browser, portrait, id_photo=True)
    assert option.is_displayed() and option.text and not line.is_displayed()  # ID-photo mode alone: no face score
    browser.find_element(By.ID, "face-score-check").click()  # re-analyses with face_score=true
    WebDriverWait(browser, WAIT_S).until(lambda b: line.is_displayed())
    expected = _api_result(server, portrait, id_photo=True, face_score=True)
    shown = float(re.search(r"\d\.\d\d", line.text)[0])
    assert abs(shown - expected["face_score"]) <= 0.0051 and "참고용" in line.text
    browser.find_element(By.ID, "id-photo").click()  # leaving ID-photo mode takes the option (and the score) away
    WebDriverWait(browser, WAIT_S).until(lambda b: b.execute_script("return document.body.getAttribute('aria-busy') !== 'true'"))
    WebDriverWait(browser, WAIT_S).until(lambda b: not line.is_displayed())
    assert not option.is_displayed()


def test_a_strongly_compressed_jpeg_shows_its_caveat_beside_the_verdict_in_either_language(browser, server, photo_file, tmp_path):
    from selenium.webdriver.common.by import By

    compressed = tmp_path / "compressed.jpg"
    compressed.write_bytes(encode(photo_like(3, (320, 240)), "JPEG", quality=50))
    expected = _api_result(server, compressed)
    if expected["verdict"] == "ai":
        pytest.skip("the untrained test model called this photo ai: no caveat is due")
    [caveat] = expected["caveats"]
    _open_fresh(browser, server)
    _upload(browser, compressed)
    shown = browser.find_element(By.ID, "verdict-caveats")
    assert shown.is_displayed() and shown.text == caveat["text_ko"]
    browser.find_element(By.CSS_SELECTOR, "button[data-lang='en']").click()
    assert browser.find_element(By.ID, "verdict-caveats").text == caveat["text"]
    browser.find_element(By.CSS_SELECTOR, "button[data-lang='ko']").click()
    _upload(browser, photo_file)  # quality 90: the caveat goes
    assert not browser.find_element(By.ID, "verdict-caveats").is_displayed()


def test_the_page_loads_nothing_from_other_hosts(browser, server):
    _open_fresh(browser, server)
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(name.startswith(server) for name in resources), resources


@pytest.mark.skipif(os.environ.get("AIORNOT_SCREENSHOT") != "1", reason="set AIORNOT_SCREENSHOT=1 to save docs/screenshot.png")
def test_save_a_screenshot_for_the_readme(browser, live_server, tiny_model_dir, tmp_path):
    from matplotlib import cbook
    from selenium.webdriver.common.by import By

    default = ROOT / "models" / "default"
    url = live_server(default if (default / "detector.json").is_file() else tiny_model_dir)
    portrait = tmp_path / "portrait.jpg"
    portrait.write_bytes(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes())
    _open_fresh(browser, url)
    _upload(browser, portrait, id_photo=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 40, 4000))
    browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    target = ROOT / "docs" / "screenshot.png"
    target.parent.mkdir(exist_ok=True)
    assert browser.find_element(By.TAG_NAME, "body").screenshot(str(target))
    browser.set_window_size(1280, 1000)
    print(f"saved {target}")
