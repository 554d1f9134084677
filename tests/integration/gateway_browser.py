"""gateway_browser.py - the status board in a real browser (issue 15,
acceptance 1): headless Chromium driven by Selenium, against a real
parleyd and parley-gateway.

  - the board shows the 12 demo updates in the right cells and in the
    timeline, each with a verified mark (Ed25519 checked by WebCrypto);
  - an update published with `parley pub` appears within 2 s, without
    a reload;
  - the filters change the URL and the content, and a filtered URL
    opened afresh shows the same;
  - behind a proxy that flips one byte of a headline, that update shows
    as failed verification, and only that one;
  - a gateway restart shows the "lost" banner, then "back", and the
    timeline has every update once.

Run by test_gateway_browser.sh (with a python3 that has selenium).
"""
import os
import socket
import threading
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from gateway_harness import (Failure, check, demo_cells, demo_world, expected_demo, main)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


def browser(w, width=1280, height=1400):
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", "--disable-extensions",
              "--user-data-dir=" + w.path("chrome-profile"),
              "--window-size=%d,%d" % (width, height)):
        o.add_argument(a)
    service = Service(CHROMEDRIVER, log_path=w.path("chromedriver.log"))
    w.logs.append(w.path("chromedriver.log"))
    return webdriver.Chrome(service=service, options=o)


def wait(drv, secs, what, pred):
    try:
        return WebDriverWait(drv, secs, poll_frequency=0.05).until(lambda d: pred(d))
    except TimeoutException:
        raise Failure("within %s s: %s" % (secs, what))


def cells(drv):
    """(negotiation, phase, party) -> (seq, verify) of the board's cells,
    read in one script (the board redraws itself as updates come)."""
    got = drv.execute_script(
        "return [...document.querySelectorAll('#board td[data-seq]')].map(td =>"
        " [td.dataset.negotiation, +td.dataset.phase, td.dataset.party,"
        "  +td.dataset.seq, td.dataset.verify]);")
    return {(n, ph, p): (seq, v) for n, ph, p, seq, v in got}


def rows(drv):
    """seq -> verify of the timeline's rows, failing on a repeated seq."""
    got = drv.execute_script(
        "return [...document.querySelectorAll('#timeline li[data-seq]')].map(li =>"
        " [+li.dataset.seq, li.dataset.verify || 'gap']);")
    out = {}
    for seq, v in got:
        check(seq not in out, "seq %d twice in the timeline" % seq)
        out[seq] = v
    return out


def settled(drv):
    """Every mark is decided (none pending)."""
    return drv.execute_script(
        "return document.querySelectorAll('[data-verify=pending]').length === 0;")


class TamperProxy:
    """A TCP proxy that flips one byte of every occurrence of target in
    what the gateway sends back (same length: framing stays valid)."""

    def __init__(self, upstream_port, target, flip_at):
        self.target = target
        self.replacement = bytearray(target)
        self.replacement[flip_at] ^= 0x20
        self.replacement = bytes(self.replacement)
        self.upstream = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.flipped = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                c.close()
                continue
            threading.Thread(target=self._pipe, args=(c, u, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, True), daemon=True).start()

    def _pipe(self, src, dst, tamper):
        held = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not tamper:
                    dst.sendall(data)
                    continue
                data = held + data
                n = data.count(self.target)
                if n:
                    self.flipped += n
                    data = data.replace(self.target, self.replacement)
                # Keep back a tail that may be the start of the target.
                keep = 0
                for k in range(len(self.target) - 1, 0, -1):
                    if data.endswith(self.target[:k]):
                        keep = k
                        break
                held = data[len(data) - keep:] if keep else b""
                dst.sendall(data[:len(data) - keep])
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self.listener.close()


def test_board(w):
    key, d, g = demo_world(w)
    drv = browser(w)
    try:
        # --- the 12 demo updates, in the right cells, verified
        drv.get("http://127.0.0.1:%d/" % g.port)
        wait(drv, 15, "the timeline to show 12 updates", lambda d: len(rows(d)) == 12)
        wait(drv, 10, "every signature check to finish", settled)
        check(drv.find_element(By.ID, "crypto").get_attribute("data-state") == "supported",
              "this Chromium has no WebCrypto Ed25519")
        want = demo_cells()
        got = cells(drv)
        check({k: v[0] for k, v in got.items()} == want,
              "cells %s, expected %s" % ({k: v[0] for k, v in got.items()}, want))
        check(all(v[1] == "ok" for v in got.values()), "unverified cells: %s" % got)
        check(not drv.find_element(By.ID, "alarm").is_displayed(), "an alarm with nothing failed")
        check(rows(drv) == {s: "ok" for s in range(1, 13)}, "timeline: %s" % rows(drv))
        marks = drv.find_elements(By.CSS_SELECTOR, "td[data-seq] .verify[data-verify=ok]")
        check(len(marks) == len(want) and all("verified" in m.text for m in marks),
              "verified marks in cells: %d" % len(marks))
        check(drv.find_element(By.ID, "banner").get_attribute("data-state") == "live",
              "banner not live")
        shots = os.environ.get("PARLEY_SCREENSHOT_DIR")
        if shots:
            drv.save_screenshot(os.path.join(shots, "board.png"))

        # --- a new update appears within 2 s, without a reload
        drv.execute_script("window.__same_page = 'yes';")
        seq = d.pub(key, headline="Phase 1 of the cease-fire deal is agreed in principle",
                    party="israel,hamas", phase=1, status="agreed_in_principle")
        t0 = time.time()
        wait(drv, 2, "update %d on the board" % seq,
             lambda d: cells(d).get(("gaza-ceasefire", 1, "hamas"), (0,))[0] == seq
             and rows(d).get(seq) is not None)
        took = time.time() - t0
        check(drv.execute_script("return window.__same_page;") == "yes", "the page reloaded")
        wait(drv, 5, "its check", lambda d: rows(d)[seq] == "ok"
             and cells(d)[("gaza-ceasefire", 1, "israel")] == (seq, "ok"))
        print("  update %d on the board %.2f s after parley pub returned" % (seq, took))

        # --- filters: URL and content
        Select(drv.find_element(By.ID, "f-party")).select_by_value("egypt")
        wait(drv, 5, "party=egypt in the URL", lambda d: "party=egypt" in d.current_url)
        wait(drv, 5, "only egypt's cells",
             lambda d: {k[2] for k in cells(d)} == {"egypt"})
        egypt_rows = {n for n, (_, parties) in expected_demo().items() if "egypt" in parties}
        check(set(rows(drv)) == egypt_rows, "timeline for egypt: %s" % sorted(rows(drv)))
        Select(drv.find_element(By.ID, "f-party")).select_by_value("hamas")
        Select(drv.find_element(By.ID, "f-phase")).select_by_value("2")
        wait(drv, 5, "party=hamas&phase=2 in the URL",
             lambda d: "party=hamas" in d.current_url and "phase=2" in d.current_url)
        wait(drv, 5, "hamas in phase 2 only",
             lambda d: set(cells(d)) == {("gaza-ceasefire", 2, "hamas")})
        check(set(rows(drv)) == {4, 6, 11}, "timeline hamas phase 2: %s" % sorted(rows(drv)))
        url = drv.current_url
        drv.back()
        wait(drv, 5, "back to party=hamas alone",
             lambda d: "phase=2" not in d.current_url and
             {k[2] for k in cells(d)} == {"hamas"} and len({k[1] for k in cells(d)}) == 4)
        drv.get(url)   # the bookmark, opened afresh
        wait(drv, 10, "the bookmarked view",
             lambda d: set(cells(d)) == {("gaza-ceasefire", 2, "hamas")}
             and set(rows(d)) == {4, 6, 11})
        check(Select(drv.find_element(By.ID, "f-phase")).first_selected_option
              .get_attribute("value") == "2", "the phase control follows the URL")
        drv.find_element(By.ID, "f-clear").click()
        wait(drv, 5, "all again", lambda d: "?" not in d.current_url and len(cells(d)) == len(want))

        # --- a gateway restart: banner lost, then back; every update once
        before = set(rows(drv))
        g.stop()
        wait(drv, 10, "the lost banner",
             lambda d: d.find_element(By.ID, "banner").get_attribute("data-state") == "lost")
        check("lost" in drv.find_element(By.ID, "banner").text, "banner text")
        away = [d.pub(key, headline="while the gateway was away %d" % i, party="qatar", phase=0)
                for i in range(2)]
        g.start()
        wait(drv, 20, "the back banner and the updates made meanwhile",
             lambda d: d.find_element(By.ID, "banner").get_attribute("data-state") in ("back", "live")
             and set(away) <= set(rows(d)))
        after = d.pub(key, headline="after the restart", party="qatar", phase=0)
        wait(drv, 5, "a live update after the restart", lambda d: after in rows(d))
        got = rows(drv)
        want_rows = before | set(away) | {after}
        check(set(got) == want_rows and sorted(got) == list(range(1, after + 1)),
              "timeline after the restart: %s, expected %s" % (sorted(got), sorted(want_rows)))
        wait(drv, 5, "the checks", settled)
        check(all(v == "ok" for v in rows(drv).values()), "unverified after restart")
    finally:
        drv.quit()


def test_tampered_headline(w):
    """A proxy flips one byte of a headline: that update, and only it,
    shows as failed verification, in its cells and in the timeline."""
    key, d, g = demo_world(w)
    # Update 3: phase 1, israel and hamas (two cells and a row). "P" of
    # its headline becomes "p".
    p3 = TamperProxy(g.port, b"Phase 1 proposed: hostages", 0)
    drv = browser(w)
    try:
        drv.get("http://127.0.0.1:%d/" % p3.port)
        wait(drv, 15, "12 rows", lambda d: len(rows(d)) == 12)
        wait(drv, 10, "the checks", settled)
        check(p3.flipped >= 2, "the proxy flipped nothing")
        got = cells(drv)
        for k, (seq, v) in got.items():
            check(v == ("failed" if seq == 3 else "ok"), "cell %s: #%d %s" % (k, seq, v))
        check(got[("gaza-ceasefire", 1, "hamas")] == (3, "failed"), "cell of #3")
        r = rows(drv)
        check(r[3] == "failed" and all(v == "ok" for s, v in r.items() if s != 3),
              "timeline: %s" % r)
        li = drv.find_element(By.CSS_SELECTOR, "#timeline li[data-seq='3'] .verify")
        check("FAILED" in li.text and "headline" in li.text and li.get_attribute("role") == "alert",
              "the failure is not loud: %r" % li.text)
        alarm = drv.find_element(By.ID, "alarm")
        check(alarm.is_displayed() and "1 update failed" in alarm.text, "alarm: %r" % alarm.text)
        # A tampered live update fails too.
        p3.close()
        live = TamperProxy(g.port, b"agreed in principle, live", 3)
        drv.get("http://127.0.0.1:%d/" % live.port)
        wait(drv, 15, "12 rows", lambda d: len(rows(d)) == 12)
        seq = d.pub(key, headline="agreed in principle, live", party="us", phase=2)
        wait(drv, 5, "the tampered live update to fail",
             lambda d: rows(d).get(seq) == "failed")
        check(live.flipped >= 1, "the live proxy flipped nothing")
        live.close()
    finally:
        drv.quit()


def test_phone_width(w):
    """On a phone-sized window the board needs no sideways page scroll."""
    key, d, g = demo_world(w)
    drv = browser(w, 390, 844)
    try:
        drv.get("http://127.0.0.1:%d/?party=hamas" % g.port)
        wait(drv, 15, "the board", lambda d: len(cells(d)) == 4)
        wide = drv.execute_script("return document.documentElement.scrollWidth")
        inner = drv.execute_script("return window.innerWidth")
        check(wide <= inner, "the page is %d px wide in a %d px window" % (wide, inner))
        # Keyboard: the filters and each table's scroll region take focus.
        focusable = drv.execute_script(
            "return [...document.querySelectorAll('select, button, [tabindex=\"0\"]')]"
            ".filter(e => e.tabIndex >= 0).length")
        check(focusable >= 5, "focusable controls: %d" % focusable)
        shots = os.environ.get("PARLEY_SCREENSHOT_DIR")
        if shots:
            drv.save_screenshot(os.path.join(shots, "board-phone.png"))
    finally:
        drv.quit()


if __name__ == "__main__":
    main([test_board, test_tampered_headline, test_phone_width], "browser")
