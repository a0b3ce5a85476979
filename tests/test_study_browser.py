"""End to end in a real browser: `streamlit run app.py` on a loopback port, two raters at once in headless
Chromium (Debian's chromium + chromium-driver, installed here with apt-get when missing), answers checked in the
study's SQLite database. Skipped, with the reason printed, where Chromium or selenium cannot be had.

Every wait has a deadline and the server is killed in a ``finally``, so the test always stops by itself.
"""
from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_study import METHODS, make_study

ROOT = Path(__file__).resolve().parent.parent
WAIT = 60  # seconds, for any one thing to appear in the page or the database
APT_TIMEOUT = 900


def _skip(capsys: pytest.CaptureFixture, reason: str) -> None:
    with capsys.disabled():
        print(f"\nSKIPPED browser test: {reason}", file=sys.stderr)
    pytest.skip(reason)


def _find_chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists()
                                              else None)
    return (browser, driver) if browser and driver else None


def _install_chromium() -> str | None:
    """apt-get install Debian's chromium and chromium-driver; None on success, else why not."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine to install chromium and chromium-driver"
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        return "not root and no sudo: cannot apt-get install chromium chromium-driver"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
    try:
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT)
        if done.returncode != 0:  # stale package lists: refresh once and retry
            subprocess.run([*sudo, "apt-get", "update"], env=env, capture_output=True, timeout=APT_TIMEOUT)
            done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"apt-get install chromium chromium-driver did not finish in {APT_TIMEOUT} s"
    if done.returncode != 0:
        return f"apt-get install chromium chromium-driver failed: {done.stderr.strip()[-300:]}"
    return None


@pytest.fixture
def chromium(capsys: pytest.CaptureFixture) -> tuple[str, str]:
    found = _find_chromium()
    if found is None:
        why = _install_chromium()
        found = _find_chromium()
        if found is None:
            _skip(capsys, why or "chromium or chromedriver still missing after apt-get install")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(condition, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _serve(study_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("FSBENCH_STUDY", "FSBENCH_STUDY_TOKEN")}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--", str(study_dir)]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _healthy(url: str, server: subprocess.Popen, log: Path) -> bool:
    if server.poll() is not None:
        raise AssertionError(f"streamlit exited with {server.returncode}:\n{log.read_text()[-2000:]}")
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _answers(db: Path, code: str) -> int:
    with sqlite3.connect(db, timeout=10) as con:
        return con.execute("SELECT COUNT(*) FROM answers a JOIN raters r ON r.id = a.rater WHERE r.code = ?",
                           (code,)).fetchone()[0]


def _done(db: Path, code: str) -> int:
    with sqlite3.connect(db, timeout=10) as con:
        return con.execute("SELECT COUNT(*) FROM assignments s JOIN raters r ON r.id = s.rater "
                           "WHERE r.code = ? AND s.done IS NOT NULL", (code,)).fetchone()[0]


def test_two_raters_rate_at_once_in_chromium(tmp_path: Path, chromium: tuple[str, str],
                                             capsys: pytest.CaptureFixture) -> None:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
    except ImportError:
        _skip(capsys, "selenium is not installed (pip install -e '.[test]')")
    study = make_study(tmp_path, "pick", n_pairs=3, per_rater=2)
    port, log = _free_port(), tmp_path / "streamlit.log"
    url = f"http://127.0.0.1:{port}"
    server = _serve(study.root, port, log)
    driver = None
    try:
        _wait_until(lambda: _healthy(url, server, log), "the streamlit server to answer")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium[0]
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=chromium[1]), options=options)
        driver.set_page_load_timeout(WAIT)
        driver.set_script_timeout(WAIT)

        def text() -> str:
            return driver.find_element(By.TAG_NAME, "body").text

        def click_button(label: str) -> None:
            def enabled_button():
                buttons = [b for b in driver.find_elements(By.TAG_NAME, "button")
                           if b.text.strip() == label and b.is_enabled()]
                return buttons[0] if buttons else None
            _wait_until(enabled_button, f"an enabled '{label}' button").click()

        def sign_in(code: str) -> None:
            driver.get(url)
            field = _wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "input[type='text']"),
                                "the name field")[0]
            field.send_keys(code, Keys.ENTER)
            click_button("Start")
            _wait_until(lambda: "of 2 done" in text(), f"{code}'s progress bar")

        def answer_unit(code: str, choice: int) -> None:
            """Pick result number `choice` for each of the three questions, then Next."""
            before = _answers(study.database, code)
            images = _wait_until(lambda: [i for i in driver.find_elements(By.TAG_NAME, "img")
                                          if driver.execute_script("return arguments[0].naturalWidth", i)],
                                 "the unit's images")
            assert len(images) == 2 + len(METHODS)
            for q in range(3):
                groups = _wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMain'] "
                                                                  "[role='radiogroup'], section.main "
                                                                  "[role='radiogroup']"), "the questions")
                labels = groups[q].find_elements(By.TAG_NAME, "label")
                labels[choice].click()
                stored = before + q + 1
                _wait_until(lambda n=stored: _answers(study.database, code) == n, f"{code}'s answer stored")
            click_button("Next")

        # two raters at once: one tab each, each tab its own Streamlit session, turns interleaved
        sign_in("ann")
        ann_tab = driver.current_window_handle
        driver.switch_to.new_window("tab")
        sign_in("bob")
        bob_tab = driver.current_window_handle
        for turn in range(2):
            for tab, code in ((ann_tab, "ann"), (bob_tab, "bob")):
                driver.switch_to.window(tab)
                answer_unit(code, choice=turn)
                progress = f"{turn + 1} of 2 done"
                _wait_until(lambda p=progress: p in text(), f"{code}'s progress to move on")
                assert not any(m in text() for m in METHODS), "a method name is shown to the rater"
        _wait_until(lambda: "All done" in text(), "the end of bob's units")
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)

    for code in ("ann", "bob"):
        assert _answers(study.database, code) == 2 * 3
        assert _done(study.database, code) == 2
    with sqlite3.connect(study.database) as con:
        firsts = con.execute("SELECT r.code, a.position FROM answers a JOIN raters r ON r.id = a.rater "
                             "JOIN assignments s ON s.rater = a.rater AND s.unit = a.unit WHERE s.position = 0"
                             ).fetchall()
    assert {position for _, position in firsts} == {0}  # the first unit: every pick was the first result shown
