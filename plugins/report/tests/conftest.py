"""A real headless Chromium (Debian's ``chromium``, driven by Playwright) for the report tests."""

import shutil

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        if shutil.which("apt-get") is None:
            pytest.skip("no chromium and no apt-get to install it (scripts/setup.sh installs Debian's chromium)")
        pytest.fail("chromium is missing: run scripts/setup.sh (as root it apt-get installs Debian's chromium)")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A browser context with a fresh profile that refuses every request leaving file://."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=chromium_path(), headless=True, args=FLAGS,
            viewport={"width": 1200, "height": 900})
        context.requests = []

        def route(r):
            context.requests.append(r.request.url)
            r.continue_() if r.request.url.startswith("file://") else r.abort()
        context.route("**/*", route)
        yield context
        context.close()


@pytest.fixture
def open_report(browser):
    """Open a report.html and return the page once its scripts ran (no JS errors allowed)."""
    pages = []

    def open_(path):
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.resolve().as_uri())
        page.wait_for_selector("body[data-ready=true]", timeout=10_000)
        assert errors == []
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()
