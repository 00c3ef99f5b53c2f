#!/usr/bin/env python3
"""Drives the Conveyor dashboard in headless Chromium (selenium + chromedriver).

Run by DashboardBrowserTests (Swift), which starts a real redis-server, a real
`conveyor worker` and `conveyor dashboard`, seeds jobs, and after this script
exits checks in Redis that its actions changed what they should. This script
checks what a user sees and does: the overview's counts and workers, the job
list's filters, the job page's chain, cancel / run again / delete, a POST
without the CSRF token being refused, and hostile data shown as text, never run.

Usage: dashboard_browser.py SCENARIO.json
The scenario names the base URL, the seeded job ids and the expectations; the
script prints one JSON object (what it did) on its last line, and exits 1 with
the failed check's message otherwise.
"""
import json
import sys
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def start_browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1100",
                     "--disable-gpu", "--lang=en-US"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def no_script_ran(driver, where):
    try:
        alert = driver.switch_to.alert
        text = alert.text
        alert.dismiss()
        raise CheckFailed(f"{where}: an alert opened ({text!r}): injected script ran")
    except NoAlertPresentException:
        pass
    check(driver.execute_script("return window.__conveyorXSS === undefined"), f"{where}: injected script ran")


def click_and_wait(driver, element):
    """Clicks a submit button and waits until the next page replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_):
        try:
            page.is_enabled()
            return False
        except (StaleElementReferenceException, WebDriverException):
            # Chromium sometimes reports a node of the previous document as
            # "does not belong to the document" instead of stale: replaced too.
            return True

    WebDriverWait(driver, 10).until(replaced)


def cell_texts(driver, table_id):
    return [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tr") if row.find_elements(By.CSS_SELECTOR, "td")]


def main():
    scenario = json.load(open(sys.argv[1]))
    base = scenario["url"].rstrip("/")
    hostile_type = scenario["hostileType"]
    hostile_text = scenario["hostileText"]
    done = {}
    driver = start_browser()
    try:
        # Overview: counts, types (hostile one shown as text), chart, live workers.
        driver.get(base + "/")
        for state, expected in scenario["counts"].items():
            shown = driver.find_element(By.ID, f"count-{state}").text
            check(shown == str(expected), f"overview: {state} shows {shown}, Redis has {expected}")
        types = [row[0] for row in cell_texts(driver, "by-type")]
        check(hostile_type in types, f"overview: the type {hostile_type!r} is not shown as text: {types}")
        check(driver.find_elements(By.CSS_SELECTOR, "svg.chart rect"), "overview: the chart has no bars")
        workers = cell_texts(driver, "workers")
        check(any(row[0] == scenario["workerId"] for row in workers), f"overview: worker {scenario['workerId']} not listed: {workers}")
        no_script_ran(driver, "overview")
        driver.save_screenshot(scenario["screenshots"] + "/dashboard-overview.png")

        # Job list: the filter by type and user.
        driver.get(base + "/jobs?state=pending")
        driver.find_element(By.NAME, "type").send_keys(scenario["filterType"])
        click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#filter button"))
        rows = cell_texts(driver, "jobs")
        check(rows and all(row[1] == scenario["filterType"] for row in rows),
              f"job list: filter by type {scenario['filterType']!r} shows {rows}")
        check(len(rows) == scenario["filterTypeCount"], f"job list: {len(rows)} rows, expected {scenario['filterTypeCount']}")
        driver.find_element(By.NAME, "user").send_keys(str(scenario["filterUser"]))
        click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#filter button"))
        rows = cell_texts(driver, "jobs")
        check(len(rows) == 1 and rows[0][2] == str(scenario["filterUser"]), f"job list: filter by user shows {rows}")
        driver.get(base + "/jobs?state=pending&type=" + urllib.request.quote(hostile_type))
        rows = cell_texts(driver, "jobs")
        check(rows and rows[0][1] == hostile_type, f"job list: hostile type filter shows {rows}")
        no_script_ran(driver, "job list")

        # Job page: every field, the hostile data as text, the whole chain.
        driver.get(base + f"/jobs/{scenario['hostileJobId']}")
        fields = {row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
                  for row in driver.find_elements(By.CSS_SELECTOR, "#fields tr")}
        check(fields.get("type") == hostile_type, f"job page: type shows {fields.get('type')!r}")
        check(hostile_text in fields.get("data", ""), f"job page: data shows {fields.get('data')!r}")
        no_script_ran(driver, "job page")
        chain_job = scenario["chain"][-1]
        driver.get(base + f"/jobs/{chain_job}")
        chain = [int(row[0]) for row in cell_texts(driver, "chain")]
        check(chain == scenario["chain"], f"job page: chain {chain}, expected {scenario['chain']}")
        current = driver.find_elements(By.CSS_SELECTOR, "#chain tr.current td")
        check(current and current[0].text == str(chain_job), "job page: the current job is not marked in the chain")
        driver.set_window_size(1280, 1500)  # the whole chain in the picture
        driver.save_screenshot(scenario["screenshots"] + "/dashboard-job.png")
        driver.set_window_size(1280, 1100)

        # A POST without the CSRF token is refused: from the browser (field removed) and without one at all.
        pending = scenario["cancelJobId"]
        driver.get(base + f"/jobs/{pending}")
        driver.execute_script("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
        click_and_wait(driver, driver.find_element(By.ID, "cancel"))
        check("missing or wrong CSRF token" in driver.find_element(By.ID, "error").text, "cancel without token: not refused")
        try:
            urllib.request.urlopen(urllib.request.Request(base + f"/jobs/{pending}/cancel", data=b"", method="POST"))
            raise CheckFailed("a POST without a CSRF token was accepted")
        except urllib.error.HTTPError as error:
            check(error.code == 403, f"a POST without a CSRF token got {error.code}, not 403")
        driver.get(base + f"/jobs/{pending}")
        check(driver.find_element(By.ID, "source").text.startswith("In Redis (pending)"), "refused cancel changed the job")

        # Cancel, run again, delete.
        click_and_wait(driver, driver.find_element(By.ID, "cancel"))
        check("cancelled" in driver.find_element(By.ID, "flash").text, "cancel: no confirmation")
        check(driver.find_element(By.ID, "source").text.startswith("In Redis (finished)"), "cancel: job not finished")

        driver.get(base + f"/jobs/{scenario['rerunJobId']}")
        click_and_wait(driver, driver.find_element(By.ID, "rerun"))
        check("run again" in driver.find_element(By.ID, "flash").text, "rerun: no confirmation")
        new_id = int(driver.current_url.split("/jobs/")[1].split("?")[0])
        fields = {row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
                  for row in driver.find_elements(By.CSS_SELECTOR, "#fields tr")}
        check(fields.get("rescheduledFromJob") == str(scenario["rerunJobId"]), f"rerun: new job links to {fields.get('rescheduledFromJob')}")
        chain = [int(row[0]) for row in cell_texts(driver, "chain")]
        check(scenario["rerunJobId"] in chain and new_id in chain, f"rerun: chain {chain}")
        done["rerunNewJobId"] = new_id

        driver.get(base + f"/jobs/{scenario['deleteJobId']}")
        click_and_wait(driver, driver.find_element(By.ID, "delete"))
        check("deleted" in driver.find_element(By.ID, "flash").text, "delete: no confirmation")
        driver.get(base + f"/jobs/{scenario['deleteJobId']}")
        check(driver.find_element(By.ID, "error").text.startswith("no job"), "delete: the job page still shows the job")
        # A dashboard started with --token-file: nothing without the token, everything with it.
        guarded = scenario["tokenUrl"].rstrip("/")
        for path in ("/", f"/jobs/{scenario['hostileJobId']}"):
            try:
                urllib.request.urlopen(guarded + path)
                raise CheckFailed(f"token dashboard: {path} without the token was served")
            except urllib.error.HTTPError as error:
                check(error.code == 401, f"token dashboard: {path} without the token got {error.code}, not 401")
        driver.get(guarded + "/")
        # Chromium answers the 401 with its basic-auth prompt (or the 401 body): never the overview.
        check(not driver.find_elements(By.ID, "counts"), "token dashboard: the browser got the overview without the token")
        driver.get(guarded.replace("http://", f"http://ops:{scenario['token']}@") + "/")
        check(driver.find_element(By.TAG_NAME, "h1").text == "Overview", "token dashboard: basic auth with the token refused")

        done["cancelledJobId"] = pending
        done["deletedJobId"] = scenario["deleteJobId"]
    finally:
        driver.quit()
    print(json.dumps(done))


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        print(f"browser check failed: {failure}", file=sys.stderr)
        sys.exit(1)
